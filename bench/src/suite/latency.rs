//! Section 2, notification-to-hook latency: open-loop runs against the bare
//! and full servers, what the machine did meanwhile, and the per-stage tables.

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::Value;

use super::context::Ctx;
use super::format::{Spread, label, ratio, us, verdict};
use super::process::Server;
use crate::httpc;
use crate::server::Mode;

/// Busy and total jiffies of each CPU (`cpuN` lines of `/proc/stat`).
fn cpu_jiffies() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
            let total: u64 = v.iter().sum();
            // idle and iowait are the 4th and 5th columns.
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// One open-loop run and what the machine did meanwhile.
struct LatencyRun {
    mode: Mode,
    rep: usize,
    load: String,
    client: Value,
    stats: Value,
    stages: Value,
    /// Share of each CPU that was busy (anyone's work) during the run.
    cores_busy: Vec<f64>,
    /// Share of the run's wall time the server's threads were runnable but not running.
    server_waited: f64,
}

impl LatencyRun {
    fn client_ns(&self, key: &str) -> f64 {
        self.client[key].as_f64().unwrap_or(f64::NAN)
    }

    /// Share of the recorded window the client was runnable but not running.
    fn client_waited(&self) -> f64 {
        let wait = |k: &str| self.client[k]["wait_ns"].as_f64().unwrap_or(f64::NAN);
        (wait("sched_after") - wait("sched_before")) / self.client_ns("window_ns")
    }

    fn segment(&self, name: &str, key: &str) -> f64 {
        self.stages["segments"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name))
            .filter(|s| s["count"].as_u64().unwrap_or(0) > 0)
            .and_then(|s| s[key].as_f64())
            .unwrap_or(f64::NAN)
    }
}

impl Ctx {
    fn latency_run(&self, server: &Server, rate: f64, rep: usize) -> anyhow::Result<LatencyRun> {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let sched = |v: &Value| v["sched"]["wait_ns"].as_f64().unwrap_or(f64::NAN);
        let before = httpc::get_json(server.addr, "/stats")?;
        let jiffies = cpu_jiffies();
        let started = Instant::now();
        let (client, stats) = self.openloop(server, rate)?;
        let wall_ns = started.elapsed().as_secs_f64() * 1e9;
        let cores_busy = cpu_jiffies()
            .iter()
            .zip(&jiffies)
            .map(|((busy, total), (busy0, total0))| (busy - busy0) as f64 / (total - total0).max(1) as f64)
            .collect();
        let stages = httpc::get_json(server.addr, "/stats/stages")?;
        Ok(LatencyRun {
            mode: server.mode,
            rep,
            load: load.split_whitespace().next().unwrap_or("?").to_owned(),
            server_waited: (sched(&stats) - sched(&before)) / wall_ns,
            client,
            stats,
            stages,
            cores_busy,
        })
    }
}

pub(super) fn latency_section(
    report: &mut String,
    ctx: &Ctx,
    calls: usize,
    reps: usize,
    rate: Option<f64>,
    full_rate: Option<f64>,
) -> anyhow::Result<()> {
    let bare = ctx.start_server(Mode::Bare, calls, true)?;
    let full = ctx.start_server(Mode::Full, calls, true)?;
    let (rate, rate_from) = match (rate, full_rate) {
        (Some(rate), _) => (rate, "given with `--rate`".to_owned()),
        (None, Some(saturated)) => (
            saturated * 0.5,
            "50% of the full path's saturated rate at 32 connections (median, section 1)".to_owned(),
        ),
        (None, None) => {
            ctx.wrk(&full, 32, 1)?;
            let saturated = ctx.wrk(&full, 32, ctx.seconds)?.rps;
            (
                saturated * 0.5,
                format!("50% of the full path's saturated rate at 32 connections ({saturated:.0}/s, measured first)"),
            )
        }
    };
    let mut runs = Vec::new();
    for rep in 0..reps {
        for server in [&bare, &full] {
            eprintln!("   repetition {}/{reps}: {:?}", rep + 1, server.mode);
            runs.push(ctx.latency_run(server, rate, rep)?);
        }
    }
    let of = |mode: Mode| runs.iter().filter(move |r| r.mode == mode);
    let spread = |mode: Mode, f: &dyn Fn(&LatencyRun) -> f64| Spread::of(of(mode).map(f));

    let _ = writeln!(report, "## 2. Notification-to-hook latency (open loop)\n");
    let _ = writeln!(
        report,
        "{rate:.0} requests/s ({rate_from}), on a fixed schedule from one busy-polling thread over 64 connections; \
         client latency is measured from each request's intended send time (no coordinated omission). Server-side \
         hook: `event.received_at` -> start of `on_notification` (hdrhistogram in the hook). Both servers record \
         each request's stages (`bench serve --stages`) and run side by side; the runs alternate bare, full, {reps} \
         times. Each figure is the median of the {reps} runs, with their range (min-max) in brackets.\n"
    );
    let _ = writeln!(
        report,
        "| server | client p50 | p99 | p99.9 | max | p99 vs bare | hook p50 | hook p99 | hook p99.9 | recorded / scheduled | non-202 |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|---|---|");
    let client_p99 = |mode: Mode| spread(mode, &|r| r.client_ns("p99_ns"));
    for mode in [Mode::Bare, Mode::Full] {
        let client = |key: &'static str| spread(mode, &move |r| r.client_ns(key));
        let hook = |key: &'static str| {
            if mode == Mode::Bare {
                "-".to_owned()
            } else {
                spread(mode, &move |r| r.stats[key].as_f64().unwrap_or(f64::NAN)).show(1e3, 0, " µs")
            }
        };
        let sum = |key: &str| of(mode).map(|r| r.client[key].as_u64().unwrap_or(0)).sum::<u64>();
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            label(mode),
            client("p50_ns").show(1e3, 0, " µs"),
            client("p99_ns").show(1e3, 0, " µs"),
            client("p999_ns").show(1e3, 0, " µs"),
            client("max_ns").show(1e3, 0, " µs"),
            ratio(client_p99(mode).median, client_p99(Mode::Bare).median),
            hook("p50_ns"),
            hook("p99_ns"),
            hook("p999_ns"),
            sum("recorded"),
            sum("recorded_target"),
            sum("non_202"),
        );
    }

    let _ = writeln!(
        report,
        "\nWhat the machine did during each run (the cores are shared with other processes):\n"
    );
    let _ = writeln!(
        report,
        "| run | server | load (1 min) | core 0 / core 1 busy | client waited for its core | client loop stalls > 100 µs | server waited for its core | client p99 | server p99 (read -> written) |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|");
    for run in &runs {
        let cores = run
            .cores_busy
            .iter()
            .map(|c| format!("{:.0}%", c * 100.0))
            .collect::<Vec<_>>()
            .join(" / ");
        let _ = writeln!(
            report,
            "| {} | {} | {} | {cores} | {:.1}% | {} ({:.1}% of the time, longest {:.1} ms) | {:.1}% | {} | {} |",
            run.rep + 1,
            if run.mode == Mode::Bare { "bare" } else { "full" },
            run.load,
            run.client_waited() * 100.0,
            run.client["stalls"],
            run.client_ns("stalled_ns") / run.client_ns("window_ns") * 100.0,
            run.client_ns("longest_stall_ns") / 1e6,
            run.server_waited * 100.0,
            us(&run.client["p99_ns"]),
            us(&run.stages["server"]["p99_ns"]),
        );
    }
    let contended = runs.iter().any(|r| r.client_waited() > 0.01 || r.server_waited > 0.01);
    if contended {
        let _ = writeln!(
            report,
            "\n**Other processes kept the client or the server waiting for their core for more than 1% of some runs: \
             those runs measure the machine's scheduling as much as the code.**"
        );
    }

    // The slowest 1% is shown for each server's run with the median client p99, so that its
    // segments add up to its total.
    let median_run = |mode: Mode| {
        let mut runs: Vec<&LatencyRun> = of(mode).collect();
        runs.sort_by(|a, b| a.client_ns("p99_ns").total_cmp(&b.client_ns("p99_ns")));
        runs.get(runs.len() / 2).copied()
    };
    let tail_total = |mode: Mode| {
        median_run(mode).map_or(f64::NAN, |r| {
            r.stages["tail_total_mean_ns"].as_f64().unwrap_or(f64::NAN)
        })
    };
    let tail_mean = |mode: Mode, name: &str| median_run(mode).map_or(f64::NAN, |r| r.segment(name, "tail_mean_ns"));
    let tail_cell = |mode: Mode, name: &'static str| {
        let mean = tail_mean(mode, name);
        if mean.is_finite() {
            format!("{:.0} µs ({:.0}%)", mean / 1e3, mean / tail_total(mode) * 100.0)
        } else {
            "-".into()
        }
    };
    let _ = writeln!(
        report,
        "\nPer-stage breakdown (`bench/src/stages.rs`): each segment runs from the previous stamp the request has to \
         this one; the bare server has no token, parse or queue stamps, so its `respond` runs from `headers`. \
         \"Slowest 1%\" is the mean time of the segment over the 1% of requests with the longest intended-send -> \
         written time, and its share of their total, in the run with the median client p99 (run {} for bare, {} \
         for full).\n",
        median_run(Mode::Bare).map_or(0, |r| r.rep + 1),
        median_run(Mode::Full).map_or(0, |r| r.rep + 1),
    );
    let _ = writeln!(
        report,
        "| stage | what | bare p50 | bare p99 | bare p99.9 | full p50 | full p99 | full p99.9 | full p99 vs bare | slowest 1%: bare | slowest 1%: full |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|---|---|");
    let fine = |s: Spread| {
        if s.median.is_finite() && s.median < 100e3 {
            s.show(1e3, 1, " µs")
        } else {
            s.show(1e3, 0, " µs")
        }
    };
    for (name, what) in crate::stages::SEGMENTS {
        let q = |mode: Mode, key: &'static str| spread(mode, &move |r| r.segment(name, key));
        let cell = |mode: Mode, key: &'static str| {
            let s = q(mode, key);
            if s.median.is_finite() { fine(s) } else { "-".into() }
        };
        let _ = writeln!(
            report,
            "| `{name}` | {what} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(Mode::Bare, "p50_ns"),
            cell(Mode::Bare, "p99_ns"),
            cell(Mode::Bare, "p999_ns"),
            cell(Mode::Full, "p50_ns"),
            cell(Mode::Full, "p99_ns"),
            cell(Mode::Full, "p999_ns"),
            ratio(q(Mode::Full, "p99_ns").median, q(Mode::Bare, "p99_ns").median),
            tail_cell(Mode::Bare, name),
            tail_cell(Mode::Full, name),
        );
    }
    for (key, what) in [
        ("server", "server: first read -> response written"),
        ("total", "intended send time -> response written"),
    ] {
        let q = |mode: Mode, k: &'static str| spread(mode, &move |r| r.stages[key][k].as_f64().unwrap_or(f64::NAN));
        let _ = writeln!(
            report,
            "| **{key}** | {what} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fine(q(Mode::Bare, "p50_ns")),
            fine(q(Mode::Bare, "p99_ns")),
            fine(q(Mode::Bare, "p999_ns")),
            fine(q(Mode::Full, "p50_ns")),
            fine(q(Mode::Full, "p99_ns")),
            fine(q(Mode::Full, "p999_ns")),
            ratio(q(Mode::Full, "p99_ns").median, q(Mode::Bare, "p99_ns").median),
            if key == "total" {
                format!("{:.0} µs", tail_total(Mode::Bare) / 1e3)
            } else {
                "-".into()
            },
            if key == "total" {
                format!("{:.0} µs", tail_total(Mode::Full) / 1e3)
            } else {
                "-".into()
            },
        );
    }
    // Where the slowest 1% of full-path requests spent their time.
    let share = |names: &[&'static str]| {
        names
            .iter()
            .map(|n| tail_mean(Mode::Full, n))
            .filter(|v| v.is_finite())
            .sum::<f64>()
            / tail_total(Mode::Full)
            * 100.0
    };
    let _ = writeln!(
        report,
        "\nSlowest 1% of full-path requests: {:.0}% of their time before the server read them (client send delay \
         {:.0}%, kernel and server wake-up {:.0}%), {:.0}% in hyper and the endpoint (`headers` to `respond`), {:.0}% \
         writing the response.",
        share(&["send", "accept"]),
        share(&["send"]),
        share(&["accept"]),
        share(&["headers", "auth", "parse", "enqueue", "respond"]),
        share(&["written"]),
    );

    let hook_p99 = spread(Mode::Full, &|r| r.stats["p99_ns"].as_f64().unwrap_or(f64::NAN)).median;
    let full_p99 = client_p99(Mode::Full).median;
    let _ = writeln!(report, "\nTarget p99 < 1 ms (medians):");
    let _ = writeln!(
        report,
        "- notification-to-hook (server side): {:.0} µs, {}",
        hook_p99 / 1e3,
        verdict(hook_p99 < 1e6)
    );
    let _ = writeln!(
        report,
        "- full request round trip from intended send time: {:.0} µs, {}",
        full_p99 / 1e3,
        verdict(full_p99 < 1e6)
    );
    let threads = full.pid();
    let workers = runs
        .iter()
        .find(|r| r.mode == Mode::Full)
        .map(|r| (r.stats["tokio_workers"].clone(), r.stats["threads"].clone()));
    if let Some((workers, names)) = workers {
        let _ = writeln!(
            report,
            "- the full server (pid {threads}) ran {workers} tokio worker thread(s); its threads: {names}"
        );
    }
    let _ = writeln!(report);
    Ok(())
}
