//! `bench openloop`: a fixed-schedule (open-loop) load generator.
//!
//! Request k is due at start + k/rate. Latency is measured from that intended time,
//! not from when a connection was free to send it, so a stalled server shows up in the
//! tail instead of slowing the load (no coordinated omission). One thread busy-polls
//! non-blocking sockets, so the schedule does not depend on timer granularity; each
//! pass asks the kernel once which sockets have a response (`epoll` through mio)
//! instead of reading every connection in flight, which at high rates made the
//! client itself the bottleneck.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::httpc::{Setup, complete_response, stamp_offset, write_stamp};
use crate::stages::{INTENDED_HEADER, SENT_HEADER, unix_ns};

/// Arguments of `bench openloop`.
#[derive(Debug, clap::Args)]
pub(crate) struct OpenLoopArgs {
    /// The server.
    #[arg(long)]
    pub(crate) addr: SocketAddr,
    /// The server's setup file (token and call ids).
    #[arg(long)]
    pub(crate) setup_file: PathBuf,
    /// Requests per second.
    #[arg(long)]
    pub(crate) rate: f64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    pub(crate) seconds: f64,
    /// Warm-up seconds, not recorded.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) warmup: f64,
    /// Connections available to the schedule.
    #[arg(long, default_value_t = 64)]
    pub(crate) connections: usize,
    /// What the thread does while nothing is due and no response is awaited.
    #[arg(long, value_enum, default_value_t = Idle::Spin)]
    pub(crate) idle: Idle,
}

/// How the load generator waits for the next due request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Idle {
    /// Keep polling (a thread that never sleeps).
    Spin,
    /// Sleep until shortly before the next due time when no response is awaited, then poll.
    Sleep,
}

/// How long before a due time a sleeping load generator asks to be woken (timer slack and wake-up).
const WAKE_MARGIN: Duration = Duration::from_micros(150);

/// A pass of the polling loop taking longer than this means the client was not running.
const STALL_NS: u64 = 100_000;
/// How long before the recorded window the server's figures are reset.
const RESET_LEAD: Duration = Duration::from_millis(100);

struct Conn {
    stream: TcpStream,
    /// The intended send time of the request in flight, and whether it is recorded.
    in_flight: Option<(Instant, bool)>,
    buf: Vec<u8>,
}

fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// Runs the schedule and prints one JSON line with the client-side latency.
pub(crate) fn run(args: OpenLoopArgs) -> anyhow::Result<()> {
    if args.rate.is_nan() || args.rate <= 0.0 {
        bail!("--rate must be positive");
    }
    let setup = Setup::read(&args.setup_file)?;
    let mut requests = setup.requests();
    let offsets = requests
        .first()
        .and_then(|r| Some((stamp_offset(r, INTENDED_HEADER)?, stamp_offset(r, SENT_HEADER)?)))
        .context("requests without stamp headers")?;
    let mut conns = (0..args.connections)
        .map(|_| {
            Ok(Conn {
                stream: connect(args.addr)?,
                in_flight: None,
                buf: Vec::with_capacity(1024),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut poll = Poll::new()?;
    for (c, conn) in conns.iter().enumerate() {
        poll.registry()
            .register(&mut SourceFd(&conn.stream.as_raw_fd()), Token(c), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(conns.len().max(1));
    // Readiness is edge-triggered: a connection stays marked until it is read dry.
    let mut readable = vec![false; conns.len()];
    let mut idle: Vec<usize> = (0..conns.len()).collect();
    let mut busy: Vec<usize> = Vec::with_capacity(conns.len());
    let mut due: VecDeque<(Instant, bool)> = VecDeque::new();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let interval_ns = 1e9 / args.rate;
    let start = Instant::now() + Duration::from_millis(10);
    let record_from = start + Duration::from_secs_f64(args.warmup);
    let end = record_from + Duration::from_secs_f64(args.seconds);
    let hard_stop = end + Duration::from_secs(10);
    let (mut scheduled, mut completed, mut errors, mut non_202) = (0u64, 0u64, 0u64, 0u64);
    let mut server_reset = false;
    let mut next_request = 0usize;
    let mut chunk = [0u8; 4096];
    // Stalls of this loop (the client descheduled) within the recorded window.
    let (mut last_pass, mut stalls, mut stalled_ns, mut longest_stall_ns) = (Instant::now(), 0u64, 0u64, 0u64);
    // This process's CPU time and run-queue wait over the recorded window (and its lead).
    let (mut sched_before, mut sched_after) = (None, None);
    loop {
        let now = Instant::now();
        if now > hard_stop {
            break;
        }
        let pass_gap = u64::try_from(now.duration_since(last_pass).as_nanos()).unwrap_or(u64::MAX);
        last_pass = now;
        if sched_after.is_none() && now >= end {
            sched_after = Some(crate::stages::schedstat("/proc/self/task"));
        }
        if now >= record_from && now < end && pass_gap > STALL_NS {
            stalls += 1;
            stalled_ns += pass_gap;
            longest_stall_ns = longest_stall_ns.max(pass_gap);
        }
        if !server_reset && now + RESET_LEAD >= record_from {
            // Server-side figures: count the same window as ours (give or take the lead),
            // resetting a little early so that the requests this blocking call delays
            // are warm-up ones, not recorded.
            crate::httpc::request(args.addr, "POST", "/stats/reset", Duration::from_secs(2))?;
            server_reset = true;
            last_pass = Instant::now();
            sched_before = Some(crate::stages::schedstat("/proc/self/task"));
        }
        loop {
            let at = start + Duration::from_nanos((scheduled as f64 * interval_ns) as u64);
            if at > now || at >= end {
                break;
            }
            due.push_back((at, at >= record_from));
            scheduled += 1;
        }
        let next_at = start + Duration::from_nanos((scheduled as f64 * interval_ns) as u64);
        let finished_schedule = next_at >= end;
        if finished_schedule && due.is_empty() && busy.is_empty() {
            break;
        }
        if args.idle == Idle::Sleep
            && due.is_empty()
            && busy.is_empty()
            && let Some(wake) = next_at.checked_sub(WAKE_MARGIN).filter(|w| *w > now)
        {
            std::thread::sleep(wake - now);
            // A deliberate sleep is not a stall; waking later than asked is.
            let woke = Instant::now();
            let late = u64::try_from(woke.saturating_duration_since(wake).as_nanos()).unwrap_or(u64::MAX);
            if woke >= record_from && woke < end && late > STALL_NS {
                stalls += 1;
                stalled_ns += late;
                longest_stall_ns = longest_stall_ns.max(late);
            }
            last_pass = woke;
            continue;
        }
        while !due.is_empty() {
            let Some(c) = idle.pop() else { break };
            let Some(job) = due.pop_front() else { break };
            let conn = &mut conns[c];
            let index = next_request % requests.len();
            let request = &mut requests[index];
            next_request += 1;
            // On the wall clock for the server; the delay since the intended time from `Instant`s.
            let (sent_at, sent_unix) = (Instant::now(), unix_ns());
            let late = u64::try_from(sent_at.saturating_duration_since(job.0).as_nanos()).unwrap_or(0);
            write_stamp(request, offsets.0, sent_unix.saturating_sub(late));
            write_stamp(request, offsets.1, sent_unix);
            if let Err(e) = write_all(&mut conn.stream, request) {
                bail!("write failed: {e}");
            }
            conn.in_flight = Some(job);
            busy.push(c);
        }
        if !busy.is_empty() {
            poll.poll(&mut events, Some(Duration::ZERO))?;
            for event in &events {
                readable[event.token().0] = true;
            }
        }
        let mut i = 0;
        while i < busy.len() {
            let c = busy[i];
            if !std::mem::take(&mut readable[c]) {
                i += 1;
                continue;
            }
            let conn = &mut conns[c];
            let closed = loop {
                match conn.stream.read(&mut chunk) {
                    Ok(0) => break true,
                    Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                    Err(e) => bail!("read failed: {e}"),
                }
            };
            if closed {
                errors += 1;
                poll.registry().deregister(&mut SourceFd(&conn.stream.as_raw_fd()))?;
                conn.stream = connect(args.addr)?;
                poll.registry()
                    .register(&mut SourceFd(&conn.stream.as_raw_fd()), Token(c), Interest::READABLE)?;
                conn.buf.clear();
                conn.in_flight = None;
                busy.swap_remove(i);
                idle.push(c);
                continue;
            }
            if let Some((end_at, status)) = complete_response(&conn.buf) {
                let done = Instant::now();
                conn.buf.drain(..end_at);
                if let Some((intended, record)) = conn.in_flight.take() {
                    if status != 202 {
                        non_202 += 1;
                    }
                    if record {
                        completed += 1;
                        let ns = u64::try_from(done.duration_since(intended).as_nanos()).unwrap_or(u64::MAX);
                        latency.saturating_record(ns.max(1));
                    }
                }
                busy.swap_remove(i);
                idle.push(c);
                continue;
            }
            i += 1;
        }
    }
    // The schedule can drain before a pass sees the window's end.
    let sched_after = sched_after.or_else(|| Some(crate::stages::schedstat("/proc/self/task")));
    let recorded_target = (args.rate * args.seconds) as u64;
    let result = serde_json::json!({
        "rate": args.rate,
        "idle": format!("{:?}", args.idle).to_lowercase(),
        "scheduled": scheduled,
        "recorded": completed,
        "recorded_target": recorded_target,
        "unfinished": busy.len() + due.len(),
        "errors": errors,
        "non_202": non_202,
        "p50_ns": latency.value_at_quantile(0.50),
        "p99_ns": latency.value_at_quantile(0.99),
        "p999_ns": latency.value_at_quantile(0.999),
        "max_ns": latency.max(),
        "stalls": stalls,
        "stalled_ns": stalled_ns,
        "longest_stall_ns": longest_stall_ns,
        "window_ns": u64::try_from(end.duration_since(record_from).as_nanos()).unwrap_or(u64::MAX),
        "sched_before": sched_before,
        "sched_after": sched_after,
    });
    println!("{result}");
    Ok(())
}

/// Writes a whole request; the socket buffer normally takes it in one go.
fn write_all(stream: &mut TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
