//! `bench suite`: runs every benchmark as separate processes and writes the report.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::httpc;
use crate::server::Mode;

/// Arguments of `bench suite`.
#[derive(Debug, clap::Args)]
pub(crate) struct SuiteArgs {
    /// Where to write the Markdown report.
    #[arg(long, default_value = "bench/report.md")]
    pub(crate) out: PathBuf,
    /// Seconds per wrk measurement.
    #[arg(long, default_value_t = 5)]
    pub(crate) seconds: u64,
    /// Calls the webhook load is spread over.
    #[arg(long, default_value_t = 1000)]
    pub(crate) calls: usize,
    /// Calls for `transfer-bot demo --calls N`.
    #[arg(long, default_value_t = 2000)]
    pub(crate) demo_calls: usize,
    /// Largest call count of the memory benchmark.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) memory_calls: usize,
    /// Skip the perf profiles.
    #[arg(long)]
    pub(crate) no_profile: bool,
    /// Repetitions of each webhook and open-loop measurement (the report gives their median and min-max).
    #[arg(long, default_value_t = 3)]
    pub(crate) reps: usize,
    /// Open-loop rate in requests/s (default: half the full path's saturated rate at 32
    /// connections, from the webhook section, or measured first when it is not run).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// Run only these sections (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) only: Vec<Section>,
    /// Another build's `bench` binary (an earlier commit's, built in its own
    /// target directory): its full-path server runs beside this build's in
    /// the webhook section, measured in turn, and the report gives this
    /// build's full path against it, both as ratios of the same run.
    #[arg(long)]
    pub(crate) baseline_exe: Option<PathBuf>,
}

/// A section of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Section {
    /// Webhook CPU per request and throughput, and their profiles.
    Webhook,
    /// Open-loop notification latency with the per-stage breakdown.
    Latency,
    /// End-to-end transfers per second (`transfer-bot demo --calls`).
    Demo,
    /// Memory per tracked call.
    Memory,
    /// Start-up times.
    Startup,
}

/// Which cores the server and the load generator run on.
struct Pinning {
    server: Option<&'static str>,
    load: Option<&'static str>,
}

impl Pinning {
    fn detect(cores: usize) -> Self {
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

    fn command(core: Option<&str>, program: &Path) -> Command {
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

struct Ctx {
    exe: PathBuf,
    bin_dir: PathBuf,
    work: PathBuf,
    pin: Pinning,
    clk_tck: f64,
    seconds: u64,
    fixture: PathBuf,
    lua: PathBuf,
    notes: Vec<String>,
    /// The private Redis of the Redis figures, when `redis-server` is installed.
    redis_url: Option<String>,
}

/// A private `redis-server` (loopback, no persistence) for the Redis figures.
struct PrivateRedis {
    child: Child,
    url: String,
}

impl PrivateRedis {
    fn start(work: &Path) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let dir = work.join("redis");
        std::fs::create_dir_all(&dir)?;
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &addr.port().to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        let redis = Self {
            child,
            url: format!("redis://{addr}/"),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pong(addr) {
            if Instant::now() > deadline {
                bail!("redis-server did not answer PING on {addr}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(redis)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pong(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// A running `bench serve`.
struct Server {
    mode: Mode,
    /// Started from `--baseline-exe`, not this build.
    baseline: bool,
    child: Child,
    addr: SocketAddr,
    setup_file: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// CPU ticks (user + system, all threads) of a process.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); after the comm, state is index 0, so utime is 11 and stime 12.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// Reads a child's stdout lines on a thread, so waits can time out.
fn line_reader(child: &mut Child) -> anyhow::Result<mpsc::Receiver<String>> {
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

fn wait_for_line(rx: &mpsc::Receiver<String>, prefix: &str, timeout: Duration) -> anyhow::Result<String> {
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

impl Ctx {
    fn start_server(&self, mode: Mode, calls: usize, stages: bool) -> anyhow::Result<Server> {
        self.start_server_of(&self.exe, mode, calls, stages)
    }

    /// [`Ctx::start_server`] with the `bench` binary `exe` (this build's, or a baseline build's).
    fn start_server_of(&self, exe: &Path, mode: Mode, calls: usize, stages: bool) -> anyhow::Result<Server> {
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
    fn wrk(&self, server: &Server, connections: usize, seconds: u64) -> anyhow::Result<WrkRun> {
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

    fn self_command(&self, core: Option<&str>) -> Command {
        Pinning::command(core, &self.exe)
    }

    fn openloop(&self, server: &Server, rate: f64) -> anyhow::Result<(Value, Value)> {
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

    /// A flat `perf` profile of `pid` while `load` runs; the top lines.
    fn profile(&self, pid: u32, label: &str, load: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<String> {
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
        let _ = Command::new("kill").args(["-INT", &perf.id().to_string()]).status();
        let _ = perf.wait();
        loaded?;
        perf_report(&data)
    }
}

fn perf_report(data: &Path) -> anyhow::Result<String> {
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
fn tidy_perf_line(line: &str) -> String {
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

struct WrkRun {
    requests: u64,
    rps: f64,
    non_2xx: u64,
    socket_errors: Option<String>,
    cpu_us_per_req: f64,
    core_use: f64,
}

/// The repetitions of one wrk point.
struct Point {
    connections: usize,
    runs: Vec<WrkRun>,
}

impl Point {
    fn rps(&self) -> Spread {
        Spread::of(self.runs.iter().map(|r| r.rps))
    }

    fn cpu(&self) -> Spread {
        Spread::of(self.runs.iter().map(|r| r.cpu_us_per_req))
    }

    fn core_use(&self) -> f64 {
        median(self.runs.iter().map(|r| r.core_use).collect())
    }
}

struct ModeResult {
    mode: Mode,
    /// Measured on the `--baseline-exe` build.
    baseline: bool,
    points: Vec<Point>,
    hooks_ran: u64,
    /// Redis round trips on the notification path during the runs (`redis` mode).
    redis_round_trips: Option<u64>,
    profile: Option<String>,
}

/// The median of repeated measurements and their range.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        Self {
            median: median(values.clone()),
            min: values.iter().copied().reduce(f64::min).unwrap_or(f64::NAN),
            max: values.iter().copied().reduce(f64::max).unwrap_or(f64::NAN),
        }
    }

    /// `median (min-max)`, each divided by `scale` and shown with `decimals`.
    fn show(&self, scale: f64, decimals: usize, unit: &str) -> String {
        if !self.median.is_finite() {
            return "n/a".into();
        }
        format!(
            "{:.d$}{unit} ({:.d$}-{:.d$})",
            self.median / scale,
            self.min / scale,
            self.max / scale,
            d = decimals
        )
    }
}

fn ratio(value: f64, baseline: f64) -> String {
    if baseline > 0.0 && value.is_finite() {
        format!("{:.2}x", value / baseline)
    } else {
        "n/a".into()
    }
}

fn us(ns: &Value) -> String {
    ns.as_f64()
        .map_or_else(|| "n/a".into(), |v| format!("{:.0} µs", v / 1000.0))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**MISSED**" }
}

/// Runs everything and writes the report.
pub(crate) fn run(args: SuiteArgs) -> anyhow::Result<()> {
    let suite_started = Instant::now();
    let exe = std::env::current_exe()?;
    let bin_dir = exe.parent().context("no bin dir")?.to_path_buf();
    let root = std::env::current_dir()?;
    let work = std::env::temp_dir().join(format!("graph-comms-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let clk_tck = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let mut ctx = Ctx {
        exe,
        bin_dir,
        work: work.clone(),
        pin: Pinning::detect(cores),
        clk_tck,
        seconds: args.seconds,
        fixture: graph_comms_testkit::fixtures::path(crate::httpc::FIXTURE),
        lua: root.join("bench/wrk/notify.lua"),
        notes: Vec::new(),
        redis_url: None,
    };
    let redis = match PrivateRedis::start(&work) {
        Ok(redis) => {
            ctx.redis_url = Some(redis.url.clone());
            Some(redis)
        }
        Err(e) => {
            ctx.notes
                .push(format!("no Redis figures: {e:#} (install redis-server)"));
            None
        }
    };
    if ctx.pin.server.is_none() {
        ctx.notes
            .push("taskset unavailable or fewer than 2 cores: server and load generator share the CPUs.".into());
    }
    let perf_ok = !args.no_profile
        && Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-o"])
            .arg(work.join("probe.data"))
            .args(["--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());

    let mut report = String::new();
    let _ = writeln!(report, "# graph-comms benchmark report\n");
    environment(&mut report, cores, &root, &ctx);

    let wanted = |section: Section| args.only.is_empty() || args.only.contains(&section);
    let reps = args.reps.max(1);
    let mut profiled = Vec::new();
    let mut full_rate = None;
    if wanted(Section::Webhook) {
        eprintln!("== webhook: bare handler, full path and uncached JWT, interleaved, {reps} repetitions");
        let exe = ctx.exe.clone();
        let mut modes = vec![(Mode::Bare, exe.as_path()), (Mode::Full, &exe), (Mode::Uncached, &exe)];
        if let Some(baseline) = &args.baseline_exe {
            eprintln!(
                "== webhook: and the baseline build's full path ({})",
                baseline.display()
            );
            modes.push((Mode::Full, baseline.as_path()));
        }
        let mut results = webhook_modes(&ctx, &modes, args.calls, reps, perf_ok)?;
        let shared = match &redis {
            Some(_) => {
                eprintln!("== webhook: shared Redis store");
                webhook_modes(&ctx, &[(Mode::Redis, &exe)], args.calls, reps, perf_ok)?.pop()
            }
            None => None,
        };
        let baseline = if args.baseline_exe.is_some() {
            results.pop()
        } else {
            None
        };
        let uncached = results.pop().context("no uncached result")?;
        let full = results.pop().context("no full result")?;
        let bare = results.pop().context("no bare result")?;
        webhook_section(
            &mut report,
            &ctx,
            args.calls,
            &full,
            &bare,
            &uncached,
            shared.as_ref(),
            baseline.as_ref(),
        );
        full_rate = full.points.first().map(|p| p.rps().median);
        profiled = [Some(full), Some(uncached), shared].into_iter().flatten().collect();
    }

    if wanted(Section::Latency) {
        eprintln!("== latency: open loop against the bare and full servers, interleaved, {reps} repetitions");
        latency_section(&mut report, &ctx, args.calls, reps, args.rate, full_rate)?;
    }

    if wanted(Section::Demo) {
        eprintln!("== transfer-bot demo");
        demo_section(&mut report, &mut ctx, args.demo_calls, perf_ok);
    }

    if wanted(Section::Memory) {
        eprintln!("== memory");
        memory_section(&mut report, &ctx, args.memory_calls)?;
    }

    if wanted(Section::Startup) {
        eprintln!("== start-up");
        startup_section(&mut report, &mut ctx);
    }

    if !profiled.is_empty() {
        profiles_section(&mut report, &profiled.iter().collect::<Vec<_>>());
    }
    if !ctx.notes.is_empty() {
        let _ = writeln!(report, "## Notes\n");
        for note in &ctx.notes {
            let _ = writeln!(report, "- {note}");
        }
        let _ = writeln!(report);
    }
    let _ = writeln!(
        report,
        "Suite wall time: {:.0} s.",
        suite_started.elapsed().as_secs_f64()
    );
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, &report).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{report}");
    eprintln!("report written to {}", args.out.display());
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

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

fn environment(report: &mut String, cores: usize, root: &Path, ctx: &Ctx) {
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

/// The wrk points of `modes`, whose servers run side by side and are measured in turn,
/// `reps` times, so a change in the machine's load falls on every mode alike.
fn webhook_modes(
    ctx: &Ctx,
    modes: &[(Mode, &Path)],
    calls: usize,
    reps: usize,
    profile: bool,
) -> anyhow::Result<Vec<ModeResult>> {
    let servers = modes
        .iter()
        .map(|(mode, exe)| ctx.start_server_of(exe, *mode, calls, false))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let before = servers
        .iter()
        .map(|s| httpc::get_json(s.addr, "/stats"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut points: Vec<Vec<Point>> = modes
        .iter()
        .map(|_| {
            [32, 256]
                .into_iter()
                .map(|connections| Point {
                    connections,
                    runs: Vec::new(),
                })
                .collect()
        })
        .collect();
    for rep in 0..reps {
        for (server, points) in servers.iter().zip(points.iter_mut()) {
            for point in points.iter_mut() {
                eprintln!(
                    "   repetition {}/{reps}: {} connections, {:?}{}",
                    rep + 1,
                    point.connections,
                    server.mode,
                    if server.baseline { " (baseline build)" } else { "" }
                );
                ctx.wrk(server, point.connections, 1)?; // warm-up
                point.runs.push(ctx.wrk(server, point.connections, ctx.seconds)?);
            }
        }
    }
    // Let the per-call workers drain before counting hook runs.
    std::thread::sleep(Duration::from_millis(500));
    let mut results = Vec::new();
    for ((server, before), points) in servers.iter().zip(&before).zip(points) {
        let after = httpc::get_json(server.addr, "/stats")?;
        let count = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
        let redis_round_trips = after["redis_round_trips"]
            .as_u64()
            .map(|a| a.saturating_sub(count(before, "redis_round_trips")));
        let profile = (profile && server.mode != Mode::Bare && !server.baseline).then(|| {
            let label = format!("{:?}", server.mode).to_lowercase();
            ctx.profile(server.pid(), &label, || ctx.wrk(server, 32, 4).map(|_| ()))
                .unwrap_or_else(|e| format!("(profile failed: {e})"))
        });
        results.push(ModeResult {
            mode: server.mode,
            baseline: server.baseline,
            points,
            hooks_ran: count(&after, "notifications").saturating_sub(count(before, "notifications")),
            redis_round_trips,
            profile,
        });
    }
    Ok(results)
}

#[allow(clippy::too_many_arguments)]
fn webhook_section(
    report: &mut String,
    ctx: &Ctx,
    calls: usize,
    full: &ModeResult,
    bare: &ModeResult,
    uncached: &ModeResult,
    shared: Option<&ModeResult>,
    baseline: Option<&ModeResult>,
) {
    let _ = writeln!(report, "## 1. Webhook cost\n");
    let reps = bare.points.first().map_or(0, |p| p.runs.len());
    let _ = writeln!(
        report,
        "wrk -t1, {} s per point after a 1 s warm-up, POSTing the `transferAccepted` notification with an RS256 bearer \
         token, round-robin over {calls} calls. In the full path every call has a real pending transfer attempt (set \
         up through the emulator before the load), so each request runs token check, parse, queue, the call's \
         worker, the transfer machine and the no-op hooks. CPU per request = server utime+stime / completed requests. \
         The bare, full and uncached servers run side by side and are measured in turn, {reps} times; each figure is \
         the median of the {reps} runs with their range (min-max) in brackets, and each ratio is of medians.\n",
        ctx.seconds
    );
    let _ = writeln!(
        report,
        "| path | connections | requests/s | vs bare | server CPU per request | vs bare | server core busy | non-2xx |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|");
    for result in [Some(bare), Some(full), Some(uncached), shared, baseline]
        .into_iter()
        .flatten()
    {
        for (point, base) in result.points.iter().zip(&bare.points) {
            let _ = writeln!(
                report,
                "| {} | {} | {} | {} | {} | {} | {:.0}% | {} |",
                result.label(),
                point.connections,
                point.rps().show(1.0, 0, ""),
                ratio(point.rps().median, base.rps().median),
                point.cpu().show(1.0, 1, " µs"),
                ratio(point.cpu().median, base.cpu().median),
                point.core_use() * 100.0,
                point.runs.iter().map(|r| r.non_2xx).sum::<u64>()
            );
        }
    }
    let _ = writeln!(report);
    for result in [Some(full), Some(uncached), shared].into_iter().flatten() {
        let requests: u64 = result.points.iter().flat_map(|p| &p.runs).map(|r| r.requests).sum();
        let _ = writeln!(
            report,
            "- {}: {} notifications reached `on_notification` during the measured and warm-up runs ({} measured requests).",
            label(result.mode),
            result.hooks_ran,
            requests
        );
        for point in &result.points {
            for errors in point.runs.iter().filter_map(|r| r.socket_errors.as_ref()) {
                let _ = writeln!(
                    report,
                    "- {} at {} connections: {errors}",
                    label(result.mode),
                    point.connections
                );
            }
        }
    }
    if let Some(shared) = shared
        && let Some(trips) = shared.redis_round_trips
        && shared.hooks_ran > 0
    {
        let per = trips as f64 / shared.hooks_ran as f64;
        let _ = writeln!(
            report,
            "- {}: {trips} Redis round trips for {} notifications = {per:.2} per notification (goal <= 3: {}).",
            label(shared.mode),
            shared.hooks_ran,
            verdict(per <= 3.0)
        );
    }
    if let Some(baseline) = baseline {
        for (point, base) in full.points.iter().zip(&baseline.points) {
            let _ = writeln!(
                report,
                "- this build's full path against the baseline build's, {} connections: CPU per request {}, \
                 requests/s {} (both measured in this run, in turn with the bare server).",
                point.connections,
                ratio(point.cpu().median, base.cpu().median),
                ratio(point.rps().median, base.rps().median)
            );
        }
    }
    if let (Some(f), Some(b)) = (full.points.first(), bare.points.first()) {
        let cpu = f.cpu().median / b.cpu().median;
        let tput = f.rps().median / b.rps().median;
        let _ = writeln!(report, "\nTargets (32 connections, medians):");
        let _ = writeln!(
            report,
            "- full-path CPU per request <= 1.5x bare: {:.2}x, {}",
            cpu,
            verdict(cpu <= 1.5)
        );
        let _ = writeln!(
            report,
            "- full-path throughput >= 0.7x bare: {:.2}x, {}",
            tput,
            verdict(tput >= 0.7)
        );
        if b.core_use() < 0.9 {
            let _ = writeln!(
                report,
                "- The bare server's core was only {:.0}% busy: its throughput is limited by the load generator, \
                 so the throughput ratio flatters neither side; the CPU-per-request ratio is the fair comparison.",
                b.core_use() * 100.0
            );
        }
    }
    let _ = writeln!(report);
}

impl ModeResult {
    fn label(&self) -> String {
        if self.baseline {
            format!("{}, baseline build", label(self.mode))
        } else {
            label(self.mode).to_owned()
        }
    }
}

fn label(mode: Mode) -> &'static str {
    match mode {
        Mode::Bare => "bare axum handler (baseline)",
        Mode::Full => "full path, token cache on",
        Mode::Uncached => "full path, token cache off (RSA per request)",
        Mode::Redis => "full path, calls shared through Redis",
    }
}

/// Busy and total jiffies of each CPU (`cpuN` lines of `/proc/stat`).
fn cpu_jiffies() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
            let total: u64 = v.iter().sum();
            // idle and iowait are the 4th and 5th columns.
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// One open-loop run and what the machine did meanwhile.
struct LatencyRun {
    mode: Mode,
    rep: usize,
    load: String,
    client: Value,
    stats: Value,
    stages: Value,
    /// Share of each CPU that was busy (anyone's work) during the run.
    cores_busy: Vec<f64>,
    /// Share of the run's wall time the server's threads were runnable but not running.
    server_waited: f64,
}

impl LatencyRun {
    fn client_ns(&self, key: &str) -> f64 {
        self.client[key].as_f64().unwrap_or(f64::NAN)
    }

    /// Share of the recorded window the client was runnable but not running.
    fn client_waited(&self) -> f64 {
        let wait = |k: &str| self.client[k]["wait_ns"].as_f64().unwrap_or(f64::NAN);
        (wait("sched_after") - wait("sched_before")) / self.client_ns("window_ns")
    }

    fn segment(&self, name: &str, key: &str) -> f64 {
        self.stages["segments"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name))
            .filter(|s| s["count"].as_u64().unwrap_or(0) > 0)
            .and_then(|s| s[key].as_f64())
            .unwrap_or(f64::NAN)
    }
}

impl Ctx {
    fn latency_run(&self, server: &Server, rate: f64, rep: usize) -> anyhow::Result<LatencyRun> {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let sched = |v: &Value| v["sched"]["wait_ns"].as_f64().unwrap_or(f64::NAN);
        let before = httpc::get_json(server.addr, "/stats")?;
        let jiffies = cpu_jiffies();
        let started = Instant::now();
        let (client, stats) = self.openloop(server, rate)?;
        let wall_ns = started.elapsed().as_secs_f64() * 1e9;
        let cores_busy = cpu_jiffies()
            .iter()
            .zip(&jiffies)
            .map(|((busy, total), (busy0, total0))| (busy - busy0) as f64 / (total - total0).max(1) as f64)
            .collect();
        let stages = httpc::get_json(server.addr, "/stats/stages")?;
        Ok(LatencyRun {
            mode: server.mode,
            rep,
            load: load.split_whitespace().next().unwrap_or("?").to_owned(),
            server_waited: (sched(&stats) - sched(&before)) / wall_ns,
            client,
            stats,
            stages,
            cores_busy,
        })
    }
}

fn latency_section(
    report: &mut String,
    ctx: &Ctx,
    calls: usize,
    reps: usize,
    rate: Option<f64>,
    full_rate: Option<f64>,
) -> anyhow::Result<()> {
    let bare = ctx.start_server(Mode::Bare, calls, true)?;
    let full = ctx.start_server(Mode::Full, calls, true)?;
    let (rate, rate_from) = match (rate, full_rate) {
        (Some(rate), _) => (rate, "given with `--rate`".to_owned()),
        (None, Some(saturated)) => (
            saturated * 0.5,
            "50% of the full path's saturated rate at 32 connections (median, section 1)".to_owned(),
        ),
        (None, None) => {
            ctx.wrk(&full, 32, 1)?;
            let saturated = ctx.wrk(&full, 32, ctx.seconds)?.rps;
            (
                saturated * 0.5,
                format!("50% of the full path's saturated rate at 32 connections ({saturated:.0}/s, measured first)"),
            )
        }
    };
    let mut runs = Vec::new();
    for rep in 0..reps {
        for server in [&bare, &full] {
            eprintln!("   repetition {}/{reps}: {:?}", rep + 1, server.mode);
            runs.push(ctx.latency_run(server, rate, rep)?);
        }
    }
    let of = |mode: Mode| runs.iter().filter(move |r| r.mode == mode);
    let spread = |mode: Mode, f: &dyn Fn(&LatencyRun) -> f64| Spread::of(of(mode).map(f));

    let _ = writeln!(report, "## 2. Notification-to-hook latency (open loop)\n");
    let _ = writeln!(
        report,
        "{rate:.0} requests/s ({rate_from}), on a fixed schedule from one busy-polling thread over 64 connections; \
         client latency is measured from each request's intended send time (no coordinated omission). Server-side \
         hook: `event.received_at` -> start of `on_notification` (hdrhistogram in the hook). Both servers record \
         each request's stages (`bench serve --stages`) and run side by side; the runs alternate bare, full, {reps} \
         times. Each figure is the median of the {reps} runs, with their range (min-max) in brackets.\n"
    );
    let _ = writeln!(
        report,
        "| server | client p50 | p99 | p99.9 | max | p99 vs bare | hook p50 | hook p99 | hook p99.9 | recorded / scheduled | non-202 |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|---|---|");
    let client_p99 = |mode: Mode| spread(mode, &|r| r.client_ns("p99_ns"));
    for mode in [Mode::Bare, Mode::Full] {
        let client = |key: &'static str| spread(mode, &move |r| r.client_ns(key));
        let hook = |key: &'static str| {
            if mode == Mode::Bare {
                "-".to_owned()
            } else {
                spread(mode, &move |r| r.stats[key].as_f64().unwrap_or(f64::NAN)).show(1e3, 0, " µs")
            }
        };
        let sum = |key: &str| of(mode).map(|r| r.client[key].as_u64().unwrap_or(0)).sum::<u64>();
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            label(mode),
            client("p50_ns").show(1e3, 0, " µs"),
            client("p99_ns").show(1e3, 0, " µs"),
            client("p999_ns").show(1e3, 0, " µs"),
            client("max_ns").show(1e3, 0, " µs"),
            ratio(client_p99(mode).median, client_p99(Mode::Bare).median),
            hook("p50_ns"),
            hook("p99_ns"),
            hook("p999_ns"),
            sum("recorded"),
            sum("recorded_target"),
            sum("non_202"),
        );
    }

    let _ = writeln!(
        report,
        "\nWhat the machine did during each run (the cores are shared with other processes):\n"
    );
    let _ = writeln!(
        report,
        "| run | server | load (1 min) | core 0 / core 1 busy | client waited for its core | client loop stalls > 100 µs | server waited for its core | client p99 | server p99 (read -> written) |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|");
    for run in &runs {
        let cores = run
            .cores_busy
            .iter()
            .map(|c| format!("{:.0}%", c * 100.0))
            .collect::<Vec<_>>()
            .join(" / ");
        let _ = writeln!(
            report,
            "| {} | {} | {} | {cores} | {:.1}% | {} ({:.1}% of the time, longest {:.1} ms) | {:.1}% | {} | {} |",
            run.rep + 1,
            if run.mode == Mode::Bare { "bare" } else { "full" },
            run.load,
            run.client_waited() * 100.0,
            run.client["stalls"],
            run.client_ns("stalled_ns") / run.client_ns("window_ns") * 100.0,
            run.client_ns("longest_stall_ns") / 1e6,
            run.server_waited * 100.0,
            us(&run.client["p99_ns"]),
            us(&run.stages["server"]["p99_ns"]),
        );
    }
    let contended = runs.iter().any(|r| r.client_waited() > 0.01 || r.server_waited > 0.01);
    if contended {
        let _ = writeln!(
            report,
            "\n**Other processes kept the client or the server waiting for their core for more than 1% of some runs: \
             those runs measure the machine's scheduling as much as the code.**"
        );
    }

    // The slowest 1% is shown for each server's run with the median client p99, so that its
    // segments add up to its total.
    let median_run = |mode: Mode| {
        let mut runs: Vec<&LatencyRun> = of(mode).collect();
        runs.sort_by(|a, b| a.client_ns("p99_ns").total_cmp(&b.client_ns("p99_ns")));
        runs.get(runs.len() / 2).copied()
    };
    let tail_total = |mode: Mode| {
        median_run(mode).map_or(f64::NAN, |r| {
            r.stages["tail_total_mean_ns"].as_f64().unwrap_or(f64::NAN)
        })
    };
    let tail_mean = |mode: Mode, name: &str| median_run(mode).map_or(f64::NAN, |r| r.segment(name, "tail_mean_ns"));
    let tail_cell = |mode: Mode, name: &'static str| {
        let mean = tail_mean(mode, name);
        if mean.is_finite() {
            format!("{:.0} µs ({:.0}%)", mean / 1e3, mean / tail_total(mode) * 100.0)
        } else {
            "-".into()
        }
    };
    let _ = writeln!(
        report,
        "\nPer-stage breakdown (`bench/src/stages.rs`): each segment runs from the previous stamp the request has to \
         this one; the bare server has no token, parse or queue stamps, so its `respond` runs from `headers`. \
         \"Slowest 1%\" is the mean time of the segment over the 1% of requests with the longest intended-send -> \
         written time, and its share of their total, in the run with the median client p99 (run {} for bare, {} \
         for full).\n",
        median_run(Mode::Bare).map_or(0, |r| r.rep + 1),
        median_run(Mode::Full).map_or(0, |r| r.rep + 1),
    );
    let _ = writeln!(
        report,
        "| stage | what | bare p50 | bare p99 | bare p99.9 | full p50 | full p99 | full p99.9 | full p99 vs bare | slowest 1%: bare | slowest 1%: full |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|---|---|");
    let fine = |s: Spread| {
        if s.median.is_finite() && s.median < 100e3 {
            s.show(1e3, 1, " µs")
        } else {
            s.show(1e3, 0, " µs")
        }
    };
    for (name, what) in crate::stages::SEGMENTS {
        let q = |mode: Mode, key: &'static str| spread(mode, &move |r| r.segment(name, key));
        let cell = |mode: Mode, key: &'static str| {
            let s = q(mode, key);
            if s.median.is_finite() { fine(s) } else { "-".into() }
        };
        let _ = writeln!(
            report,
            "| `{name}` | {what} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(Mode::Bare, "p50_ns"),
            cell(Mode::Bare, "p99_ns"),
            cell(Mode::Bare, "p999_ns"),
            cell(Mode::Full, "p50_ns"),
            cell(Mode::Full, "p99_ns"),
            cell(Mode::Full, "p999_ns"),
            ratio(q(Mode::Full, "p99_ns").median, q(Mode::Bare, "p99_ns").median),
            tail_cell(Mode::Bare, name),
            tail_cell(Mode::Full, name),
        );
    }
    for (key, what) in [
        ("server", "server: first read -> response written"),
        ("total", "intended send time -> response written"),
    ] {
        let q = |mode: Mode, k: &'static str| spread(mode, &move |r| r.stages[key][k].as_f64().unwrap_or(f64::NAN));
        let _ = writeln!(
            report,
            "| **{key}** | {what} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fine(q(Mode::Bare, "p50_ns")),
            fine(q(Mode::Bare, "p99_ns")),
            fine(q(Mode::Bare, "p999_ns")),
            fine(q(Mode::Full, "p50_ns")),
            fine(q(Mode::Full, "p99_ns")),
            fine(q(Mode::Full, "p999_ns")),
            ratio(q(Mode::Full, "p99_ns").median, q(Mode::Bare, "p99_ns").median),
            if key == "total" {
                format!("{:.0} µs", tail_total(Mode::Bare) / 1e3)
            } else {
                "-".into()
            },
            if key == "total" {
                format!("{:.0} µs", tail_total(Mode::Full) / 1e3)
            } else {
                "-".into()
            },
        );
    }
    // Where the slowest 1% of full-path requests spent their time.
    let share = |names: &[&'static str]| {
        names
            .iter()
            .map(|n| tail_mean(Mode::Full, n))
            .filter(|v| v.is_finite())
            .sum::<f64>()
            / tail_total(Mode::Full)
            * 100.0
    };
    let _ = writeln!(
        report,
        "\nSlowest 1% of full-path requests: {:.0}% of their time before the server read them (client send delay \
         {:.0}%, kernel and server wake-up {:.0}%), {:.0}% in hyper and the endpoint (`headers` to `respond`), {:.0}% \
         writing the response.",
        share(&["send", "accept"]),
        share(&["send"]),
        share(&["accept"]),
        share(&["headers", "auth", "parse", "enqueue", "respond"]),
        share(&["written"]),
    );

    let hook_p99 = spread(Mode::Full, &|r| r.stats["p99_ns"].as_f64().unwrap_or(f64::NAN)).median;
    let full_p99 = client_p99(Mode::Full).median;
    let _ = writeln!(report, "\nTarget p99 < 1 ms (medians):");
    let _ = writeln!(
        report,
        "- notification-to-hook (server side): {:.0} µs, {}",
        hook_p99 / 1e3,
        verdict(hook_p99 < 1e6)
    );
    let _ = writeln!(
        report,
        "- full request round trip from intended send time: {:.0} µs, {}",
        full_p99 / 1e3,
        verdict(full_p99 < 1e6)
    );
    let threads = full.pid();
    let workers = runs
        .iter()
        .find(|r| r.mode == Mode::Full)
        .map(|r| (r.stats["tokio_workers"].clone(), r.stats["threads"].clone()));
    if let Some((workers, names)) = workers {
        let _ = writeln!(
            report,
            "- the full server (pid {threads}) ran {workers} tokio worker thread(s); its threads: {names}"
        );
    }
    let _ = writeln!(report);
    Ok(())
}

fn demo_section(report: &mut String, ctx: &mut Ctx, calls: usize, perf_ok: bool) {
    let _ = writeln!(report, "## 3. End-to-end transfers per second\n");
    let bot = ctx.bin_dir.join("transfer-bot");
    if !bot.exists() {
        let _ = writeln!(report, "Not measured: the `transfer-bot` binary was not built.\n");
        return;
    }
    let started = Instant::now();
    let mut command = Command::new(&bot);
    command.args(["demo", "--calls", &calls.to_string()]);
    let output = command.output();
    let wall = started.elapsed().as_secs_f64();
    match output {
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let _ = writeln!(
                report,
                "`transfer-bot demo --calls {calls}` (bot, emulator and calls in one process, not pinned), {}, {wall:.1} s wall. Its output:\n",
                o.status
            );
            let _ = writeln!(report, "```text\n{}\n```\n", text.trim_end());
        }
        Err(e) => {
            let _ = writeln!(report, "Not measured: could not run transfer-bot: {e}\n");
            return;
        }
    }
    concurrency_sweep(report, ctx, &bot, calls, perf_ok);
    shared_demo(report, ctx, &bot, calls);
    if perf_ok {
        let data = ctx.work.join("perf-demo.data");
        let recorded = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "999", "-o"])
            .arg(&data)
            .arg("--")
            .arg(&bot)
            .args(["demo", "--calls", &(calls / 2).max(100).to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match recorded.map_err(anyhow::Error::from).and_then(|_| perf_report(&data)) {
            Ok(top) => {
                let _ = writeln!(
                    report,
                    "Where the demo's CPU time goes (`perf record -e cpu-clock`, self time):\n\n```text\n{top}\n```\n"
                );
            }
            Err(e) => ctx.notes.push(format!("demo profile failed: {e}")),
        }
    }
}

/// Calls in flight of the sweep; the first ratio's baseline is 64.
const SWEEP: [usize; 4] = [16, 64, 256, 1000];

/// `demo --calls N --concurrency C --seed 7` for each C of [`SWEEP`], three runs
/// each, and where the CPU goes at the highest one.
fn concurrency_sweep(report: &mut String, ctx: &mut Ctx, bot: &Path, calls: usize, perf_ok: bool) {
    let run = |concurrency: usize| -> Option<(f64, String)> {
        let output = Command::new(bot)
            .args([
                "demo",
                "--calls",
                &calls.to_string(),
                "--concurrency",
                &concurrency.to_string(),
            ])
            .args(["--seed", "7"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let rate = text
            .lines()
            .find_map(|l| l.split(" = ").nth(1)?.strip_suffix(" transfers/s")?.parse::<f64>().ok())?;
        let p99 = text
            .lines()
            .find_map(|l| l.split("p99 ").nth(1)?.split(',').next().map(str::to_owned))
            .unwrap_or_default();
        Some((rate, p99))
    };
    let mut rows = Vec::new();
    for concurrency in SWEEP {
        eprintln!("   {concurrency} in flight");
        let runs: Vec<(f64, String)> = (0..3).filter_map(|_| run(concurrency)).collect();
        let rates: Vec<f64> = runs.iter().map(|(r, _)| *r).collect();
        let p99 = runs.last().map(|(_, p)| p.clone()).unwrap_or_default();
        rows.push((concurrency, rates, p99));
    }
    let _ = writeln!(
        report,
        "Calls in flight: `transfer-bot demo --calls {calls} --concurrency C --seed 7`, three runs each \
         (median, with min-max). Target: 1000 in flight >= 0.9x the rate at 64.\n"
    );
    let _ = writeln!(
        report,
        "| in flight | transfers/s (median) | min-max | vs 64 | incoming -> finished p99 (last run) |\n|---|---|---|---|---|"
    );
    let base = rows
        .iter()
        .find(|(c, rates, _)| *c == 64 && !rates.is_empty())
        .map(|(_, rates, _)| median(rates.clone()));
    for (concurrency, rates, p99) in &rows {
        if rates.is_empty() {
            let _ = writeln!(report, "| {concurrency} | - | - | - | - |");
            continue;
        }
        let rate = median(rates.clone());
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(0.0, f64::max);
        let vs = base.map_or_else(|| "-".to_owned(), |b| ratio(rate, b));
        let _ = writeln!(report, "| {concurrency} | {rate:.1} | {lo:.0}-{hi:.0} | {vs} | {p99} |");
    }
    let top = rows.last().filter(|(_, rates, _)| !rates.is_empty());
    if let (Some((concurrency, rates, _)), Some(base)) = (top, base) {
        let r = median(rates.clone()) / base;
        let _ = writeln!(
            report,
            "\n{concurrency} in flight vs 64: {r:.2}x, target >= 0.9x: {}.\n",
            verdict(r >= 0.9)
        );
    }
    if !perf_ok {
        return;
    }
    let in_flight = SWEEP[SWEEP.len() - 1];
    match cpu_shares(ctx, bot, calls, in_flight) {
        Ok(shares) => {
            let _ = writeln!(
                report,
                "Where the CPU goes at {in_flight} in flight (`perf record --call-graph dwarf`, each sample counted once, \
                 by the first of these found on its stack):\n\n| part | share of CPU samples |\n|---|---|"
            );
            for (part, share) in shares {
                let _ = writeln!(report, "| {part} | {:.1}% |", share * 100.0);
            }
            let _ = writeln!(report);
        }
        Err(e) => ctx.notes.push(format!("demo CPU shares failed: {e}")),
    }
}

/// Which frame on a sample's stack names the part of the demo it is spent in.
const PARTS: [(&str, &[&str]); 4] = [
    (
        "emulator (its API handlers and notification deliveries)",
        &["graph_comms_emulator::"],
    ),
    ("load driver (`demo::load`)", &["transfer_bot::demo::"]),
    (
        "bot (framework crates and the app's policy)",
        &[
            "graph_comms_handler::",
            "graph_comms_notify::",
            "graph_comms_client::",
            "transfer_bot::",
        ],
    ),
    ("shared: HTTP, runtime and kernel frames of no one part", &[""]),
];

/// Shares of the CPU samples per [`PARTS`] entry, for one `demo --calls` run.
fn cpu_shares(ctx: &Ctx, bot: &Path, calls: usize, in_flight: usize) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let data = ctx.work.join("perf-demo-shares.data");
    let status = Command::new("perf")
        .args(["record", "-F", "199", "--call-graph", "dwarf,16384", "-o"])
        .arg(&data)
        .arg("--")
        .arg(bot)
        .args([
            "demo",
            "--calls",
            &calls.to_string(),
            "--concurrency",
            &in_flight.to_string(),
        ])
        .args(["--seed", "7"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "perf record: {status}");
    let script = Command::new("perf")
        .args(["script", "-F", "ip,sym", "-i"])
        .arg(&data)
        .stderr(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&script.stdout);
    let mut counts = [0usize; PARTS.len()];
    for sample in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
        if let Some(part) = PARTS
            .iter()
            .position(|(_, marks)| marks.iter().any(|m| sample.contains(m)))
        {
            counts[part] += 1;
        }
    }
    let total = counts.iter().sum::<usize>();
    anyhow::ensure!(total > 0, "perf script gave no samples");
    Ok(PARTS
        .iter()
        .zip(counts)
        .map(|((part, _), n)| (*part, n as f64 / total as f64))
        .collect())
}

/// Transfers per second with 1 and with 3 `serve` processes sharing the
/// private Redis behind a round-robin proxy (`demo --instances N --calls M`).
fn shared_demo(report: &mut String, ctx: &Ctx, bot: &Path, calls: usize) {
    let Some(url) = &ctx.redis_url else {
        let _ = writeln!(report, "With Redis: not measured (no redis-server).\n");
        return;
    };
    let mut rates = Vec::new();
    let mut memory = None;
    for instances in [1usize, 3] {
        let before = crate::redis_memory::used_memory(url);
        let output = Command::new(bot)
            .args(["demo", "--instances", &instances.to_string(), "--redis", url])
            .args(["--calls", &calls.to_string(), "--concurrency", "32", "--seed", "7"])
            .output();
        let text = match output {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => {
                let _ = writeln!(report, "With Redis, {instances} instance(s): could not run: {e}\n");
                return;
            }
        };
        let rate = text
            .lines()
            .find_map(|l| l.split(" = ").nth(1)?.strip_suffix(" transfers/s")?.parse::<f64>().ok());
        let ok = text.lines().find(|l| l.starts_with("calls:")).unwrap_or("").to_owned();
        rates.push((instances, rate, ok));
        if memory.is_none() {
            memory = Some(before.and_then(|before| redis_cost(url, before)));
        }
    }
    let _ = writeln!(
        report,
        "With Redis: `transfer-bot demo --instances N --redis <private redis> --calls {calls} --concurrency 32 --seed 7`: \
         N `serve` processes sharing calls behind a loopback round-robin proxy, the emulator and the proxy in the demo \
         process, everything on the same cores.\n"
    );
    let _ = writeln!(
        report,
        "| instances | transfers/s | vs 1 instance | calls |\n|---|---|---|---|"
    );
    let base = rates.first().and_then(|(_, r, _)| *r);
    for (instances, rate, ok) in &rates {
        let shown = rate.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}"));
        let vs = match (rate, base) {
            (Some(r), Some(b)) => ratio(*r, b),
            _ => "-".to_owned(),
        };
        let _ = writeln!(report, "| {instances} | {shown} | {vs} | {ok} |");
    }
    let _ = writeln!(report);
    match memory {
        Some(Ok(cost)) => cost.write(report, calls),
        Some(Err(e)) => {
            let _ = writeln!(report, "Redis memory per call: not measured: {e:#}\n");
        }
        None => {}
    }
}

/// What the first shared demo run left in Redis.
struct RedisCost {
    used_delta: i64,
    records: Vec<u64>,
}

fn redis_cost(url: &str, before: u64) -> anyhow::Result<RedisCost> {
    let after = crate::redis_memory::used_memory(url)?;
    let mut records = Vec::new();
    for prefix in crate::redis_memory::demo_prefixes(url)? {
        records.extend(crate::redis_memory::record_sizes(url, &prefix)?);
    }
    Ok(RedisCost {
        used_delta: i64::try_from(after).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX),
        records,
    })
}

impl RedisCost {
    fn write(&self, report: &mut String, calls: usize) {
        const GOAL: f64 = 2048.0;
        let kept = self.records.len();
        let average = self.records.iter().sum::<u64>() as f64 / kept.max(1) as f64;
        let max = self.records.iter().max().copied().unwrap_or(0);
        let per_call = self.used_delta as f64 / calls.max(1) as f64;
        let _ = writeln!(
            report,
            "Redis memory per tracked call, after the 1-instance run ({calls} demo calls, ended, their records kept \
             for their retention): `used_memory` grew by {} B = {per_call:.0} B per call; `MEMORY USAGE` of the \
             {kept} call records: average {average:.0} B, max {max} B.\n",
            self.used_delta
        );
        let _ = writeln!(
            report,
            "Target < 2 KiB per tracked call (`used_memory` per call): {per_call:.0} B = {} of the goal, {}\n",
            ratio(per_call, GOAL),
            verdict(per_call < GOAL)
        );
    }
}

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

fn memory_section(report: &mut String, ctx: &Ctx, max_calls: usize) -> anyhow::Result<()> {
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Spawns `command` and polls `GET path` on `addr` until 200; milliseconds from spawn.
fn time_to_ready(mut command: Command, addr: SocketAddr, path: &str) -> anyhow::Result<(f64, Child)> {
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

fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

fn startup_section(report: &mut String, ctx: &mut Ctx) {
    let _ = writeln!(report, "## 5. Start-up\n");
    let mut bare = Vec::new();
    for _ in 0..5 {
        let measured = free_port().and_then(|addr| {
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
    let emu_addr = free_port()?;
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
            let addr = free_port()?;
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
struct EmulatorCredentials {
    base: String,
    tenant: String,
    app_id: String,
    secret: String,
}

impl EmulatorCredentials {
    fn parse(lines: &[String], addr: SocketAddr) -> anyhow::Result<Self> {
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

fn profiles_section(report: &mut String, results: &[&ModeResult]) {
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

/// A warning when something else kept the cores busy as the suite started:
/// a 1-minute load average above a quarter of the cores.
fn busy_warning(loadavg: &str, cores: usize) -> Option<String> {
    let load: f64 = loadavg.split_whitespace().next()?.parse().ok()?;
    let cores = cores.max(1) as f64;
    (load > cores / 4.0).then(|| {
        format!(
            "Warning: the machine was busy when the suite started (load {load:.2} on {cores:.0} cores); \
             ratios against the same-run baselines still hold, absolute figures may be low"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_machine_is_warned_about() {
        assert!(busy_warning("0.10 0.20 0.30 1/80 123", 2).is_none());
        let warning = busy_warning("1.80 1.20 0.90 3/90 456", 2).unwrap();
        assert!(warning.contains("load 1.80 on 2 cores"), "{warning}");
        assert!(busy_warning("", 2).is_none(), "no /proc/loadavg: no warning");
    }

    #[test]
    fn perf_lines_lose_padding_and_empty_columns() {
        let line = "     8.47%  libc.so.6          [.] __memmove_avx_unaligned_erms          -      -            ";
        assert_eq!(
            tidy_perf_line(line),
            "8.47%  libc.so.6  [.] __memmove_avx_unaligned_erms"
        );
    }

    #[test]
    fn ratios_and_medians() {
        assert_eq!(ratio(3.0, 2.0), "1.50x");
        assert_eq!(ratio(3.0, 0.0), "n/a");
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
    }

    #[test]
    fn emulator_credentials_are_read_from_its_banner() {
        let lines: Vec<String> = [
            "graph base url:      http://127.0.0.1:1/v1.0",
            "tenant id:           t-1",
            "app id:              a-1",
            "client secret:       s~1",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let creds = EmulatorCredentials::parse(&lines, "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!()));
        let creds = creds.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (creds.tenant.as_str(), creds.app_id.as_str(), creds.secret.as_str()),
            ("t-1", "a-1", "s~1")
        );
    }
}
