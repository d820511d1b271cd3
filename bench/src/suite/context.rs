//! The suite's shared state ([`Ctx`]) and the measuring runs it starts: a
//! `bench serve`, one wrk run, one open-loop run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::process::{Pinning, Server, cpu_ticks, line_reader, wait_for_line};
use crate::httpc;
use crate::server::Mode;

/// What every section needs: the binaries, the work directory, the pinning,
/// the wrk inputs, the notes for the report and the private Redis's URL.
pub(super) struct Ctx {
    pub(super) exe: PathBuf,
    pub(super) bin_dir: PathBuf,
    pub(super) work: PathBuf,
    pub(super) pin: Pinning,
    pub(super) clk_tck: f64,
    pub(super) seconds: u64,
    pub(super) fixture: PathBuf,
    pub(super) lua: PathBuf,
    pub(super) notes: Vec<String>,
    /// The private Redis of the Redis figures, when `redis-server` is installed.
    pub(super) redis_url: Option<String>,
}

impl Ctx {
    pub(super) fn start_server(&self, mode: Mode, calls: usize, stages: bool) -> anyhow::Result<Server> {
        self.start_server_of(&self.exe, mode, calls, stages)
    }

    /// [`Ctx::start_server`] with the `bench` binary `exe` (this build's, or a baseline build's).
    pub(super) fn start_server_of(&self, exe: &Path, mode: Mode, calls: usize, stages: bool) -> anyhow::Result<Server> {
        let baseline = exe != self.exe;
        let setup_file = self.work.join(
            format!(
                "setup-{mode:?}-{}{}.txt",
                if stages { "stages" } else { "plain" },
                if baseline { "-baseline" } else { "" }
            )
            .to_lowercase(),
        );
        let mut child = Pinning::command(self.pin.server, exe)
            .args([
                "serve",
                "--mode",
                &format!("{mode:?}").to_lowercase(),
                "--calls",
                &calls.to_string(),
            ])
            .arg("--setup-file")
            .arg(&setup_file)
            .args(self.redis_url.iter().flat_map(|url| ["--redis-url", url.as_str()]))
            .args(stages.then_some("--stages"))
            .stdout(Stdio::piped())
            .spawn()
            .context("starting bench serve")?;
        let lines = line_reader(&mut child)?;
        let ready = wait_for_line(&lines, "READY", Duration::from_secs(180));
        let ready = match ready {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                return Err(e);
            }
        };
        let addr = ready
            .split_whitespace()
            .nth(1)
            .context("READY without address")?
            .parse()?;
        Ok(Server {
            mode,
            baseline,
            child,
            addr,
            setup_file,
        })
    }

    /// One wrk run; `None` seconds = warm-up of 1 s.
    pub(super) fn wrk(&self, server: &Server, connections: usize, seconds: u64) -> anyhow::Result<WrkRun> {
        let before = cpu_ticks(server.pid())?;
        let started = Instant::now();
        let output = Pinning::command(self.pin.load, Path::new("wrk"))
            .args([
                "-t1",
                &format!("-c{connections}"),
                &format!("-d{seconds}s"),
                "--latency",
                "-s",
            ])
            .arg(&self.lua)
            .arg(format!("http://{}/api/calls", server.addr))
            .arg("--")
            .arg(&server.setup_file)
            .arg(&self.fixture)
            .output()
            .context("running wrk")?;
        let wall = started.elapsed().as_secs_f64();
        let after = cpu_ticks(server.pid())?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!("wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr));
        }
        let requests = text
            .lines()
            .find(|l| l.contains(" requests in "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .with_context(|| format!("no request count in wrk output:\n{text}"))?;
        let rps = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .context("no Requests/sec in wrk output")?;
        let non_2xx = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let socket_errors = text
            .lines()
            .find(|l| l.contains("Socket errors"))
            .map(str::trim)
            .map(str::to_owned);
        let cpu_s = (after - before) as f64 / self.clk_tck;
        Ok(WrkRun {
            requests,
            rps,
            non_2xx,
            socket_errors,
            cpu_us_per_req: if requests > 0 {
                cpu_s * 1e6 / requests as f64
            } else {
                f64::NAN
            },
            core_use: cpu_s / wall,
        })
    }

    pub(super) fn self_command(&self, core: Option<&str>) -> Command {
        Pinning::command(core, &self.exe)
    }

    pub(super) fn openloop(&self, server: &Server, rate: f64) -> anyhow::Result<(Value, Value)> {
        let output = self
            .self_command(self.pin.load)
            .args([
                "openloop",
                "--addr",
                &server.addr.to_string(),
                "--rate",
                &format!("{rate:.0}"),
            ])
            .args(["--seconds", &self.seconds.to_string(), "--warmup", "1"])
            .arg("--setup-file")
            .arg(&server.setup_file)
            .output()?;
        if !output.status.success() {
            bail!("openloop failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let client: Value = serde_json::from_slice(&output.stdout)?;
        let stats = httpc::get_json(server.addr, "/stats")?;
        Ok((client, stats))
    }
}

/// One wrk run: what wrk counted and the server CPU it cost.
pub(super) struct WrkRun {
    pub(super) requests: u64,
    pub(super) rps: f64,
    pub(super) non_2xx: u64,
    pub(super) socket_errors: Option<String>,
    pub(super) cpu_us_per_req: f64,
    pub(super) core_use: f64,
}
