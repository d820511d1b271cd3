//! `bench suite`: runs every benchmark as separate processes and writes the report.
//! This module holds the arguments and the run that orders the sections; each
//! section, the processes and the table formatting are modules of their own.

mod context;
mod demo;
mod environment;
mod format;
mod latency;
mod memory;
mod perf;
mod process;
mod redis;
mod startup;
#[cfg(test)]
mod tests;
mod webhook;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;

use crate::server::Mode;
use context::Ctx;
use process::Pinning;

/// Arguments of `bench suite`.
#[derive(Debug, clap::Args)]
pub(crate) struct SuiteArgs {
    /// Where to write the Markdown report.
    #[arg(long, default_value = "bench/report.md")]
    pub(crate) out: PathBuf,
    /// Seconds per wrk measurement.
    #[arg(long, default_value_t = 5)]
    pub(crate) seconds: u64,
    /// Calls the webhook load is spread over.
    #[arg(long, default_value_t = 1000)]
    pub(crate) calls: usize,
    /// Calls for `transfer-bot demo --calls N`.
    #[arg(long, default_value_t = 2000)]
    pub(crate) demo_calls: usize,
    /// Largest call count of the memory benchmark.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) memory_calls: usize,
    /// Skip the perf profiles.
    #[arg(long)]
    pub(crate) no_profile: bool,
    /// Repetitions of each webhook and open-loop measurement (the report gives their median and min-max).
    #[arg(long, default_value_t = 3)]
    pub(crate) reps: usize,
    /// Open-loop rate in requests/s (default: half the full path's saturated rate at 32
    /// connections, from the webhook section, or measured first when it is not run).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// Run only these sections (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) only: Vec<Section>,
    /// Another build's `bench` binary (an earlier commit's, built in its own
    /// target directory): its full-path server runs beside this build's in
    /// the webhook section, measured in turn, and the report gives this
    /// build's full path against it, both as ratios of the same run.
    #[arg(long)]
    pub(crate) baseline_exe: Option<PathBuf>,
}

/// A section of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Section {
    /// Webhook CPU per request and throughput, and their profiles.
    Webhook,
    /// Open-loop notification latency with the per-stage breakdown.
    Latency,
    /// End-to-end transfers per second (`transfer-bot demo --calls`).
    Demo,
    /// Memory per tracked call.
    Memory,
    /// Start-up times.
    Startup,
}

/// Runs everything and writes the report.
pub(crate) fn run(args: SuiteArgs) -> anyhow::Result<()> {
    let suite_started = Instant::now();
    let exe = std::env::current_exe()?;
    let bin_dir = exe.parent().context("no bin dir")?.to_path_buf();
    let root = std::env::current_dir()?;
    let work = std::env::temp_dir().join(format!("graph-comms-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let clk_tck = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let mut ctx = Ctx {
        exe,
        bin_dir,
        work: work.clone(),
        pin: Pinning::detect(cores),
        clk_tck,
        seconds: args.seconds,
        fixture: graph_comms_testkit::fixtures::path(crate::httpc::FIXTURE),
        lua: root.join("bench/wrk/notify.lua"),
        notes: Vec::new(),
        redis_url: None,
    };
    let redis = redis::start(&mut ctx);
    if ctx.pin.server.is_none() {
        ctx.notes
            .push("taskset unavailable or fewer than 2 cores: server and load generator share the CPUs.".into());
    }
    let perf_ok = !args.no_profile
        && Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-o"])
            .arg(work.join("probe.data"))
            .args(["--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());

    let mut report = String::new();
    let _ = writeln!(report, "# graph-comms benchmark report\n");
    environment::environment(&mut report, cores, &root, &ctx);

    let wanted = |section: Section| args.only.is_empty() || args.only.contains(&section);
    let reps = args.reps.max(1);
    let mut profiled = Vec::new();
    let mut full_rate = None;
    if wanted(Section::Webhook) {
        eprintln!("== webhook: bare handler, full path and uncached JWT, interleaved, {reps} repetitions");
        let exe = ctx.exe.clone();
        let mut modes = vec![(Mode::Bare, exe.as_path()), (Mode::Full, &exe), (Mode::Uncached, &exe)];
        if let Some(baseline) = &args.baseline_exe {
            eprintln!(
                "== webhook: and the baseline build's full path ({})",
                baseline.display()
            );
            modes.push((Mode::Full, baseline.as_path()));
        }
        let mut results = webhook::webhook_modes(&ctx, &modes, args.calls, reps, perf_ok)?;
        let shared = match &redis {
            Some(_) => {
                eprintln!("== webhook: shared Redis store");
                webhook::webhook_modes(&ctx, &[(Mode::Redis, &exe)], args.calls, reps, perf_ok)?.pop()
            }
            None => None,
        };
        let baseline = if args.baseline_exe.is_some() {
            results.pop()
        } else {
            None
        };
        let uncached = results.pop().context("no uncached result")?;
        let full = results.pop().context("no full result")?;
        let bare = results.pop().context("no bare result")?;
        webhook::webhook_section(
            &mut report,
            &ctx,
            args.calls,
            &full,
            &bare,
            &uncached,
            shared.as_ref(),
            baseline.as_ref(),
        );
        full_rate = full.points.first().map(|p| p.rps().median);
        profiled = [Some(full), Some(uncached), shared].into_iter().flatten().collect();
    }

    if wanted(Section::Latency) {
        eprintln!("== latency: open loop against the bare and full servers, interleaved, {reps} repetitions");
        latency::latency_section(&mut report, &ctx, args.calls, reps, args.rate, full_rate)?;
    }

    if wanted(Section::Demo) {
        eprintln!("== transfer-bot demo");
        demo::demo_section(&mut report, &mut ctx, args.demo_calls, perf_ok);
    }

    if wanted(Section::Memory) {
        eprintln!("== memory");
        memory::memory_section(&mut report, &ctx, args.memory_calls)?;
    }

    if wanted(Section::Startup) {
        eprintln!("== start-up");
        startup::startup_section(&mut report, &mut ctx);
    }

    if !profiled.is_empty() {
        perf::profiles_section(&mut report, &profiled.iter().collect::<Vec<_>>());
    }
    if !ctx.notes.is_empty() {
        let _ = writeln!(report, "## Notes\n");
        for note in &ctx.notes {
            let _ = writeln!(report, "- {note}");
        }
        let _ = writeln!(report);
    }
    let _ = writeln!(
        report,
        "Suite wall time: {:.0} s.",
        suite_started.elapsed().as_secs_f64()
    );
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, &report).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{report}");
    eprintln!("report written to {}", args.out.display());
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
