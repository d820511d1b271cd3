//! The report's Environment section: CPU, kernel, toolchain, dependency
//! versions, pinning and how busy the machine was.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use super::context::Ctx;

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .and_then(|s| s.lines().next().map(str::trim).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// Versions of selected packages from Cargo.lock.
fn lock_versions(root: &Path, names: &[&str]) -> Vec<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let mut out = Vec::new();
    let mut name = "";
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = n.trim_matches('"');
        } else if let Some(v) = line.strip_prefix("version = ")
            && names.contains(&name)
        {
            out.push(format!("{name} {}", v.trim_matches('"')));
        }
    }
    out
}

pub(super) fn environment(report: &mut String, cores: usize, root: &Path, ctx: &Ctx) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let _ = writeln!(report, "## Environment\n");
    let _ = writeln!(report, "- CPU cores available: {cores} ({cpu})");
    let _ = writeln!(report, "- Kernel: {}", command_line("uname", &["-r"]));
    let _ = writeln!(report, "- {}", command_line("rustc", &["--version"]));
    let _ = writeln!(
        report,
        "- graph-comms crates: {} (release profile)",
        env!("CARGO_PKG_VERSION")
    );
    let deps = lock_versions(
        root,
        &[
            "tokio",
            "axum",
            "hyper",
            "jsonwebtoken",
            "aws-lc-rs",
            "serde_json",
            "reqwest",
        ],
    );
    let _ = writeln!(report, "- Dependencies: {}", deps.join(", "));
    let _ = writeln!(report, "- Load generator: {}", command_line("wrk", &["-v"]));
    let pin = match (ctx.pin.server, ctx.pin.load) {
        (Some(s), Some(l)) => format!("server on core {s}, load generator on core {l} (taskset)"),
        _ => "not pinned".into(),
    };
    let _ = writeln!(report, "- Pinning: {pin}");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(
        report,
        "- Load average at start (1/5/15 min): {} (other processes share the cores if this is above 0)",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    if let Some(warning) = busy_warning(&load, cores) {
        eprintln!("{warning}");
        let _ = writeln!(report, "- **{warning}**");
    }
    let _ = writeln!(
        report,
        "- Date: {}\n",
        command_line("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])
    );
    let _ = writeln!(
        report,
        "Every ratio compares with a baseline measured in the same run on the same machine.\n"
    );
}

/// A warning when something else kept the cores busy as the suite started:
/// a 1-minute load average above a quarter of the cores.
pub(super) fn busy_warning(loadavg: &str, cores: usize) -> Option<String> {
    let load: f64 = loadavg.split_whitespace().next()?.parse().ok()?;
    let cores = cores.max(1) as f64;
    (load > cores / 4.0).then(|| {
        format!(
            "Warning: the machine was busy when the suite started (load {load:.2} on {cores:.0} cores); \
             ratios against the same-run baselines still hold, absolute figures may be low"
        )
    })
}
