//! A private `redis-server` per test: loopback, a free port, a temporary
//! directory, stopped and restarted on the same port so clients reconnect.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::signal::{self, Signal};

/// How long a starting server may take to answer `PING` (an AOF is replayed first).
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`RedisServer::stop`] waits for the process to exit after `SIGTERM`.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports tried by [`RedisServer::start`] when the chosen one is taken meanwhile.
const PORT_TRIES: usize = 10;

/// The one-line instruction shown when `redis-server` is missing.
pub const NOT_INSTALLED: &str =
    "redis-server is not installed (or not on PATH); install it with: apt-get install redis-server";

/// Whether the data outlives a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persistence {
    /// `--save '' --appendonly no`: a restart starts empty.
    None,
    /// `--appendonly yes --appendfsync always`: every acknowledged write is on
    /// disk, so a restart (or a crash) keeps it.
    AppendOnly,
}

/// A `redis-server` process this test started; killed on drop.
///
/// ```no_run
/// let mut redis = graph_comms_testkit::RedisServer::start();
/// let url = redis.url(); // redis://127.0.0.1:PORT/
/// redis.stop().expect("Redis stops");      // clients now get connection refused
/// redis.restart().expect("Redis is back"); // same port: clients reconnect
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    persistence: Persistence,
    dir: tempfile::TempDir,
    child: Option<Child>,
    tls: Option<TlsListener>,
}

/// The PEM files of a `TestPki` (feature `pki`), in one directory.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// The CA certificate (what clients and servers trust).
    pub ca_cert: PathBuf,
    /// The server certificate, signed by the CA, for `127.0.0.1` and `localhost`.
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate signed by the CA (for mutual TLS).
    pub client_cert: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
}

/// The TLS port of a [`RedisServer::start_tls`] server and its certificates.
#[derive(Debug, Clone)]
struct TlsListener {
    port: u16,
    files: PkiFiles,
    clients_need_certificates: bool,
}

impl RedisServer {
    /// Starts a server without persistence (`--save '' --appendonly no`):
    /// after [`RedisServer::restart`] it is empty.
    ///
    /// # Panics
    ///
    /// When it cannot start; when `redis-server` is not installed the message
    /// is [`NOT_INSTALLED`].
    pub fn start() -> Self {
        Self::try_start_with(Persistence::None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a server that writes every change to an append-only file before
    /// answering (`--appendonly yes --appendfsync always`), so its data
    /// survives [`RedisServer::stop`] and [`RedisServer::restart`], as a
    /// production Redis configured for durability would.
    ///
    /// # Panics
    ///
    /// Like [`RedisServer::start`].
    pub fn start_persistent() -> Self {
        Self::try_start_with(Persistence::AppendOnly).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a server that also serves TLS on a port of its own
    /// ([`RedisServer::tls_url`]) with a certificate for `127.0.0.1` signed by
    /// the CA in `files`. With `clients_need_certificates`, a TLS client must
    /// present a certificate that CA signed (`--tls-auth-clients yes`). The
    /// plain port stays open for [`RedisServer::url`] and the readiness check.
    ///
    /// # Panics
    ///
    /// Like [`RedisServer::start`].
    pub fn start_tls(files: &PkiFiles, clients_need_certificates: bool) -> Self {
        let tls = TlsListener {
            port: 0,
            files: files.clone(),
            clients_need_certificates,
        };
        Self::try_start_inner(Persistence::None, Some(tls)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `rediss://127.0.0.1:TLS_PORT/` for a [`RedisServer::start_tls`] server.
    pub fn tls_url(&self) -> Option<String> {
        self.tls.as_ref().map(|tls| format!("rediss://127.0.0.1:{}/", tls.port))
    }

    /// [`RedisServer::start`] without panicking.
    ///
    /// # Errors
    ///
    /// When `redis-server` is missing ([`io::ErrorKind::NotFound`], message
    /// [`NOT_INSTALLED`]) or no server answered `PING` on any port tried.
    pub fn try_start() -> io::Result<Self> {
        Self::try_start_with(Persistence::None)
    }

    fn try_start_with(persistence: Persistence) -> io::Result<Self> {
        Self::try_start_inner(persistence, None)
    }

    fn try_start_inner(persistence: Persistence, tls: Option<TlsListener>) -> io::Result<Self> {
        let mut last_error = None;
        for _ in 0..PORT_TRIES {
            let tls = match &tls {
                Some(tls) => Some(TlsListener {
                    port: free_port()?,
                    ..tls.clone()
                }),
                None => None,
            };
            let mut server = Self {
                port: free_port()?,
                persistence,
                dir: tempfile::Builder::new().prefix("graph-comms-redis-").tempdir()?,
                child: None,
                tls,
            };
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                // Most likely the port was taken between the check and the bind.
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running (not yet stopped or exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// The last `lines` lines of the server's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
    }

    /// Stops the server with `SIGTERM` and waits until the process is gone:
    /// Redis is down and its port refuses connections. Blocks the calling
    /// thread for as long as Redis takes to exit (milliseconds without
    /// persistence).
    ///
    /// # Errors
    ///
    /// When it is not running, or did not exit within [`STOP_TIMEOUT`] (it is
    /// then killed).
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| io::Error::other("redis-server is not running"))?;
        signal::send(child.id(), Signal::Term)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("redis-server did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it"),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the server again on the same port (stopping it first if it
    /// runs) and waits until it answers `PING`, so clients reconnect to the
    /// same URL. Without persistence it comes back empty.
    ///
    /// # Errors
    ///
    /// When it does not answer within [`READY_TIMEOUT`], e.g. because another
    /// process took the port meanwhile.
    pub fn restart(&mut self) -> io::Result<()> {
        if self.child.is_some() {
            self.stop()?;
        }
        self.launch()
    }

    fn launch(&mut self) -> io::Result<()> {
        let dir = self.dir.path();
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", ""])
            .arg("--dir")
            .arg(dir)
            .args(["--daemonize", "no", "--logfile"])
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match self.persistence {
            Persistence::None => command.args(["--appendonly", "no"]),
            Persistence::AppendOnly => command.args(["--appendonly", "yes", "--appendfsync", "always"]),
        };
        if let Some(tls) = &self.tls {
            command
                .args(["--tls-port", &tls.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&tls.files.server_cert)
                .arg("--tls-key-file")
                .arg(&tls.files.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.files.ca_cert)
                .args([
                    "--tls-auth-clients",
                    if tls.clients_need_certificates { "yes" } else { "no" },
                ]);
        }
        let child = command.spawn().map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                io::Error::new(io::ErrorKind::NotFound, NOT_INSTALLED)
            } else {
                io::Error::other(format!("cannot start redis-server: {e}"))
            }
        })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => return Err(io::Error::other("redis-server is not running")),
            };
            if let Some(status) = exited {
                self.child = None;
                return Err(io::Error::other(format!(
                    "redis-server on port {} exited ({status}); log:\n{}",
                    self.port,
                    self.log_tail(5)
                )));
            }
            if ping(addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill_now();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-server on port {} did not answer PING within {READY_TIMEOUT:?}; log:\n{}",
                        self.port,
                        self.log_tail(5)
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// Whether a Redis at `addr` answers `PING` with `PONG` (not `-LOADING`).
pub(crate) fn ping(addr: SocketAddr) -> bool {
    let attempt = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        stream.set_write_timeout(Some(Duration::from_millis(500)))?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = [0_u8; 16];
        let n = stream.read(&mut reply)?;
        Ok(reply[..n].starts_with(b"+PONG"))
    };
    attempt().unwrap_or(false)
}

/// The last `lines` lines of a text file (empty when it cannot be read).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
