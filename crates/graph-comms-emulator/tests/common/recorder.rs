//! A callback receiver that keeps every request's headers and arrival time, and answers from
//! a script (status and `Retry-After`), for the message-id and redelivery tests.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

/// One POST the recorder got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    pub at: Instant,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }

    pub fn message_id(&self) -> Option<String> {
        self.header("X-Microsoft-Skype-Message-ID")
    }

    pub fn chain_id(&self) -> Option<String> {
        self.header("X-Microsoft-Skype-Chain-ID")
    }

    /// `(changeType, state)` of each item.
    pub fn states(&self) -> Vec<(String, Option<String>)> {
        self.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                (
                    item["changeType"].as_str().unwrap().to_owned(),
                    item.pointer("/resourceData/state")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                )
            })
            .collect()
    }
}

/// How the recorder answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
        }
    }

    pub fn retry_after(status: u16, value: &str) -> Self {
        Self {
            status,
            retry_after: Some(value.to_owned()),
        }
    }
}

struct Shared {
    hits: Mutex<Vec<Hit>>,
    arrivals: watch::Sender<usize>,
    script: Mutex<VecDeque<Reply>>,
    status: AtomicU16,
}

pub struct Recorder {
    base: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let at = Instant::now();
    let reply = shared.script.lock().unwrap().pop_front().unwrap_or_else(|| Reply {
        status: shared.status.load(Ordering::SeqCst),
        retry_after: None,
    });
    // A date-valued Retry-After is written relative to now.
    let retry_after = reply.retry_after.map(|v| match v.strip_prefix("date+") {
        Some(secs) => {
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(secs.parse().unwrap()))
        }
        None => v,
    });
    shared.hits.lock().unwrap().push(Hit {
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at,
    });
    shared.arrivals.send_modify(|n| *n += 1);
    let mut response = StatusCode::from_u16(reply.status).unwrap().into_response();
    if let Some(value) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_str(&value).unwrap());
    }
    response
}

impl Recorder {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            hits: Mutex::new(Vec::new()),
            arrivals: watch::channel(0).0,
            script: Mutex::new(VecDeque::new()),
            status: AtomicU16::new(202),
        });
        let router = axum::Router::new().fallback(record).with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            base: format!("http://{addr}"),
            shared,
            server,
        }
    }

    pub fn url_for(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answers the next requests with these replies, in order, then with the usual status.
    /// A `Retry-After` of `date+N` is sent as the HTTP date N seconds from then.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// Answers later unscripted requests with `status` (202 until set).
    pub fn respond_with(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    pub fn hits_on(&self, path: &str) -> Vec<Hit> {
        self.shared
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `n` requests arrived on `path`; returns those on `path`.
    pub async fn wait_for_on(&self, path: &str, n: usize, timeout: Duration) -> Vec<Hit> {
        let mut arrivals = self.shared.arrivals.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let hits = self.hits_on(path);
                if hits.len() >= n {
                    return hits;
                }
                arrivals.changed().await.unwrap();
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            panic!(
                "waited {timeout:?} for {n} POSTs on {path}; got {:#?}",
                self.hits_on(path)
            )
        })
    }
}
