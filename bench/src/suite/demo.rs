//! Section 3, end-to-end transfers per second: `transfer-bot demo`, the
//! calls-in-flight sweep and where the demo's CPU goes.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::context::Ctx;
use super::format::{median, ratio, verdict};
use super::perf::perf_report;
use super::redis::shared_demo;

pub(super) fn demo_section(report: &mut String, ctx: &mut Ctx, calls: usize, perf_ok: bool) {
    let _ = writeln!(report, "## 3. End-to-end transfers per second\n");
    let bot = ctx.bin_dir.join("transfer-bot");
    if !bot.exists() {
        let _ = writeln!(report, "Not measured: the `transfer-bot` binary was not built.\n");
        return;
    }
    let started = Instant::now();
    let mut command = Command::new(&bot);
    command.args(["demo", "--calls", &calls.to_string()]);
    let output = command.output();
    let wall = started.elapsed().as_secs_f64();
    match output {
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let _ = writeln!(
                report,
                "`transfer-bot demo --calls {calls}` (bot, emulator and calls in one process, not pinned), {}, {wall:.1} s wall. Its output:\n",
                o.status
            );
            let _ = writeln!(report, "```text\n{}\n```\n", text.trim_end());
        }
        Err(e) => {
            let _ = writeln!(report, "Not measured: could not run transfer-bot: {e}\n");
            return;
        }
    }
    concurrency_sweep(report, ctx, &bot, calls, perf_ok);
    shared_demo(report, ctx, &bot, calls);
    if perf_ok {
        let data = ctx.work.join("perf-demo.data");
        let recorded = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "999", "-o"])
            .arg(&data)
            .arg("--")
            .arg(&bot)
            .args(["demo", "--calls", &(calls / 2).max(100).to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match recorded.map_err(anyhow::Error::from).and_then(|_| perf_report(&data)) {
            Ok(top) => {
                let _ = writeln!(
                    report,
                    "Where the demo's CPU time goes (`perf record -e cpu-clock`, self time):\n\n```text\n{top}\n```\n"
                );
            }
            Err(e) => ctx.notes.push(format!("demo profile failed: {e}")),
        }
    }
}

/// Calls in flight of the sweep; the first ratio's baseline is 64.
const SWEEP: [usize; 4] = [16, 64, 256, 1000];

/// `demo --calls N --concurrency C --seed 7` for each C of [`SWEEP`], three runs
/// each, and where the CPU goes at the highest one.
fn concurrency_sweep(report: &mut String, ctx: &mut Ctx, bot: &Path, calls: usize, perf_ok: bool) {
    let run = |concurrency: usize| -> Option<(f64, String)> {
        let output = Command::new(bot)
            .args([
                "demo",
                "--calls",
                &calls.to_string(),
                "--concurrency",
                &concurrency.to_string(),
            ])
            .args(["--seed", "7"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let rate = text
            .lines()
            .find_map(|l| l.split(" = ").nth(1)?.strip_suffix(" transfers/s")?.parse::<f64>().ok())?;
        let p99 = text
            .lines()
            .find_map(|l| l.split("p99 ").nth(1)?.split(',').next().map(str::to_owned))
            .unwrap_or_default();
        Some((rate, p99))
    };
    let mut rows = Vec::new();
    for concurrency in SWEEP {
        eprintln!("   {concurrency} in flight");
        let runs: Vec<(f64, String)> = (0..3).filter_map(|_| run(concurrency)).collect();
        let rates: Vec<f64> = runs.iter().map(|(r, _)| *r).collect();
        let p99 = runs.last().map(|(_, p)| p.clone()).unwrap_or_default();
        rows.push((concurrency, rates, p99));
    }
    let _ = writeln!(
        report,
        "Calls in flight: `transfer-bot demo --calls {calls} --concurrency C --seed 7`, three runs each \
         (median, with min-max). Target: 1000 in flight >= 0.9x the rate at 64.\n"
    );
    let _ = writeln!(
        report,
        "| in flight | transfers/s (median) | min-max | vs 64 | incoming -> finished p99 (last run) |\n|---|---|---|---|---|"
    );
    let base = rows
        .iter()
        .find(|(c, rates, _)| *c == 64 && !rates.is_empty())
        .map(|(_, rates, _)| median(rates.clone()));
    for (concurrency, rates, p99) in &rows {
        if rates.is_empty() {
            let _ = writeln!(report, "| {concurrency} | - | - | - | - |");
            continue;
        }
        let rate = median(rates.clone());
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(0.0, f64::max);
        let vs = base.map_or_else(|| "-".to_owned(), |b| ratio(rate, b));
        let _ = writeln!(report, "| {concurrency} | {rate:.1} | {lo:.0}-{hi:.0} | {vs} | {p99} |");
    }
    let top = rows.last().filter(|(_, rates, _)| !rates.is_empty());
    if let (Some((concurrency, rates, _)), Some(base)) = (top, base) {
        let r = median(rates.clone()) / base;
        let _ = writeln!(
            report,
            "\n{concurrency} in flight vs 64: {r:.2}x, target >= 0.9x: {}.\n",
            verdict(r >= 0.9)
        );
    }
    if !perf_ok {
        return;
    }
    let in_flight = SWEEP[SWEEP.len() - 1];
    match cpu_shares(ctx, bot, calls, in_flight) {
        Ok(shares) => {
            let _ = writeln!(
                report,
                "Where the CPU goes at {in_flight} in flight (`perf record --call-graph dwarf`, each sample counted once, \
                 by the first of these found on its stack):\n\n| part | share of CPU samples |\n|---|---|"
            );
            for (part, share) in shares {
                let _ = writeln!(report, "| {part} | {:.1}% |", share * 100.0);
            }
            let _ = writeln!(report);
        }
        Err(e) => ctx.notes.push(format!("demo CPU shares failed: {e}")),
    }
}

/// Which frame on a sample's stack names the part of the demo it is spent in.
const PARTS: [(&str, &[&str]); 4] = [
    (
        "emulator (its API handlers and notification deliveries)",
        &["graph_comms_emulator::"],
    ),
    ("load driver (`demo::load`)", &["transfer_bot::demo::"]),
    (
        "bot (framework crates and the app's policy)",
        &[
            "graph_comms_handler::",
            "graph_comms_notify::",
            "graph_comms_client::",
            "transfer_bot::",
        ],
    ),
    ("shared: HTTP, runtime and kernel frames of no one part", &[""]),
];

/// Shares of the CPU samples per [`PARTS`] entry, for one `demo --calls` run.
fn cpu_shares(ctx: &Ctx, bot: &Path, calls: usize, in_flight: usize) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let data = ctx.work.join("perf-demo-shares.data");
    let status = Command::new("perf")
        .args(["record", "-F", "199", "--call-graph", "dwarf,16384", "-o"])
        .arg(&data)
        .arg("--")
        .arg(bot)
        .args([
            "demo",
            "--calls",
            &calls.to_string(),
            "--concurrency",
            &in_flight.to_string(),
        ])
        .args(["--seed", "7"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "perf record: {status}");
    let script = Command::new("perf")
        .args(["script", "-F", "ip,sym", "-i"])
        .arg(&data)
        .stderr(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&script.stdout);
    let mut counts = [0usize; PARTS.len()];
    for sample in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
        if let Some(part) = PARTS
            .iter()
            .position(|(_, marks)| marks.iter().any(|m| sample.contains(m)))
        {
            counts[part] += 1;
        }
    }
    let total = counts.iter().sum::<usize>();
    anyhow::ensure!(total > 0, "perf script gave no samples");
    Ok(PARTS
        .iter()
        .zip(counts)
        .map(|((part, _), n)| (*part, n as f64 / total as f64))
        .collect())
}
