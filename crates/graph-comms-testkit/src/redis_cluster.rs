//! A private three-node Redis Cluster per test: `redis-server
//! --cluster-enabled yes` on free loopback ports, joined with `redis-cli
//! --cluster create`, each node persistent (`--appendonly yes --appendfsync
//! always`) so one can be stopped with a signal and started again on the same
//! port, identity (`nodes.conf`) and data.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::redis_server::{NOT_INSTALLED, PkiFiles, READY_TIMEOUT, STOP_TIMEOUT, ping, tail};
use crate::signal::{self, Signal};

/// The environment variable naming a running cluster the tests may share
/// (`scripts/test.sh` starts one): one or more comma-separated seed URLs.
pub const REDIS_CLUSTER_URL_VAR: &str = "GRAPH_COMMS_REDIS_CLUSTER_URL";

/// How long the cluster may take to report `cluster_state:ok` on every node.
pub const CLUSTER_OK_TIMEOUT: Duration = Duration::from_secs(30);
/// How many primaries [`RedisCluster::start`] starts.
pub const NODES: usize = 3;
/// Attempts at a whole cluster when a port is taken meanwhile.
const CLUSTER_TRIES: usize = 5;

/// One node: its ports and directory (`nodes.conf`, the append-only file, the log).
#[derive(Debug)]
struct Node {
    port: u16,
    bus_port: u16,
    /// The TLS client port of a [`RedisCluster::start_tls`] cluster.
    tls_port: Option<u16>,
    dir: PathBuf,
    child: Option<Child>,
}

/// Three `redis-server` primaries this test started, joined into a cluster
/// that covers all 16384 slots (no replicas); every node is killed on drop.
///
/// ```no_run
/// let mut cluster = graph_comms_testkit::RedisCluster::start();
/// let seeds = cluster.urls(); // redis://127.0.0.1:P1/, …
/// cluster.stop_node(1, graph_comms_testkit::signal::Signal::Term).expect("stops");
/// cluster.start_node(1).expect("back, same port and data; cluster_state:ok");
/// # let _ = seeds;
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Node>,
    tls: Option<PkiFiles>,
    dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts and joins [`NODES`] nodes and waits for `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When it cannot start; when `redis-server` is not installed the
    /// message is [`NOT_INSTALLED`].
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`RedisCluster::start`] without panicking.
    ///
    /// # Errors
    ///
    /// When `redis-server` or `redis-cli` is missing, or the cluster did not
    /// form (the message carries the nodes' logs).
    pub fn try_start() -> io::Result<Self> {
        Self::try_start_with(None)
    }

    /// A cluster whose nodes also serve TLS, on ports of their own, with a
    /// certificate for `127.0.0.1` signed by the CA in `files`, and talk TLS
    /// among themselves (`--tls-cluster yes`): the slot map then announces
    /// the TLS ports, so [`RedisCluster::urls`] are `rediss://` URLs. Clients
    /// need no certificate. The plain ports stay open for the test kit's
    /// own checks.
    ///
    /// # Panics
    ///
    /// Like [`RedisCluster::start`].
    pub fn start_tls(files: &PkiFiles) -> Self {
        Self::try_start_with(Some(files.clone())).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start_with(tls: Option<PkiFiles>) -> io::Result<Self> {
        let mut last_error = None;
        for _ in 0..CLUSTER_TRIES {
            match Self::try_start_once(tls.clone()) {
                Ok(cluster) => return Ok(cluster),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                // Most likely a port was taken between the check and the bind.
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("the Redis Cluster did not start")))
    }

    fn try_start_once(tls: Option<PkiFiles>) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("graph-comms-redis-cluster-")
            .tempdir()?;
        let mut nodes = Vec::with_capacity(NODES);
        for _ in 0..NODES {
            let port = free_port()?;
            let node_dir = dir.path().join(format!("node-{port}"));
            std::fs::create_dir_all(&node_dir)?;
            nodes.push(Node {
                port,
                // The bus would be port + 10000, which may be taken or above 65535.
                bus_port: free_port()?,
                tls_port: if tls.is_some() { Some(free_port()?) } else { None },
                dir: node_dir,
                child: None,
            });
        }
        let mut cluster = Self { nodes, tls, dir };
        for index in 0..NODES {
            cluster.launch(index)?;
        }
        cluster.create()?;
        cluster.wait_ok(CLUSTER_OK_TIMEOUT)?;
        Ok(cluster)
    }

    /// `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`.
    fn create(&self) -> io::Result<()> {
        let mut command = Command::new("redis-cli");
        if let Some(files) = &self.tls {
            command.arg("--tls").arg("--cacert").arg(&files.ca_cert);
        }
        command.arg("--cluster").arg("create");
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.tls_port.unwrap_or(node.port)));
        }
        let output = command
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    io::Error::new(io::ErrorKind::NotFound, NOT_INSTALLED)
                } else {
                    io::Error::other(format!("cannot run redis-cli: {e}"))
                }
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if output.status.success() && stdout.contains("[OK] All 16384 slots covered") {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "redis-cli --cluster create failed ({}):\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    /// The seed URLs, `redis://127.0.0.1:PORT/` for every node
    /// (`rediss://127.0.0.1:TLS_PORT/` for a [`RedisCluster::start_tls`] one).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| match node.tls_port {
                Some(port) => format!("rediss://127.0.0.1:{port}/"),
                None => format!("redis://127.0.0.1:{}/", node.port),
            })
            .collect()
    }

    /// The seeds as one comma-separated string, as [`REDIS_CLUSTER_URL_VAR`] holds them.
    pub fn urls_joined(&self) -> String {
        self.urls().join(",")
    }

    /// The nodes' client ports; they stay the same across restarts.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// The index of the node serving `key`'s slot (`CLUSTER KEYSLOT`, then `CLUSTER SLOTS`).
    ///
    /// # Errors
    ///
    /// When no node answers or none owns the slot.
    pub fn node_for_key(&self, key: &str) -> io::Result<usize> {
        let slot: u16 = self
            .cli_any(&["CLUSTER", "KEYSLOT", key])?
            .trim()
            .parse()
            .map_err(|e| io::Error::other(format!("CLUSTER KEYSLOT: {e}")))?;
        // `CLUSTER SHARDS` in redis-cli's raw form is awkward; `CLUSTER NODES` is one line per node.
        let nodes = self.cli_any(&["CLUSTER", "NODES"])?;
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // `ip:port@bus`: the TLS port on a TLS cluster.
            let Some(port) = fields
                .get(1)
                .and_then(|addr| addr.split(['@', ':']).nth(1))
                .and_then(|p| p.parse::<u16>().ok())
            else {
                continue;
            };
            let owns = fields.iter().skip(8).any(|range| {
                let mut bounds = range.split('-').filter_map(|b| b.parse::<u16>().ok());
                match (bounds.next(), bounds.next()) {
                    (Some(from), Some(to)) => (from..=to).contains(&slot),
                    (Some(only), None) => only == slot,
                    _ => false,
                }
            });
            if owns
                && let Some(index) = self
                    .nodes
                    .iter()
                    .position(|node| node.port == port || node.tls_port == Some(port))
            {
                return Ok(index);
            }
        }
        Err(io::Error::other(format!("no node owns slot {slot}:\n{nodes}")))
    }

    /// Moves the slot of `key` (with its keys) to node `to`, as a resharding
    /// does: `CLUSTER SETSLOT … IMPORTING/MIGRATING`, `MIGRATE` of every key
    /// in the slot, then `CLUSTER SETSLOT … NODE` on every node. Clients that
    /// knew the old owner get `MOVED` afterwards.
    ///
    /// # Errors
    ///
    /// When a step is refused (the message names it), or `to` owns it already.
    pub fn move_slot_of(&self, key: &str, to: usize) -> io::Result<()> {
        let from = self.node_for_key(key)?;
        if from == to {
            return Err(io::Error::other(format!("node {to} owns the slot of {key:?} already")));
        }
        let slot = self.cli_any(&["CLUSTER", "KEYSLOT", key])?.trim().to_owned();
        let (source, target) = (
            &self.nodes[from],
            self.nodes.get(to).ok_or_else(|| io::Error::other("no such node"))?,
        );
        let source_id = cli(source.port, &["CLUSTER", "MYID"])?.trim().to_owned();
        let target_id = cli(target.port, &["CLUSTER", "MYID"])?.trim().to_owned();
        let step = |port: u16, args: &[&str]| -> io::Result<()> {
            let out = cli(port, args)?;
            if out.trim() == "OK" || out.trim() == "NOKEY" {
                Ok(())
            } else {
                Err(io::Error::other(format!("{args:?} on port {port}: {out}")))
            }
        };
        step(target.port, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &source_id])?;
        step(source.port, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &target_id])?;
        loop {
            let keys = cli(source.port, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"])?;
            let keys: Vec<&str> = keys.lines().map(str::trim).filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let port = target.port.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", port.as_str(), "", "0", "5000", "KEYS"];
            args.extend(keys);
            step(source.port, &args)?;
        }
        for node in &self.nodes {
            step(node.port, &["CLUSTER", "SETSLOT", &slot, "NODE", &target_id])?;
        }
        Ok(())
    }

    /// The process id of node `index` while it runs.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.nodes.get(index)?.child.as_ref().map(Child::id)
    }

    /// Node `index`'s log file.
    pub fn log_path(&self, index: usize) -> Option<PathBuf> {
        self.nodes.get(index).map(|node| node.dir.join("redis.log"))
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes (never, once started).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The last `lines` lines of node `index`'s log, for failure messages.
    pub fn log_tail(&self, index: usize, lines: usize) -> String {
        self.nodes
            .get(index)
            .map(|node| tail(&node.dir.join("redis.log"), lines))
            .unwrap_or_default()
    }

    /// Stops node `index` with `signal` (`Term` for a clean shutdown, `Kill`
    /// for a crash: with `appendfsync always` every acknowledged write is on
    /// disk either way) and waits until the process is gone.
    ///
    /// # Errors
    ///
    /// When it is not running, or did not exit within [`STOP_TIMEOUT`] (it is
    /// then killed).
    pub fn stop_node(&mut self, index: usize, signal: Signal) -> io::Result<ExitStatus> {
        let node = self.node(index)?;
        let mut child = node
            .child
            .take()
            .ok_or_else(|| io::Error::other(format!("node {index} is not running")))?;
        signal::send(child.id(), signal)?;
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
                    format!(
                        "node {index} did not exit within {STOP_TIMEOUT:?} of SIG{}",
                        signal.name()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts node `index` again on its port, with its `nodes.conf` and
    /// append-only file, and waits until every node reports `cluster_state:ok`.
    ///
    /// # Errors
    ///
    /// When it runs already, does not answer within [`READY_TIMEOUT`] or the
    /// cluster is not ok within [`CLUSTER_OK_TIMEOUT`].
    pub fn start_node(&mut self, index: usize) -> io::Result<()> {
        if self.node(index)?.child.is_some() {
            return Err(io::Error::other(format!("node {index} is running")));
        }
        self.launch(index)?;
        self.wait_ok(CLUSTER_OK_TIMEOUT)
    }

    /// [`RedisCluster::stop_node`] with `SIGTERM`, then [`RedisCluster::start_node`].
    ///
    /// # Errors
    ///
    /// As those two.
    pub fn restart_node(&mut self, index: usize) -> io::Result<()> {
        self.stop_node(index, Signal::Term)?;
        self.start_node(index)
    }

    /// Waits until every running node reports `cluster_state:ok` with all
    /// slots served.
    ///
    /// # Errors
    ///
    /// When that does not happen within `timeout` (the message carries the
    /// last `CLUSTER INFO` and the logs).
    pub fn wait_ok(&self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut last = String::new();
            let all_ok = self.nodes.iter().all(|node| {
                let info = cli(node.port, &["CLUSTER", "INFO"]).unwrap_or_default();
                let ok = info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384");
                if !ok {
                    last = format!("port {}: {info}", node.port);
                }
                ok
            });
            if all_ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = (0..self.nodes.len())
                    .map(|i| format!("node {i}:\n{}", self.log_tail(i, 5)))
                    .collect();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the cluster was not ok within {timeout:?}; {last}\n{}", logs.join("\n")),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn node(&mut self, index: usize) -> io::Result<&mut Node> {
        let count = self.nodes.len();
        self.nodes
            .get_mut(index)
            .ok_or_else(|| io::Error::other(format!("no node {index} (the cluster has {count})")))
    }

    fn launch(&mut self, index: usize) -> io::Result<()> {
        let tls = self.tls.clone();
        let node = self.node(index)?;
        let mut command = Command::new("redis-server");
        if let (Some(files), Some(port)) = (&tls, node.tls_port) {
            command
                .args(["--tls-port", &port.to_string(), "--tls-cluster", "yes"])
                .arg("--tls-cert-file")
                .arg(&files.server_cert)
                .arg("--tls-key-file")
                .arg(&files.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&files.ca_cert)
                .args(["--tls-auth-clients", "no"]);
        }
        let child = command
            .args(["--bind", "127.0.0.1", "--port", &node.port.to_string()])
            .args(["--cluster-enabled", "yes", "--cluster-port", &node.bus_port.to_string()])
            .arg("--cluster-config-file")
            .arg(node.dir.join("nodes.conf"))
            // Well above a test's restart, so the others never mark it failed
            // (no replica could take over anyway) and stay `cluster_state:ok`.
            .args(["--cluster-node-timeout", "60000"])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&node.dir)
            .args(["--daemonize", "no", "--logfile"])
            .arg(node.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    io::Error::new(io::ErrorKind::NotFound, NOT_INSTALLED)
                } else {
                    io::Error::other(format!("cannot start redis-server: {e}"))
                }
            })?;
        node.child = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, node.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let node = self.node(index)?;
            let exited = match node.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => return Err(io::Error::other("redis-server is not running")),
            };
            if let Some(status) = exited {
                node.child = None;
                return Err(io::Error::other(format!(
                    "cluster node {index} on port {} exited ({status}); log:\n{}",
                    self.nodes[index].port,
                    self.log_tail(index, 5)
                )));
            }
            if ping(addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "cluster node {index} did not answer PING within {READY_TIMEOUT:?}; log:\n{}",
                        self.log_tail(index, 5)
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis-cli` against the first running node that answers.
    fn cli_any(&self, args: &[&str]) -> io::Result<String> {
        let mut last = io::Error::other("no node is running");
        for node in self.nodes.iter().filter(|node| node.child.is_some()) {
            match cli(node.port, args) {
                Ok(out) => return Ok(out),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The directory holding every node's files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `redis-cli -p PORT ARGS…`'s output.
fn cli(port: u16, args: &[&str]) -> io::Result<String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(io::Error::other(String::from_utf8_lossy(&output.stderr).into_owned()))
    }
}

/// The seed URLs of the cluster named by [`REDIS_CLUSTER_URL_VAR`], when set.
pub fn redis_cluster_urls() -> Option<Vec<String>> {
    let value = std::env::var(REDIS_CLUSTER_URL_VAR).ok()?;
    let urls: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect();
    (!urls.is_empty()).then_some(urls)
}

/// A cluster for a test: the shared one named by [`REDIS_CLUSTER_URL_VAR`]
/// (`None` returned as the guard), else a private one this test starts (kept
/// alive by the returned guard). Tests that stop nodes start their own
/// [`RedisCluster`] instead.
///
/// # Panics
///
/// When no variable is set and a cluster cannot be started.
pub fn shared_or_private_cluster() -> (Vec<String>, Option<RedisCluster>) {
    match redis_cluster_urls() {
        Some(urls) => (urls, None),
        None => {
            let cluster = RedisCluster::start();
            (cluster.urls(), Some(cluster))
        }
    }
}
