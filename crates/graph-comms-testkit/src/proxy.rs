//! A loopback HTTP load balancer: round-robin over upstream base URLs, with
//! the passive health check of a real one (an upstream that refuses the
//! connection is skipped for that request).
//!
//! It stands where the TLS-terminating proxy stands in a deployment, so that
//! consecutive notifications of one call reach different bot instances.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long one forwarded request may take before the proxy answers 504.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body forwarded.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Hop-by-hop headers (RFC 9110 section 7.6.1) and the ones the HTTP
/// libraries set themselves: never copied across the proxy.
fn not_forwarded(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// What the proxy did with one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCounters {
    /// The upstream's base URL.
    pub url: String,
    /// Whether it is in the current rotation.
    pub active: bool,
    /// Requests it answered (any status), relayed to the client.
    pub forwarded: u64,
    /// Requests whose connection it refused; they went to the next upstream.
    pub refused: u64,
    /// Requests that failed after connecting (reset, timeout, bad response):
    /// answered 502 or 504, never sent elsewhere, since the upstream may have
    /// acted on them.
    pub failed: u64,
}

#[derive(Debug)]
struct Upstream {
    url: String,
    forwarded: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    client: reqwest::Client,
    rotation: Mutex<Vec<Arc<Upstream>>>,
    /// Every upstream ever configured, by URL, in the order first seen.
    known: Mutex<Vec<Arc<Upstream>>>,
    next: AtomicUsize,
    unavailable: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn upstream(&self, url: &str) -> Arc<Upstream> {
        let url = url.trim_end_matches('/');
        let mut known = lock(&self.known);
        if let Some(upstream) = known.iter().find(|u| u.url == url) {
            return Arc::clone(upstream);
        }
        let upstream = Arc::new(Upstream {
            url: url.to_owned(),
            forwarded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        known.push(Arc::clone(&upstream));
        upstream
    }
}

/// A running proxy on `127.0.0.1`; stops when dropped.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use graph_comms_testkit::RoundRobinProxy;
///
/// let proxy = RoundRobinProxy::start(vec![
///     "http://127.0.0.1:8081".into(),
///     "http://127.0.0.1:8082".into(),
/// ])
/// .await?;
/// let callback = format!("{}/api/calls", proxy.url()); // give this to Graph
/// // A rolling restart: the new process listens on another port.
/// proxy.set_upstreams(vec!["http://127.0.0.1:8081".into(), "http://127.0.0.1:8093".into()]);
/// # let _ = callback;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RoundRobinProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

impl RoundRobinProxy {
    /// Listens on a free loopback port and forwards to `upstreams` (base URLs
    /// like `http://127.0.0.1:8081`; may be empty until
    /// [`RoundRobinProxy::set_upstreams`]).
    ///
    /// Each request (method, path and query, headers including
    /// `Authorization`, body) goes to the next upstream in turn; the
    /// upstream's status, headers (`Retry-After` included) and body come back
    /// unchanged. An upstream that refuses the connection is skipped and the
    /// next one tried; when every one refuses (or there is none) the answer
    /// is 502. Redirects are relayed, not followed.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound or the HTTP client cannot be built.
    pub async fn start(upstreams: Vec<String>) -> io::Result<Self> {
        let client = reqwest::Client::builder()
            // Loopback only: a developer's HTTP_PROXY must not capture it.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(1))
            .timeout(UPSTREAM_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .map_err(io::Error::other)?;
        let shared = Arc::new(Shared {
            client,
            rotation: Mutex::new(Vec::new()),
            known: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            unavailable: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let router = Router::new().fallback(forward).with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
                eprintln!("round-robin proxy on {addr} failed: {e}");
            }
        });
        let proxy = Self {
            addr,
            shared,
            stop: Some(stop),
            server,
        };
        proxy.set_upstreams(upstreams);
        Ok(proxy)
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the rotation; requests already being forwarded finish where
    /// they are. An upstream seen before keeps its counters.
    pub fn set_upstreams(&self, upstreams: Vec<String>) {
        let rotation: Vec<Arc<Upstream>> = upstreams.iter().map(|u| self.shared.upstream(u)).collect();
        *lock(&self.shared.rotation) = rotation;
    }

    /// The base URLs in the rotation now.
    pub fn upstreams(&self) -> Vec<String> {
        lock(&self.shared.rotation).iter().map(|u| u.url.clone()).collect()
    }

    /// The counters of every upstream ever configured, in the order first seen.
    pub fn counters(&self) -> Vec<UpstreamCounters> {
        let rotation: Vec<String> = self.upstreams();
        lock(&self.shared.known)
            .iter()
            .map(|u| UpstreamCounters {
                url: u.url.clone(),
                active: rotation.contains(&u.url),
                forwarded: u.forwarded.load(Ordering::Relaxed),
                refused: u.refused.load(Ordering::Relaxed),
                failed: u.failed.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Requests answered 502 because no upstream took the connection.
    pub fn unavailable(&self) -> u64 {
        self.shared.unavailable.load(Ordering::Relaxed)
    }

    /// Stops accepting, lets requests in progress finish (at most 5 s), and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
    }
}

impl Drop for RoundRobinProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("proxy: cannot read the body: {e}")).into_response(),
    };
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let headers = copy_headers(&parts.headers);
    let rotation = lock(&shared.rotation).clone();
    let start = shared.next.fetch_add(1, Ordering::Relaxed);
    for i in 0..rotation.len() {
        let upstream = &rotation[(start + i) % rotation.len()];
        let sent = shared
            .client
            .request(parts.method.clone(), format!("{}{path}", upstream.url))
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                upstream.forwarded.fetch_add(1, Ordering::Relaxed);
                return relay(response, &upstream.url).await;
            }
            // Nothing reached the upstream: as safe to send elsewhere as a new request.
            Err(e) if e.is_connect() => {
                upstream.refused.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                upstream.failed.fetch_add(1, Ordering::Relaxed);
                let status = if e.is_timeout() {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                };
                return (status, format!("proxy: upstream {} failed: {e}", upstream.url)).into_response();
            }
        }
    }
    shared.unavailable.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::BAD_GATEWAY,
        format!("proxy: none of {} upstream(s) took the connection", rotation.len()),
    )
        .into_response()
}

async fn relay(response: reqwest::Response, upstream: &str) -> Response {
    let status = response.status();
    let headers = copy_headers(response.headers());
    let body: Bytes = match response.bytes().await {
        Ok(body) => body,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("proxy: reading the answer of {upstream} failed: {e}"),
            )
                .into_response();
        }
    };
    let mut relayed = Response::new(Body::from(body));
    *relayed.status_mut() = status;
    *relayed.headers_mut() = headers;
    relayed
}

fn copy_headers(from: &HeaderMap) -> HeaderMap {
    let mut to = HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        if !not_forwarded(name) {
            to.append(name.clone(), value.clone());
        }
    }
    to
}
