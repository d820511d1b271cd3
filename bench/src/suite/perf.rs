//! `perf` profiles: recording a server under load, the report's top lines, and
//! the report's Profiles section.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::bail;
use graph_comms_testkit::signal::{self, Signal};

use super::context::Ctx;
use super::format::label;
use super::webhook::ModeResult;

impl Ctx {
    /// A flat `perf` profile of `pid` while `load` runs; the top lines.
    pub(super) fn profile(
        &self,
        pid: u32,
        label: &str,
        load: impl FnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<String> {
        let data = self.work.join(format!("perf-{label}.data"));
        let mut perf = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "999", "-o"])
            .arg(&data)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(300));
        let loaded = load();
        // SIGINT makes perf write its data and exit.
        let _ = signal::send(perf.id(), Signal::Int);
        let _ = perf.wait();
        loaded?;
        perf_report(&data)
    }
}

pub(super) fn perf_report(data: &Path) -> anyhow::Result<String> {
    let report = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--sort",
            "dso,symbol",
            "--percent-limit",
            "1",
            "-i",
        ])
        .arg(data)
        .stderr(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&report.stdout);
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(20)
        .map(tidy_perf_line)
        .collect();
    if lines.is_empty() {
        bail!("perf report is empty");
    }
    Ok(lines.join("\n"))
}

/// Drops perf's padding and empty trailing columns.
pub(super) fn tidy_perf_line(line: &str) -> String {
    let mut line = line.trim_end();
    while let Some(rest) = line.strip_suffix('-') {
        line = rest.trim_end();
    }
    line.split("  ")
        .filter(|p| !p.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("  ")
}

pub(super) fn profiles_section(report: &mut String, results: &[&ModeResult]) {
    let profiles: Vec<_> = results
        .iter()
        .filter_map(|r| r.profile.as_ref().map(|p| (r.mode, p)))
        .collect();
    if profiles.is_empty() {
        return;
    }
    let _ = writeln!(report, "## Profiles (server under wrk, 32 connections)\n");
    for (mode, profile) in profiles {
        let _ = writeln!(
            report,
            "{}, `perf record -e cpu-clock`, self time by symbol:\n\n```text\n{profile}\n```\n",
            label(mode)
        );
    }
}
