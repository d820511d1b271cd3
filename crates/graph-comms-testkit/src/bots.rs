//! Bot processes: `transfer-bot serve` (or a fork of it) started from a TOML
//! configuration, its JSON log captured to a file, and the signals a
//! failover test sends it (`SIGKILL`, `SIGSTOP`/`SIGCONT`, `SIGTERM`).

use std::fs::{File, OpenOptions};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::tail;
use crate::signal::{self, Signal};

/// How long [`BotProcess::spawn`] waits for `GET /readyz` to answer 200.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The prefix of the environment variables that configure the bot; the
/// test's own are not passed on, so only the given TOML (and the explicit
/// environment) configures it.
pub const CONFIG_ENV_PREFIX: &str = "TRANSFER_BOT_";

/// A running bot process; killed (`SIGKILL`) and reaped on drop.
///
/// The configuration must set `listen` to a loopback address with a fixed
/// port (take one from [`free_port`](crate::free_port)): readiness and
/// [`BotProcess::base_url`] are read from it.
///
/// ```no_run
/// # async fn demo(binary: &std::path::Path) -> std::io::Result<()> {
/// use graph_comms_testkit::{BotProcess, free_port};
///
/// let port = free_port()?;
/// let config = format!("listen = \"127.0.0.1:{port}\"\n# ... the rest of the bot's configuration");
/// let mut bot = BotProcess::spawn_with_env(binary, &config, "bot-1", &[("TRANSFER_BOT_CLIENT_SECRET", "s3cret")]).await?;
/// bot.pause()?; // SIGSTOP: connections hang
/// bot.resume()?; // SIGCONT
/// let killed = bot.kill9()?;
/// let lines = bot.log_lines(); // the JSON log lines it wrote, even after the kill
/// # let _ = (killed, lines);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct BotProcess {
    name: String,
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
    log_path: PathBuf,
    config_path: PathBuf,
    exit: Option<ExitStatus>,
    _dir: tempfile::TempDir,
}

impl BotProcess {
    /// Runs `<binary> --log-format json serve --config <file>` with
    /// `config_toml` written to a temporary file, stdout and stderr appended
    /// to one log file, `RUST_LOG=info`, and no `TRANSFER_BOT_*` variable of
    /// this process; waits until `GET /readyz` answers 200 (at most
    /// [`READY_TIMEOUT`]). `name` names the files and the errors.
    ///
    /// # Errors
    ///
    /// When `listen` is missing or not a socket address, the process cannot
    /// start, exits, or is not ready in time (the error carries the end of
    /// its log; a process that is not ready is killed).
    pub async fn spawn(binary: &Path, config_toml: &str, name: &str) -> io::Result<Self> {
        Self::spawn_with_env(binary, config_toml, name, &[]).await
    }

    /// [`BotProcess::spawn`] with extra environment variables (set after
    /// `RUST_LOG=info`, so they may override it), e.g. the client secret,
    /// which the app reads only from its environment.
    ///
    /// # Errors
    ///
    /// Like [`BotProcess::spawn`].
    pub async fn spawn_with_env(
        binary: &Path,
        config_toml: &str,
        name: &str,
        env: &[(&str, &str)],
    ) -> io::Result<Self> {
        let addr = listen_address(config_toml)?;
        let dir = tempfile::Builder::new().prefix(&format!("bot-{name}-")).tempdir()?;
        let config_path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config_path, config_toml)?;
        let log_path = dir.path().join(format!("{name}.log"));
        let stdout = OpenOptions::new().create(true).append(true).open(&log_path)?;
        let stderr = stdout.try_clone()?;

        let mut command = Command::new(binary);
        command
            .args(["--log-format", "json", "serve", "--config"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .env("RUST_LOG", "info");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with(CONFIG_ENV_PREFIX) {
                command.env_remove(key);
            }
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {}: {e}", binary.display())))?;
        let mut bot = Self {
            name: name.to_owned(),
            pid: child.id(),
            child: Some(child),
            addr,
            log_path,
            config_path,
            exit: None,
            _dir: dir,
        };
        bot.wait_ready(READY_TIMEOUT).await?;
        Ok(bot)
    }

    /// Polls `GET /readyz` until it answers 200.
    async fn wait_ready(&mut self, timeout: Duration) -> io::Result<()> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()
            .map_err(io::Error::other)?;
        let url = format!("{}/readyz", self.base_url());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status()? {
                return Err(io::Error::other(format!(
                    "bot {} exited before it was ready ({status}); log:\n{}",
                    self.name,
                    self.log_tail(20)
                )));
            }
            let last = match client.get(&url).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    format!("{status}: {}", response.text().await.unwrap_or_default().trim())
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                let _ = self.kill9();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "bot {} was not ready within {timeout:?} (last /readyz: {last}); log:\n{}",
                        self.name,
                        self.log_tail(20)
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id (kept after it exits, for messages).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `http://127.0.0.1:PORT` (the configured `listen`; an unspecified
    /// address such as `0.0.0.0` is reached on loopback).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where the configuration was written.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process's exit status once it has exited; `None` while it runs
    /// (a paused process runs).
    ///
    /// # Errors
    ///
    /// When the status cannot be read.
    pub fn exit_status(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            self.exit = Some(status);
            self.child = None;
        }
        Ok(self.exit)
    }

    /// Whether the process is still there (running or paused).
    pub fn is_running(&mut self) -> bool {
        matches!(self.exit_status(), Ok(None))
    }

    /// `SIGKILL` and wait: the process is gone, its port refuses connections,
    /// nothing it had in memory survives.
    ///
    /// # Errors
    ///
    /// When the process cannot be killed or reaped.
    pub fn kill9(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.exit_status()? {
            return Ok(status);
        }
        let mut child = self.child.take().ok_or_else(|| io::Error::other("no child process"))?;
        // Child::kill is SIGKILL; it also ends a paused process.
        child.kill()?;
        let status = child.wait()?;
        self.exit = Some(status);
        Ok(status)
    }

    /// `SIGSTOP`: the process freezes; connections to it are accepted by the
    /// kernel but nothing answers.
    ///
    /// # Errors
    ///
    /// When it has exited or the signal cannot be sent.
    pub fn pause(&mut self) -> io::Result<()> {
        self.signal(Signal::Stop)?;
        // The signal is delivered asynchronously: a thread still running could
        // answer one more request. Wait (briefly) until every thread is stopped.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !all_threads_stopped(self.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// `SIGCONT`: a paused process runs again.
    ///
    /// # Errors
    ///
    /// When it has exited or the signal cannot be sent.
    pub fn resume(&mut self) -> io::Result<()> {
        self.signal(Signal::Cont)
    }

    fn signal(&mut self, signal: Signal) -> io::Result<()> {
        if let Some(status) = self.exit_status()? {
            return Err(io::Error::other(format!(
                "bot {} has exited ({status}); cannot send SIG{}",
                self.name,
                signal.name()
            )));
        }
        signal::send(self.pid, signal)
    }

    /// `SIGTERM` (a graceful shutdown), then waits up to `timeout` for the
    /// process to exit; past that it is killed and the error says so.
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent, or the process did not exit in time.
    pub async fn terminate(&mut self, timeout: Duration) -> io::Result<ExitStatus> {
        if let Some(status) = self.exit_status()? {
            return Ok(status);
        }
        // A paused process would never handle SIGTERM.
        let _ = signal::send(self.pid, Signal::Cont);
        signal::send(self.pid, Signal::Term)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let status = self.kill9()?;
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "bot {} did not exit within {timeout:?} of SIGTERM; killed ({status})",
                        self.name
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET <base_url><path>`: the status and body, or an error of kind
    /// [`io::ErrorKind::TimedOut`] (no answer within `timeout`, as from a
    /// paused process) or [`io::ErrorKind::ConnectionRefused`] (nothing
    /// listens: the process is gone).
    ///
    /// # Errors
    ///
    /// As above; other failures have kind [`io::ErrorKind::Other`].
    pub async fn get(&self, path: &str, timeout: Duration) -> io::Result<(u16, String)> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .build()
            .map_err(io::Error::other)?;
        let classify = |e: reqwest::Error| {
            let kind = if e.is_timeout() {
                io::ErrorKind::TimedOut
            } else if e.is_connect() {
                io::ErrorKind::ConnectionRefused
            } else {
                io::ErrorKind::Other
            };
            io::Error::new(kind, e)
        };
        let response = client
            .get(format!("{}{path}", self.base_url()))
            .send()
            .await
            .map_err(classify)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(classify)?;
        Ok((status, body))
    }

    /// The log as text (empty if it cannot be read).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path, lines)
    }

    /// Every JSON object the process logged so far, in order; lines that are
    /// not JSON (a panic message, say) are skipped. Empty if the log cannot
    /// be read.
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        let Ok(file) = File::open(&self.log_path) else {
            return Vec::new();
        };
        let reader = io::BufReader::new(file);
        io::BufRead::lines(reader)
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
            .filter(serde_json::Value::is_object)
            .collect()
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `listen` address of a bot configuration, on loopback when unspecified.
fn listen_address(config_toml: &str) -> io::Result<SocketAddr> {
    let table: toml::Table = config_toml.parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the bot configuration is not TOML: {e}"),
        )
    })?;
    let listen = table.get("listen").and_then(toml::Value::as_str).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the bot configuration must set `listen` (e.g. \"127.0.0.1:PORT\" with a port from free_port())",
        )
    })?;
    let mut addr: SocketAddr = listen.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`listen` = {listen:?} is not a socket address"),
        )
    })?;
    if addr.port() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "`listen` needs a fixed port (from free_port()): port 0 cannot be found from outside",
        ));
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    Ok(addr)
}

/// Whether every thread of `pid` is stopped (`T` in `/proc/<pid>/task/*/stat`);
/// `true` where `/proc` cannot be read, so nothing waits on it.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
            // The state follows the command name, which is in parentheses.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_none_or(|state| matches!(state, 'T' | 't'))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_comes_from_listen() {
        let addr = listen_address("listen = \"0.0.0.0:8123\"\n[store]\nkind = \"redis\"\n");
        assert_eq!(addr.ok(), Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 8123))));
        assert!(listen_address("[store]\nkind = \"redis\"\n").is_err());
        assert!(listen_address("listen = \"127.0.0.1:0\"").is_err());
        assert!(listen_address("listen = \"nowhere\"").is_err());
    }
}
