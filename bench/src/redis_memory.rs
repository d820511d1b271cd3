//! What calls shared through Redis cost Redis: `used_memory` before and after a
//! run, and `MEMORY USAGE` of each call record the run left (read with
//! `redis-cli`, which comes with `redis-server`).

use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// Redis's `used_memory` (bytes), from `INFO memory`.
pub(crate) fn used_memory(url: &str) -> anyhow::Result<u64> {
    let info = cli(url, &["INFO", "memory"], None)?;
    parse_used_memory(&info).context("no used_memory in INFO memory")
}

/// `MEMORY USAGE` (bytes) of every call record under `prefix`.
pub(crate) fn record_sizes(url: &str, prefix: &str) -> anyhow::Result<Vec<u64>> {
    // A record's key is `<prefix>:{<id>}`; its inbox, lease and outbox keys end in a suffix.
    let pattern = format!("{prefix}:{{*}}");
    let keys = cli(url, &["--scan", "--pattern", &pattern], None)?;
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    // One pipelined session instead of a process per key.
    let script: String = keys
        .iter()
        .map(|k| format!("MEMORY USAGE \"{k}\" SAMPLES 0\n"))
        .collect();
    let sizes = cli(url, &[], Some(&script))?;
    Ok(sizes.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Key prefixes of the demo's runs in this Redis (`transfer-bot-demo-...`).
pub(crate) fn demo_prefixes(url: &str) -> anyhow::Result<Vec<String>> {
    let keys = cli(url, &["--scan", "--pattern", "{transfer-bot-demo-*}:calls"], None)?;
    Ok(keys
        .lines()
        .filter_map(|k| Some(k.strip_prefix('{')?.strip_suffix("}:calls")?.to_owned()))
        .collect())
}

fn cli(url: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut child = Command::new("redis-cli")
        .args(["-u", url])
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting redis-cli")?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("redis-cli {args:?}: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn parse_used_memory(info: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix("used_memory:")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_memory_is_read_from_info() {
        let info = "# Memory\r\nused_memory:1043264\r\nused_memory_human:1018.81K\r\n";
        assert_eq!(parse_used_memory(info), Some(1_043_264));
        assert_eq!(parse_used_memory("# Memory\r\n"), None);
    }
}
