//! Section 4, memory per call: `bench memory` processes for the bot and the
//! floor at a few call counts, and their table.

use std::fmt::Write as _;

use anyhow::bail;
use serde_json::Value;

use super::context::Ctx;
use super::format::{ratio, verdict};

fn memory_run(ctx: &Ctx, holder: &str, calls: usize) -> anyhow::Result<Value> {
    let output = ctx
        .self_command(None)
        .args(["memory", "--holder", holder, "--calls", &calls.to_string()])
        .output()?;
    if !output.status.success() {
        bail!("memory {holder} {calls}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

pub(super) fn memory_section(report: &mut String, ctx: &Ctx, max_calls: usize) -> anyhow::Result<()> {
    let _ = writeln!(report, "## 4. Memory per call\n");
    let _ = writeln!(
        report,
        "Each point is a fresh process. The bot gets `incoming` (ignored by the handler, so no Graph request) then \
         `established` for each call through its real router, then waits until every call is tracked, every per-call \
         worker has exited and the queue is empty. Bytes per call = (RSS(N) - RSS(0)) / N; the floor is a \
         `HashMap<CallId, ()>` of the same ids. VmHWM (peak) includes the transient queue and worker tasks.\n"
    );
    let mut rows = Vec::new();
    for n in [0, 10_000.min(max_calls)] {
        rows.push((n, memory_run(ctx, "bot", n)?, memory_run(ctx, "floor", n)?));
    }
    if max_calls > 10_000 {
        // Skip the largest point if it would take more than 40% of the available memory.
        let per_call = match (rows.first(), rows.last()) {
            (Some((_, b0, _)), Some((n, bn, _))) if *n > 0 => {
                (bn["vm_hwm"].as_f64().unwrap_or(0.0) - b0["vm_hwm"].as_f64().unwrap_or(0.0)) / *n as f64
            }
            _ => 0.0,
        };
        let need = per_call * max_calls as f64;
        let available = mem_available().unwrap_or(f64::MAX);
        if need < 0.4 * available {
            rows.push((
                max_calls,
                memory_run(ctx, "bot", max_calls)?,
                memory_run(ctx, "floor", max_calls)?,
            ));
        } else {
            let _ = writeln!(
                report,
                "{max_calls} calls not run: about {:.1} GiB needed (from the 10k point), {:.1} GiB available.\n",
                need / 1_073_741_824.0,
                available / 1_073_741_824.0
            );
        }
    }
    let _ = writeln!(
        report,
        "| calls | bot VmRSS | bot VmHWM | floor VmRSS | bot bytes/call (RSS) | bot bytes/call (HWM) | floor bytes/call | bot vs floor |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|");
    let (bot0, floor0) = match rows.first() {
        Some((_, b, f)) => (b.clone(), f.clone()),
        None => return Ok(()),
    };
    let get = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let mut largest = f64::NAN;
    for (n, bot, floor) in &rows {
        let per = |v: &Value, base: &Value, k: &str| {
            if *n == 0 {
                f64::NAN
            } else {
                (get(v, k) - get(base, k)) / *n as f64
            }
        };
        let bot_rss = per(bot, &bot0, "vm_rss");
        let bot_hwm = per(bot, &bot0, "vm_hwm");
        let floor_rss = per(floor, &floor0, "vm_rss");
        if bot_rss.is_finite() {
            largest = bot_rss;
        }
        let fmt = |x: f64| if x.is_finite() { format!("{x:.0} B") } else { "-".into() };
        let _ = writeln!(
            report,
            "| {n} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} | {} | {} | {} |",
            get(bot, "vm_rss") / 1_048_576.0,
            get(bot, "vm_hwm") / 1_048_576.0,
            get(floor, "vm_rss") / 1_048_576.0,
            fmt(bot_rss),
            fmt(bot_hwm),
            fmt(floor_rss),
            if *n == 0 { "-".into() } else { ratio(bot_rss, floor_rss) },
        );
    }
    let _ = writeln!(
        report,
        "\nTarget < 2 KiB per call (steady RSS, largest N): {:.0} B, {}\n",
        largest,
        verdict(largest < 2048.0)
    );
    if let Some((_, bot, _)) = rows.last() {
        let _ = writeln!(
            report,
            "Inline sizes (`size_of`, bytes) of what the runtime keeps per call: `{}`\n",
            bot["size_of"]
        );
    }
    Ok(())
}

/// `MemAvailable` in bytes.
fn mem_available() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? * 1024.0)
}
