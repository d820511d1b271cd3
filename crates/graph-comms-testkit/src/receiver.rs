//! A callback receiver: an HTTP server on `127.0.0.1` that records every
//! request it gets (what Graph, or the emulator, POSTs to a bot's callback
//! URI) and answers 202, or a status the test sets.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use graph_comms_testkit::receiver::CallbackReceiver;
//!
//! let receiver = CallbackReceiver::start().await;
//! let callback_uri = receiver.url(); // http://127.0.0.1:PORT/api/calls
//! // ... have the emulator deliver a call's notifications to callback_uri ...
//! let posts = receiver.wait_for(2, Duration::from_secs(10)).await;
//! let states = posts[1].states(); // [("updated", Some("established"))]
//! # let _ = (callback_uri, states);
//! # }
//! ```
//!
//! Several calls can share one receiver on different paths ([`url_for`],
//! [`received_on`], [`wait_for_on`]).
//!
//! [`url_for`]: CallbackReceiver::url_for
//! [`received_on`]: CallbackReceiver::received_on
//! [`wait_for_on`]: CallbackReceiver::wait_for_on

use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use graph_comms_model::{CallId, CommsNotifications, ResourceUrl};
use tokio::sync::watch;

/// The path [`CallbackReceiver::url`] names, the one Graph's docs use.
pub const DEFAULT_PATH: &str = "/api/calls";

/// One request the receiver got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The request method.
    pub method: String,
    /// The request path (no query).
    pub path: String,
    /// The `Authorization` header, as sent (`Bearer <token>`).
    pub authorization: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
}

impl Received {
    /// The bearer token of the `Authorization` header.
    pub fn bearer_token(&self) -> Option<&str> {
        self.authorization.as_deref()?.strip_prefix("Bearer ")
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not JSON; the message shows it.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body POSTed to {} is not JSON ({e}): {}", self.path, self.text()))
    }

    /// The body as a Graph notification envelope.
    ///
    /// # Panics
    ///
    /// When the body is not one; the message shows it.
    pub fn notifications(&self) -> CommsNotifications {
        CommsNotifications::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body POSTed to {} is not a notification ({e}): {}",
                self.path,
                self.text()
            )
        })
    }

    /// `(changeType, state)` of each notification item, e.g.
    /// `("updated", Some("established"))`; the state is `None` for items
    /// that carry no call.
    pub fn states(&self) -> Vec<(String, Option<String>)> {
        self.notifications()
            .value
            .iter()
            .map(|item| {
                let state = item.call().and_then(|c| c.state.as_ref()).map(ToString::to_string);
                (item.change_type.to_string(), state)
            })
            .collect()
    }

    /// The call the first notification item's resource names.
    ///
    /// # Panics
    ///
    /// When the body is not a notification or its first item names no call.
    pub fn call_id(&self) -> CallId {
        let notifications = self.notifications();
        let path = notifications
            .value
            .first()
            .and_then(|item| item.resource_path())
            .unwrap_or_else(|| panic!("no resource in the body POSTed to {}: {}", self.path, self.text()));
        ResourceUrl::parse(path)
            .unwrap_or_else(|e| panic!("{path:?} POSTed to {} names no call: {e}", self.path))
            .call_id
    }
}

struct Shared {
    received: Mutex<Vec<Received>>,
    /// Counts requests, so waiters wake on each one instead of polling.
    arrivals: watch::Sender<usize>,
    status: AtomicU16,
    fail_next: AtomicU32,
}

impl Shared {
    fn received(&self) -> MutexGuard<'_, Vec<Received>> {
        // A test that panicked while holding the lock left whole entries only.
        self.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A recording callback receiver on `127.0.0.1:0`. It stops when dropped.
pub struct CallbackReceiver {
    base: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for CallbackReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackReceiver")
            .field("base", &self.base)
            .field("received", &self.shared.received().len())
            .finish_non_exhaustive()
    }
}

impl Drop for CallbackReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    shared.received().push(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: body.to_vec(),
    });
    shared.arrivals.send_modify(|n| *n += 1);
    let failing = shared
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::from_u16(shared.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::ACCEPTED)
}

impl CallbackReceiver {
    /// Starts serving on a free loopback port; every request is recorded and
    /// answered 202 Accepted.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound. Call it inside a tokio runtime.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("the callback receiver cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the callback receiver has no local address: {e}"));
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            arrivals: watch::channel(0).0,
            status: AtomicU16::new(StatusCode::ACCEPTED.as_u16()),
            fail_next: AtomicU32::new(0),
        });
        let router = axum::Router::new().fallback(record).with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            // Ends only when aborted on drop.
            let _ = axum::serve(listener, router).await;
        });
        Self {
            base: format!("http://{addr}"),
            shared,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The callback URI to give Graph: `http://127.0.0.1:PORT/api/calls`.
    pub fn url(&self) -> String {
        self.url_for(DEFAULT_PATH)
    }

    /// A callback URI on `path` (starting with `/`), to tell calls apart.
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received().clone()
    }

    /// The requests so far on `path`, in arrival order.
    pub fn received_on(&self, path: &str) -> Vec<Received> {
        self.shared
            .received()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Answers later requests with `status` (202 until set).
    pub fn respond_with(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Answers the next `n` requests with 500, then the usual status again.
    pub fn fail_next(&self, n: u32) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Waits until at least `n` requests arrived (on any path) and returns them all.
    ///
    /// # Panics
    ///
    /// When they did not arrive within `timeout`; the message lists what did.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let all = self.wait_until(timeout, |all| all.len() >= n).await;
        all.unwrap_or_else(|got| panic!("waited {timeout:?} for {n} requests; got {}", describe(&got)))
    }

    /// Waits until at least `n` requests arrived on `path` and returns those on `path`.
    ///
    /// # Panics
    ///
    /// When they did not arrive within `timeout`; the message lists what did.
    pub async fn wait_for_on(&self, path: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let on_path = |all: &[Received]| all.iter().filter(|r| r.path == path).count() >= n;
        match self.wait_until(timeout, on_path).await {
            Ok(_) => self.received_on(path),
            Err(got) => panic!("waited {timeout:?} for {n} requests on {path}; got {}", describe(&got)),
        }
    }

    /// Waits until `done` holds for every request so far (in arrival order).
    /// Returns them all, or, after `timeout`, `Err` with what arrived.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Result<Vec<Received>, Vec<Received>> {
        let mut arrivals = self.shared.arrivals.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let all = self.received();
                if done(&all) {
                    return all;
                }
                if arrivals.changed().await.is_err() {
                    // The sender lives in `self`; this does not happen, but never spin.
                    std::future::pending::<()>().await;
                }
            }
        })
        .await;
        waited.map_err(|_| self.received())
    }
}

/// What arrived, for a timeout message: each request's path and its first bytes.
fn describe(received: &[Received]) -> String {
    if received.is_empty() {
        return "nothing".into();
    }
    let lines: Vec<String> = received
        .iter()
        .map(|r| {
            let text = r.text();
            let short: String = text
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(160)
                .collect();
            format!("\n  {} {} {short}", r.method, r.path)
        })
        .collect();
    format!("{}:{}", received.len(), lines.concat())
}
