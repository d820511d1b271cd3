//! Section 5, start-up: a bare server and `transfer-bot serve` against the
//! emulator binary, spawn to first `200`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::context::Ctx;
use super::format::{median, ratio};
use super::process::{line_reader, loopback_addr, time_to_ready};

pub(super) fn startup_section(report: &mut String, ctx: &mut Ctx) {
    let _ = writeln!(report, "## 5. Start-up\n");
    let mut bare = Vec::new();
    for _ in 0..5 {
        let measured = loopback_addr().and_then(|addr| {
            let mut command = Command::new(&ctx.exe);
            command.args(["serve", "--mode", "bare", "--listen", &addr.to_string()]);
            command.arg("--setup-file").arg(ctx.work.join("setup-startup.txt"));
            time_to_ready(command, addr, "/readyz")
        });
        match measured {
            Ok((ms, mut child)) => {
                bare.push(ms);
                let _ = child.kill();
                let _ = child.wait();
            }
            Err(e) => ctx.notes.push(format!("bare start-up run failed: {e}")),
        }
    }
    let bare_ms = median(bare);
    match transfer_bot_startup(ctx) {
        Ok(bot) => {
            let bot_ms = median(bot);
            let _ = writeln!(
                report,
                "Median of 5 runs, process spawn -> first `200` (polled every 0.5 ms).\n\n| process | start-up | vs bare |\n|---|---|---|\n\
                 | bare axum server (`bench serve --mode bare`, to `/readyz`) | {bare_ms:.1} ms | 1.00x |\n\
                 | `transfer-bot serve` against `graph-comms-emulator` (to `/readyz`) | {bot_ms:.1} ms | {} |\n",
                ratio(bot_ms, bare_ms)
            );
        }
        Err(e) => {
            let _ = writeln!(
                report,
                "Bare axum server start-up (median of 5): {bare_ms:.1} ms. `transfer-bot serve` not measured: {e:#}\n"
            );
        }
    }
}

/// Starts the emulator binary once, then `transfer-bot serve` 5 times against it.
fn transfer_bot_startup(ctx: &Ctx) -> anyhow::Result<Vec<f64>> {
    let emulator_bin = ctx.bin_dir.join("graph-comms-emulator");
    let bot_bin = ctx.bin_dir.join("transfer-bot");
    if !emulator_bin.exists() || !bot_bin.exists() {
        bail!(
            "graph-comms-emulator or transfer-bot binary missing in {}",
            ctx.bin_dir.display()
        );
    }
    let emu_addr = loopback_addr()?;
    let mut emulator = Command::new(&emulator_bin)
        .args(["--listen", &emu_addr.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let lines = line_reader(&mut emulator)?;
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(300)) {
            Ok(line) => printed.push(line),
            Err(_) if !printed.is_empty() => break,
            Err(_) => {}
        }
    }
    let result = (|| {
        let creds = EmulatorCredentials::parse(&printed, emu_addr)?;
        let mut times = Vec::new();
        for _ in 0..5 {
            let addr = loopback_addr()?;
            let mut command = Command::new(&bot_bin);
            command.arg("serve");
            for (key, value) in creds.env(addr) {
                command.env(key, value);
            }
            let (ms, mut child) = time_to_ready(command, addr, "/readyz")?;
            times.push(ms);
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(times)
    })();
    let _ = emulator.kill();
    let _ = emulator.wait();
    result
}

/// What the emulator binary printed: base URL and the default app's credentials.
pub(super) struct EmulatorCredentials {
    pub(super) base: String,
    pub(super) tenant: String,
    pub(super) app_id: String,
    pub(super) secret: String,
}

impl EmulatorCredentials {
    pub(super) fn parse(lines: &[String], addr: SocketAddr) -> anyhow::Result<Self> {
        let find = |keys: &[&str]| -> Option<String> {
            lines.iter().find_map(|line| {
                let lower = line.to_ascii_lowercase();
                keys.iter().find(|k| lower.contains(*k)).and_then(|_| {
                    line.split_once([':', '='])
                        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                        .filter(|v| !v.is_empty())
                })
            })
        };
        let missing = || format!("could not read credentials from the emulator's output: {lines:?}");
        Ok(Self {
            base: format!("http://{addr}"),
            tenant: find(&["tenant"]).with_context(missing)?,
            app_id: find(&["app id", "app_id", "client id", "client_id"]).with_context(missing)?,
            secret: find(&["secret"]).with_context(missing)?,
        })
    }

    fn env(&self, listen: SocketAddr) -> Vec<(&'static str, String)> {
        vec![
            ("TRANSFER_BOT_TENANT_ID", self.tenant.clone()),
            ("TRANSFER_BOT_APP_ID", self.app_id.clone()),
            ("TRANSFER_BOT_CLIENT_SECRET", self.secret.clone()),
            ("TRANSFER_BOT_GRAPH_BASE_URL", format!("{}/v1.0", self.base)),
            ("TRANSFER_BOT_LOGIN_BASE_URL", self.base.clone()),
            (
                "TRANSFER_BOT_OPENID_CONFIGURATION_URL",
                format!("{}/v1/.well-known/OpenIdConfiguration", self.base),
            ),
            ("TRANSFER_BOT_LISTEN", listen.to_string()),
            (
                "TRANSFER_BOT_DEFAULT_TARGETS",
                r#"[{kind="user",id="bench-target"}]"#.to_owned(),
            ),
            (
                "TRANSFER_BOT_PUBLIC_CALLBACK_URL",
                format!("https://{listen}/api/calls"),
            ),
        ]
    }
}
