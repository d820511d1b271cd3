//! The processes the suite starts: core pinning, a running `bench serve`, CPU
//! ticks from `/proc`, a child's stdout lines, and time to ready of a server.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::httpc;
use crate::server::Mode;

/// Which cores the server and the load generator run on.
pub(super) struct Pinning {
    pub(super) server: Option<&'static str>,
    pub(super) load: Option<&'static str>,
}

impl Pinning {
    pub(super) fn detect(cores: usize) -> Self {
        let taskset = Command::new("taskset")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if taskset && cores >= 2 {
            Self {
                server: Some("1"),
                load: Some("0"),
            }
        } else {
            Self {
                server: None,
                load: None,
            }
        }
    }

    pub(super) fn command(core: Option<&str>, program: &Path) -> Command {
        match core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

/// A running `bench serve`.
pub(super) struct Server {
    pub(super) mode: Mode,
    /// Started from `--baseline-exe`, not this build.
    pub(super) baseline: bool,
    pub(super) child: Child,
    pub(super) addr: SocketAddr,
    pub(super) setup_file: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// CPU ticks (user + system, all threads) of a process.
pub(super) fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); after the comm, state is index 0, so utime is 11 and stime 12.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// Reads a child's stdout lines on a thread, so waits can time out.
pub(super) fn line_reader(child: &mut Child) -> anyhow::Result<mpsc::Receiver<String>> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

pub(super) fn wait_for_line(rx: &mpsc::Receiver<String>, prefix: &str, timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return Ok(line),
            Ok(_) => {}
            Err(_) => bail!("no {prefix:?} line within {timeout:?}"),
        }
    }
}

/// Spawns `command` and polls `GET path` on `addr` until 200; milliseconds from spawn.
pub(super) fn time_to_ready(mut command: Command, addr: SocketAddr, path: &str) -> anyhow::Result<(f64, Child)> {
    let started = Instant::now();
    let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let deadline = started + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = httpc::request(addr, "GET", path, Duration::from_millis(200)) {
            return Ok((started.elapsed().as_secs_f64() * 1000.0, child));
        }
        if Instant::now() > deadline {
            let mut child = child;
            let _ = child.kill();
            bail!("{path} on {addr} not ready within 30 s");
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// A loopback address with a port that was free a moment ago (the test kit's
/// [`free_port`](graph_comms_testkit::free_port)), for a server the suite starts.
pub(super) fn loopback_addr() -> anyhow::Result<SocketAddr> {
    Ok(SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        graph_comms_testkit::free_port()?,
    )))
}
