//! Section 1, webhook cost: wrk against the bare, full, uncached (and Redis,
//! and baseline) servers in turn, and its table.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::context::{Ctx, WrkRun};
use super::format::{Spread, label, median, ratio, verdict};
use crate::httpc;
use crate::server::Mode;

/// The repetitions of one wrk point.
pub(super) struct Point {
    pub(super) connections: usize,
    pub(super) runs: Vec<WrkRun>,
}

impl Point {
    pub(super) fn rps(&self) -> Spread {
        Spread::of(self.runs.iter().map(|r| r.rps))
    }

    pub(super) fn cpu(&self) -> Spread {
        Spread::of(self.runs.iter().map(|r| r.cpu_us_per_req))
    }

    pub(super) fn core_use(&self) -> f64 {
        median(self.runs.iter().map(|r| r.core_use).collect())
    }
}

pub(super) struct ModeResult {
    pub(super) mode: Mode,
    /// Measured on the `--baseline-exe` build.
    pub(super) baseline: bool,
    pub(super) points: Vec<Point>,
    pub(super) hooks_ran: u64,
    /// Redis round trips on the notification path during the runs (`redis` mode).
    pub(super) redis_round_trips: Option<u64>,
    pub(super) profile: Option<String>,
}

/// The wrk points of `modes`, whose servers run side by side and are measured in turn,
/// `reps` times, so a change in the machine's load falls on every mode alike.
pub(super) fn webhook_modes(
    ctx: &Ctx,
    modes: &[(Mode, &Path)],
    calls: usize,
    reps: usize,
    profile: bool,
) -> anyhow::Result<Vec<ModeResult>> {
    let servers = modes
        .iter()
        .map(|(mode, exe)| ctx.start_server_of(exe, *mode, calls, false))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let before = servers
        .iter()
        .map(|s| httpc::get_json(s.addr, "/stats"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut points: Vec<Vec<Point>> = modes
        .iter()
        .map(|_| {
            [32, 256]
                .into_iter()
                .map(|connections| Point {
                    connections,
                    runs: Vec::new(),
                })
                .collect()
        })
        .collect();
    for rep in 0..reps {
        for (server, points) in servers.iter().zip(points.iter_mut()) {
            for point in points.iter_mut() {
                eprintln!(
                    "   repetition {}/{reps}: {} connections, {:?}{}",
                    rep + 1,
                    point.connections,
                    server.mode,
                    if server.baseline { " (baseline build)" } else { "" }
                );
                ctx.wrk(server, point.connections, 1)?; // warm-up
                point.runs.push(ctx.wrk(server, point.connections, ctx.seconds)?);
            }
        }
    }
    // Let the per-call workers drain before counting hook runs.
    std::thread::sleep(Duration::from_millis(500));
    let mut results = Vec::new();
    for ((server, before), points) in servers.iter().zip(&before).zip(points) {
        let after = httpc::get_json(server.addr, "/stats")?;
        let count = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
        let redis_round_trips = after["redis_round_trips"]
            .as_u64()
            .map(|a| a.saturating_sub(count(before, "redis_round_trips")));
        let profile = (profile && server.mode != Mode::Bare && !server.baseline).then(|| {
            let label = format!("{:?}", server.mode).to_lowercase();
            ctx.profile(server.pid(), &label, || ctx.wrk(server, 32, 4).map(|_| ()))
                .unwrap_or_else(|e| format!("(profile failed: {e})"))
        });
        results.push(ModeResult {
            mode: server.mode,
            baseline: server.baseline,
            points,
            hooks_ran: count(&after, "notifications").saturating_sub(count(before, "notifications")),
            redis_round_trips,
            profile,
        });
    }
    Ok(results)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn webhook_section(
    report: &mut String,
    ctx: &Ctx,
    calls: usize,
    full: &ModeResult,
    bare: &ModeResult,
    uncached: &ModeResult,
    shared: Option<&ModeResult>,
    baseline: Option<&ModeResult>,
) {
    let _ = writeln!(report, "## 1. Webhook cost\n");
    let reps = bare.points.first().map_or(0, |p| p.runs.len());
    let _ = writeln!(
        report,
        "wrk -t1, {} s per point after a 1 s warm-up, POSTing the `transferAccepted` notification with an RS256 bearer \
         token, round-robin over {calls} calls. In the full path every call has a real pending transfer attempt (set \
         up through the emulator before the load), so each request runs token check, parse, queue, the call's \
         worker, the transfer machine and the no-op hooks. CPU per request = server utime+stime / completed requests. \
         The bare, full and uncached servers run side by side and are measured in turn, {reps} times; each figure is \
         the median of the {reps} runs with their range (min-max) in brackets, and each ratio is of medians.\n",
        ctx.seconds
    );
    let _ = writeln!(
        report,
        "| path | connections | requests/s | vs bare | server CPU per request | vs bare | server core busy | non-2xx |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|");
    for result in [Some(bare), Some(full), Some(uncached), shared, baseline]
        .into_iter()
        .flatten()
    {
        for (point, base) in result.points.iter().zip(&bare.points) {
            let _ = writeln!(
                report,
                "| {} | {} | {} | {} | {} | {} | {:.0}% | {} |",
                result.label(),
                point.connections,
                point.rps().show(1.0, 0, ""),
                ratio(point.rps().median, base.rps().median),
                point.cpu().show(1.0, 1, " µs"),
                ratio(point.cpu().median, base.cpu().median),
                point.core_use() * 100.0,
                point.runs.iter().map(|r| r.non_2xx).sum::<u64>()
            );
        }
    }
    let _ = writeln!(report);
    for result in [Some(full), Some(uncached), shared].into_iter().flatten() {
        let requests: u64 = result.points.iter().flat_map(|p| &p.runs).map(|r| r.requests).sum();
        let _ = writeln!(
            report,
            "- {}: {} notifications reached `on_notification` during the measured and warm-up runs ({} measured requests).",
            label(result.mode),
            result.hooks_ran,
            requests
        );
        for point in &result.points {
            for errors in point.runs.iter().filter_map(|r| r.socket_errors.as_ref()) {
                let _ = writeln!(
                    report,
                    "- {} at {} connections: {errors}",
                    label(result.mode),
                    point.connections
                );
            }
        }
    }
    if let Some(shared) = shared
        && let Some(trips) = shared.redis_round_trips
        && shared.hooks_ran > 0
    {
        let per = trips as f64 / shared.hooks_ran as f64;
        let _ = writeln!(
            report,
            "- {}: {trips} Redis round trips for {} notifications = {per:.2} per notification (goal <= 3: {}).",
            label(shared.mode),
            shared.hooks_ran,
            verdict(per <= 3.0)
        );
    }
    if let Some(baseline) = baseline {
        for (point, base) in full.points.iter().zip(&baseline.points) {
            let _ = writeln!(
                report,
                "- this build's full path against the baseline build's, {} connections: CPU per request {}, \
                 requests/s {} (both measured in this run, in turn with the bare server).",
                point.connections,
                ratio(point.cpu().median, base.cpu().median),
                ratio(point.rps().median, base.rps().median)
            );
        }
    }
    if let (Some(f), Some(b)) = (full.points.first(), bare.points.first()) {
        let cpu = f.cpu().median / b.cpu().median;
        let tput = f.rps().median / b.rps().median;
        let _ = writeln!(report, "\nTargets (32 connections, medians):");
        let _ = writeln!(
            report,
            "- full-path CPU per request <= 1.5x bare: {:.2}x, {}",
            cpu,
            verdict(cpu <= 1.5)
        );
        let _ = writeln!(
            report,
            "- full-path throughput >= 0.7x bare: {:.2}x, {}",
            tput,
            verdict(tput >= 0.7)
        );
        if b.core_use() < 0.9 {
            let _ = writeln!(
                report,
                "- The bare server's core was only {:.0}% busy: its throughput is limited by the load generator, \
                 so the throughput ratio flatters neither side; the CPU-per-request ratio is the fair comparison.",
                b.core_use() * 100.0
            );
        }
    }
    let _ = writeln!(report);
}

impl ModeResult {
    pub(super) fn label(&self) -> String {
        if self.baseline {
            format!("{}, baseline build", label(self.mode))
        } else {
            label(self.mode).to_owned()
        }
    }
}
