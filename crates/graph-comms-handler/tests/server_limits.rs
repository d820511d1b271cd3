//! `serve_with_limits` on real sockets: slow headers and slow bodies are cut
//! off, the connection cap holds new connections back, and ordinary clients
//! are served meanwhile. The clients are plain blocking sockets on their own
//! threads, so they write exactly the bytes each test means.
//!
//! The time bounds below only keep a broken build from hanging; the
//! assertions are about what happens and in which order, not how fast.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use graph_comms_handler::{ServerLimits, serve_with_limits};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous bound on anything the server should do "soon".
const BOUND: Duration = Duration::from_secs(5);

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/echo", post(|body: Bytes| async move { body.len().to_string() }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
}

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: ServerLimits) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with_limits(listener, router(), limits, async move {
            let _ = stopped.await;
        }));
        Self { addr, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(BOUND, self.task)
            .await
            .expect("the server stops")
            .expect("the server task ran")
            .expect("the server ended without error");
    }
}

fn limits(header_read_timeout: Duration, request_timeout: Duration, max_connections: usize) -> ServerLimits {
    ServerLimits {
        header_read_timeout,
        request_timeout,
        max_connections,
    }
}

/// Reads one response (head and `Content-Length` body) within `within`;
/// `None` when no byte came in that time.
fn read_response(stream: &mut TcpStream, within: Duration) -> Option<String> {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if buf.len() >= end + 4 + length {
                return Some(String::from_utf8_lossy(&buf).into_owned());
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) && buf.is_empty() => {
                return None;
            }
            Err(e) => panic!(
                "reading a response: {e} (read so far: {:?})",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
}

/// A client that never finishes its request head: one byte every 50 ms.
/// Returns when the server closed the connection (read 0 or an error, or a
/// write refused), or `false` after `give_up`.
fn trickle_headers(addr: SocketAddr, give_up: Duration) -> bool {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    if stream.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ").is_err() {
        return true;
    }
    let started = Instant::now();
    let mut chunk = [0u8; 256];
    while started.elapsed() < give_up {
        if stream.write_all(b"a").is_err() {
            return true;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {} // not expected, but not a close either: keep watching
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

fn get_root(addr: SocketAddr, within: Duration) -> Option<String> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    read_response(&mut stream, within)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_trickle_their_headers_are_closed_while_others_are_served() {
    let header_read_timeout = Duration::from_millis(300);
    let server = Server::start(limits(header_read_timeout, Duration::from_secs(30), 1024)).await;
    let addr = server.addr;

    let slow: Vec<_> = (0..50)
        .map(|_| tokio::task::spawn_blocking(move || trickle_headers(addr, header_read_timeout + BOUND)))
        .collect();
    // While they trickle, a complete request is answered.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = tokio::task::spawn_blocking(move || get_root(addr, BOUND))
        .await
        .unwrap()
        .expect("a response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");

    for (i, client) in slow.into_iter().enumerate() {
        assert!(
            client.await.unwrap(),
            "slow client {i} was still connected {BOUND:?} after the header read timeout"
        );
    }
    // The server still serves after closing them.
    let response = tokio::task::spawn_blocking(move || get_root(addr, BOUND))
        .await
        .unwrap()
        .expect("a response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_the_cap_waits_until_one_closes() {
    let server = Server::start(limits(Duration::from_secs(30), Duration::from_secs(30), 2)).await;
    let addr = server.addr;

    let outcome = tokio::task::spawn_blocking(move || {
        // Two keep-alive connections, each served once and left open and idle.
        let mut open = Vec::new();
        for _ in 0..2 {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
            let response = read_response(&mut stream, BOUND).expect("a response");
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            open.push(stream);
        }
        // A third connects (the kernel queues it) but is not served.
        let mut third = TcpStream::connect(addr).unwrap();
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .unwrap();
        let early = read_response(&mut third, Duration::from_millis(500));
        // One of the first two leaves: the third is served.
        drop(open.remove(0));
        let late = read_response(&mut third, BOUND);
        (early, late, open)
    })
    .await
    .unwrap();
    let (early, late, _still_open) = outcome;
    assert_eq!(early, None, "the third connection was served while two were open");
    let late = late.expect("the third connection is served once one closed");
    assert!(late.starts_with("HTTP/1.1 200"), "{late}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_request_timeout_gets_408_and_the_connection_closes() {
    let server = Server::start(limits(Duration::from_secs(30), Duration::from_millis(300), 1024)).await;
    let addr = server.addr;

    let (response, closed) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n")
            .unwrap();
        // One body byte every 50 ms, on another thread, until the server stops reading.
        let mut writer = stream.try_clone().unwrap();
        let trickle = std::thread::spawn(move || {
            for _ in 0..1000 {
                if writer.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let response = read_response(&mut stream, BOUND);
        // Then the server closes the connection.
        stream.set_read_timeout(Some(BOUND)).unwrap();
        let mut rest = [0u8; 64];
        let closed = match stream.read(&mut rest) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        };
        let _ = stream.shutdown(std::net::Shutdown::Both);
        trickle.join().unwrap();
        (response, closed)
    })
    .await
    .unwrap();
    let response = response.expect("a response");
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );
    assert!(closed, "the connection stayed open after the 408");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_the_request_timeout_gets_503() {
    let server = Server::start(limits(Duration::from_secs(30), Duration::from_millis(300), 1024)).await;
    let addr = server.addr;
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let first = read_response(&mut stream, BOUND);
        // The body had arrived, so the connection stays usable.
        stream.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        (first, read_response(&mut stream, BOUND))
    })
    .await
    .unwrap();
    let first = response.0.expect("a response");
    assert!(first.starts_with("HTTP/1.1 503"), "{first}");
    let second = response.1.expect("a second response on the same connection");
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_request_in_progress_finish_and_closes_idle_connections() {
    let server = Server::start(limits(Duration::from_secs(30), Duration::from_secs(10), 1024)).await;
    let addr = server.addr;
    let (sent, sent_rx) = std::sync::mpsc::channel::<()>();
    let clients = tokio::task::spawn_blocking(move || {
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        assert!(
            read_response(&mut idle, BOUND)
                .expect("a response")
                .starts_with("HTTP/1.1 200")
        );
        let mut busy = TcpStream::connect(addr).unwrap();
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        sent.send(()).unwrap();
        let busy_response = read_response(&mut busy, BOUND);
        idle.set_read_timeout(Some(BOUND)).unwrap();
        let mut rest = [0u8; 16];
        let idle_closed = matches!(idle.read(&mut rest), Ok(0) | Err(_));
        (busy_response, idle_closed)
    });
    tokio::task::spawn_blocking(move || sent_rx.recv().unwrap())
        .await
        .unwrap();
    // Let the server read the slow request before it is told to stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop().await;
    let (busy_response, idle_closed) = clients.await.unwrap();
    let busy_response = busy_response.expect("the request in progress is answered");
    assert!(busy_response.starts_with("HTTP/1.1 200"), "{busy_response}");
    assert!(busy_response.ends_with("late"), "{busy_response}");
    assert!(idle_closed, "the idle connection was not closed");
}
