//! Per-request stage stamps of `bench serve --stages`, for the open-loop breakdown.
//!
//! Each request's life, as stamps (all `Instant`s in the server except the first two):
//!
//! - `intended`, `sent`: the open-loop client's intended send time and the time it
//!   wrote the request, both wall-clock nanoseconds in the request's
//!   `x-bench-intended` / `x-bench-sent` headers (wall clock so two processes agree;
//!   the client derives `intended` from `sent` and its `Instant`s, so only the
//!   `sent -> accept` segment crosses processes);
//! - `accept`: the connection's first read that returned bytes of the request
//!   ([`StampedIo`]), as an `Instant` and read on the wall clock at the same time;
//! - `headers`: hyper handed the parsed head to the service;
//! - `auth`, `parse`, `enqueue`: `graph_comms_notify`'s [`StageObserver`] (full path only);
//! - `respond`: the response body was finished (read to the end or dropped by hyper);
//! - `written`: the connection's `write` of the response returned ([`StampedIo`]).
//!
//! `GET /stats/stages` reports each segment between consecutive stamps
//! (p50/p99/p99.9/max) and how the slowest 1% of requests spent their time.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::Request;
use graph_comms_notify::{RequestStages, StageObserver};
use hdrhistogram::Histogram;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

/// Header with the client's intended send time (wall-clock ns since the epoch).
pub(crate) const INTENDED_HEADER: &str = "x-bench-intended";
/// Header with the time the client wrote the request (wall-clock ns since the epoch).
pub(crate) const SENT_HEADER: &str = "x-bench-sent";
/// Records kept at most (a 6 s run at 20k requests/s is 120k; a record is 144 B).
const MAX_RECORDS: usize = 500_000;

/// The stamps, in order; a segment ends at each stamp but the first.
pub(crate) const STAMPS: [&str; 9] = [
    "intended", "sent", "accept", "headers", "auth", "parse", "enqueue", "respond", "written",
];

/// What each segment (ending at the stamp of the same index) covers.
pub(crate) const SEGMENTS: [(&str, &str); 8] = [
    ("send", "client: intended send time -> request written to its socket"),
    (
        "accept",
        "kernel and wake-up: client's write -> server's first read of the request",
    ),
    ("headers", "hyper: first read -> request head handed to the service"),
    ("auth", "routing and bearer token check"),
    ("parse", "body read, JSON parse, events built"),
    ("enqueue", "admission, per-call reservation, queue send"),
    ("respond", "202 built, response body finished"),
    ("written", "hyper's write() of the response returned"),
];

/// Nanoseconds since the Unix epoch, now.
pub(crate) fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Scheduler statistics (`/proc/<pid>/task/<tid>/schedstat`) summed over the threads
/// under `tasks`: ns on a CPU, ns runnable but waiting for one, and time slices.
pub(crate) fn schedstat(tasks: &str) -> serde_json::Value {
    let mut sum = [0u64; 3];
    if let Ok(dir) = std::fs::read_dir(tasks) {
        for task in dir.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            for (slot, value) in sum.iter_mut().zip(text.split_whitespace()) {
                *slot += value.parse::<u64>().unwrap_or(0);
            }
        }
    }
    serde_json::json!({ "run_ns": sum[0], "wait_ns": sum[1], "slices": sum[2] })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One request's stamps so far.
#[derive(Debug, Clone, Copy)]
struct Draft {
    intended: Option<u64>,
    sent: Option<u64>,
    accept: Instant,
    /// `accept` on the wall clock, read at the same time.
    accept_unix: u64,
    headers: Instant,
    auth: Option<Instant>,
    parse: Option<Instant>,
    enqueue: Option<Instant>,
    respond: Option<Instant>,
}

/// The request's draft, shared by the connection, the request's extensions and its body.
#[derive(Debug, Clone)]
struct DraftSlot(Arc<Mutex<Draft>>);

/// One finished request: each stamp in ns relative to `accept` (negative before it).
#[derive(Debug, Clone, Copy)]
struct Record([Option<i64>; 9]);

/// Collects the records of every request; shared by every connection.
pub(crate) struct Recorder {
    records: Mutex<Vec<Record>>,
}

impl Recorder {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            records: Mutex::new(Vec::with_capacity(256 * 1024)),
        })
    }

    /// Forgets the records.
    pub(crate) fn reset(&self) {
        lock(&self.records).clear();
    }

    fn finish(&self, draft: &Draft, written: Instant) {
        let rel = |at: Instant| -> i64 {
            if at >= draft.accept {
                i64::try_from(at.duration_since(draft.accept).as_nanos()).unwrap_or(i64::MAX)
            } else {
                -i64::try_from(draft.accept.duration_since(at).as_nanos()).unwrap_or(i64::MAX)
            }
        };
        let accept_unix = i128::from(draft.accept_unix);
        let wall = |ns: Option<u64>| ns.map(|ns| i64::try_from(i128::from(ns) - accept_unix).unwrap_or(i64::MIN));
        let record = Record([
            wall(draft.intended),
            wall(draft.sent),
            Some(0),
            Some(rel(draft.headers)),
            draft.auth.map(rel),
            draft.parse.map(rel),
            draft.enqueue.map(rel),
            draft.respond.map(rel),
            Some(rel(written)),
        ]);
        let mut records = lock(&self.records);
        if records.len() < MAX_RECORDS {
            records.push(record);
        }
    }

    /// Each segment's quantiles and the slowest 1%'s time per segment, as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        let records = lock(&self.records).clone();
        summarize(&records)
    }
}

fn histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// The segments of one record: (index of the stamp it ends at, ns), each from the last stamp present before it.
fn segments(record: &Record) -> Vec<(usize, u64)> {
    let mut out = Vec::with_capacity(8);
    let mut last: Option<i64> = None;
    for (i, stamp) in record.0.iter().enumerate() {
        if let Some(at) = *stamp {
            if let Some(from) = last {
                out.push((i, u64::try_from(at - from).unwrap_or(0)));
            }
            last = Some(at);
        }
    }
    out
}

/// From the first stamp present (the intended time when the client sent it) to `written`.
fn total(record: &Record) -> u64 {
    let first = record.0.iter().flatten().next().copied().unwrap_or(0);
    let last = record.0[8].unwrap_or(0);
    u64::try_from(last - first).unwrap_or(0)
}

/// Count, p50, p99, p99.9 and max of a histogram of nanoseconds.
pub(crate) fn quantiles(h: &Histogram<u64>) -> serde_json::Value {
    serde_json::json!({
        "count": h.len(),
        "p50_ns": h.value_at_quantile(0.50),
        "p99_ns": h.value_at_quantile(0.99),
        "p999_ns": h.value_at_quantile(0.999),
        "max_ns": h.max(),
    })
}

fn summarize(records: &[Record]) -> serde_json::Value {
    let mut per_segment: Vec<Histogram<u64>> = (0..STAMPS.len()).map(|_| histogram()).collect();
    let mut totals = histogram();
    let mut server = histogram();
    for record in records {
        for (i, ns) in segments(record) {
            per_segment[i].saturating_record(ns.max(1));
        }
        totals.saturating_record(total(record).max(1));
        if let (Some(accept), Some(written)) = (record.0[2], record.0[8]) {
            server.saturating_record(u64::try_from(written - accept).unwrap_or(0).max(1));
        }
    }
    // The slowest 1% by total: the mean time of each segment among them.
    let mut by_total: Vec<&Record> = records.iter().collect();
    by_total.sort_by_key(|r| std::cmp::Reverse(total(r)));
    let tail = &by_total[..by_total.len().div_ceil(100)];
    let mut tail_sum = [0u128; 9];
    for record in tail {
        for (i, ns) in segments(record) {
            tail_sum[i] += u128::from(ns);
        }
    }
    let tail_mean = |i: usize| {
        if tail.is_empty() {
            0
        } else {
            u64::try_from(tail_sum[i] / tail.len() as u128).unwrap_or(u64::MAX)
        }
    };
    let tail_total = tail.iter().map(|r| u128::from(total(r))).sum::<u128>() / (tail.len().max(1) as u128);
    let segments: Vec<serde_json::Value> = SEGMENTS
        .iter()
        .enumerate()
        .map(|(k, (name, what))| {
            let i = k + 1;
            let mut q = quantiles(&per_segment[i]);
            q["name"] = (*name).into();
            q["what"] = (*what).into();
            q["tail_mean_ns"] = tail_mean(i).into();
            q
        })
        .collect();
    serde_json::json!({
        "requests": records.len(),
        "segments": segments,
        "total": quantiles(&totals),
        "server": quantiles(&server),
        "tail_requests": tail.len(),
        "tail_total_mean_ns": u64::try_from(tail_total).unwrap_or(u64::MAX),
    })
}

/// A connection's state: the pending accept stamp and the request being answered.
#[derive(Default)]
struct ConnState {
    accept: Mutex<Option<(Instant, u64)>>,
    current: Mutex<Option<DraftSlot>>,
}

/// The server side of a connection, stamping the first read of each request
/// and the write of its response.
pub(crate) struct StampedIo {
    inner: TcpStream,
    conn: Arc<ConnState>,
    recorder: Arc<Recorder>,
}

impl StampedIo {
    fn read_some(&self) {
        let mut accept = lock(&self.conn.accept);
        if accept.is_none() && lock(&self.conn.current).is_none() {
            *accept = Some((Instant::now(), unix_ns()));
        }
    }

    fn wrote(&self) {
        let written = Instant::now();
        if let Some(DraftSlot(draft)) = lock(&self.conn.current).take() {
            self.recorder.finish(&lock(&draft), written);
        }
    }
}

impl AsyncRead for StampedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.read_some();
        }
        polled
    }
}

impl AsyncWrite for StampedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Stamps `respond` when the response body ends or is dropped.
struct StampedBody {
    inner: Body,
    draft: Option<DraftSlot>,
}

impl StampedBody {
    fn done(&mut self) {
        if let Some(DraftSlot(draft)) = self.draft.take() {
            let mut draft = lock(&draft);
            draft.respond.get_or_insert_with(Instant::now);
        }
    }
}

impl HttpBody for StampedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.done();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for StampedBody {
    fn drop(&mut self) {
        // The inner body (and the endpoint's own observer in it) finishes first.
        drop(std::mem::replace(&mut self.inner, Body::empty()));
        self.done();
    }
}

/// Fills the full path's stages into the request's draft.
pub(crate) struct NotifyStages;

impl StageObserver for NotifyStages {
    fn observe(&self, stages: &RequestStages, extensions: &axum::http::Extensions) {
        if let Some(DraftSlot(draft)) = extensions.get::<DraftSlot>() {
            let mut draft = lock(draft);
            draft.auth = stages.authenticated;
            draft.parse = stages.parsed;
            draft.enqueue = stages.queued;
        }
    }
}

fn header_ns(request: &Request<Incoming>, name: &str) -> Option<u64> {
    request.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Serves `router` over HTTP/1 like `axum::serve` (keep-alive, no timeouts); with a
/// recorder, every request is stamped.
pub(crate) async fn serve(listener: TcpListener, router: Router, recorder: Option<Arc<Recorder>>) {
    let builder = hyper::server::conn::http1::Builder::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("accept error: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let router = router.clone();
        match &recorder {
            None => {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    router.clone().oneshot(request.map(Body::new))
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            Some(recorder) => {
                let conn = Arc::new(ConnState::default());
                let io = StampedIo {
                    inner: stream,
                    conn: Arc::clone(&conn),
                    recorder: Arc::clone(recorder),
                };
                let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                    let headers = Instant::now();
                    let (accept, accept_unix) = lock(&conn.accept).take().unwrap_or_else(|| (headers, unix_ns()));
                    // Only the notifications are recorded, not `/stats` and the like.
                    let slot = (request.uri().path() == crate::server::CALLBACK_PATH).then(|| {
                        DraftSlot(Arc::new(Mutex::new(Draft {
                            intended: header_ns(&request, INTENDED_HEADER),
                            sent: header_ns(&request, SENT_HEADER),
                            accept,
                            accept_unix,
                            headers,
                            auth: None,
                            parse: None,
                            enqueue: None,
                            respond: None,
                        })))
                    });
                    if let Some(slot) = &slot {
                        *lock(&conn.current) = Some(slot.clone());
                        request.extensions_mut().insert(slot.clone());
                    }
                    let router = router.clone();
                    async move {
                        let response = router.oneshot(request.map(Body::new)).await?;
                        Ok::<_, std::convert::Infallible>(match slot {
                            Some(slot) => response.map(|inner| {
                                Body::new(StampedBody {
                                    inner,
                                    draft: Some(slot),
                                })
                            }),
                            None => response,
                        })
                    }
                });
                let connection = builder.serve_connection(TokioIo::new(io), service);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(stamps: [Option<i64>; 9]) -> Record {
        Record(stamps)
    }

    #[test]
    fn segments_join_the_stamps_present_in_order() {
        // Bare server: no auth/parse/enqueue, so `respond` counts from `headers`.
        let bare = record([
            Some(-50),
            Some(-40),
            Some(0),
            Some(5),
            None,
            None,
            None,
            Some(9),
            Some(12),
        ]);
        assert_eq!(segments(&bare), vec![(1, 10), (2, 40), (3, 5), (7, 4), (8, 3)]);
        assert_eq!(total(&bare), 62);
        // wrk requests carry no client stamps: the total starts at accept.
        let wrk = record([
            None,
            None,
            Some(0),
            Some(1),
            Some(2),
            Some(3),
            Some(4),
            Some(5),
            Some(6),
        ]);
        assert_eq!(segments(&wrk).len(), 6);
        assert_eq!(total(&wrk), 6);
    }

    #[tokio::test]
    async fn every_request_on_a_keep_alive_connection_is_stamped_in_order() {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorder = Recorder::new();
        tokio::spawn(serve(
            listener,
            crate::server::bare_router(),
            Some(Arc::clone(&recorder)),
        ));
        let answers = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            let mut answers = Vec::new();
            for sent in [1_000u64, 2_000, 3_000] {
                let request = format!(
                    "POST {} HTTP/1.1\r\nHost: x\r\n{INTENDED_HEADER}: {}\r\n{SENT_HEADER}: {sent}\r\n\
                     Content-Length: 2\r\n\r\n{{}}",
                    crate::server::CALLBACK_PATH,
                    sent - 10
                );
                stream.write_all(request.as_bytes()).unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while crate::httpc::complete_response(&buf).is_none() {
                    let n = stream.read(&mut chunk).unwrap();
                    assert!(n > 0, "connection closed");
                    buf.extend_from_slice(&chunk[..n]);
                }
                answers.push(crate::httpc::complete_response(&buf).unwrap().1);
            }
            answers
        })
        .await
        .unwrap();
        assert_eq!(answers, vec![202, 202, 202]);
        // A record is pushed when the server's write returns, which can be after the
        // client has read the response: wait for the last one (bounded, not timed).
        for _ in 0..1000 {
            if lock(&recorder.records).len() == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let records = lock(&recorder.records).clone();
        assert_eq!(records.len(), 3);
        for record in &records {
            let [intended, sent, accept, headers, auth, parse, enqueue, respond, written] = record.0;
            assert_eq!(sent.unwrap() - intended.unwrap(), 10, "client stamps kept");
            assert_eq!(accept, Some(0));
            assert_eq!(
                (auth, parse, enqueue),
                (None, None, None),
                "no endpoint stages on the bare server"
            );
            let (headers, respond, written) = (headers.unwrap(), respond.unwrap(), written.unwrap());
            assert!(0 <= headers && headers <= respond && respond <= written, "{record:?}");
        }
    }

    #[test]
    fn the_tail_is_the_slowest_percent() {
        let mut records: Vec<Record> = (0..199)
            .map(|_| {
                record([
                    Some(-10),
                    Some(-9),
                    Some(0),
                    Some(1),
                    None,
                    None,
                    None,
                    Some(2),
                    Some(3),
                ])
            })
            .collect();
        // One slow request whose time went to the wire.
        records.push(record([
            Some(-1000),
            Some(-999),
            Some(0),
            Some(1),
            None,
            None,
            None,
            Some(2),
            Some(3),
        ]));
        let summary = summarize(&records);
        assert_eq!(summary["requests"], 200);
        assert_eq!(summary["tail_requests"], 2);
        let accept = &summary["segments"][1];
        assert_eq!(accept["name"], "accept");
        // Mean of 999 (the slow one) and 9 (one of the others).
        assert_eq!(accept["tail_mean_ns"], 504);
    }
}
