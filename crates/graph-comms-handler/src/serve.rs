//! Serving a router over HTTP/1 with limits on slow and numerous clients.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// How long the server waits after an accept error that is not about one
/// connection (for example `EMFILE`, too many open files) before accepting again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Limits that keep slow or numerous clients from holding the server's
/// connections, memory and file descriptors.
///
/// The defaults suit a webhook behind a TLS-terminating proxy or load
/// balancer: Graph sends small JSON bodies that arrive in milliseconds, so
/// legitimate requests are nowhere near these bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a connection may take to deliver a complete request head
    /// (request line and headers). Default 15 s ([`ServerLimits::DEFAULT_HEADER_READ_TIMEOUT`]).
    ///
    /// hyper starts this timer when the connection is accepted and again
    /// after each response is written, when it begins waiting for the next
    /// request head. So on a keep-alive connection it also bounds the idle
    /// time between requests: a connection that sends nothing for this long
    /// is closed, without a response. A proxy or load balancer that keeps idle
    /// upstream connections open longer than this may now and then send a
    /// request on a connection the server is closing; set this above the
    /// proxy's idle timeout, or the proxy's idle timeout below it, to avoid
    /// that race. Must be more than zero.
    pub header_read_timeout: Duration,
    /// How long one request may take from its complete head to the
    /// response head, reading the body included (handlers read it). Default
    /// 30 s ([`ServerLimits::DEFAULT_REQUEST_TIMEOUT`]).
    ///
    /// When it passes, the handler is dropped and the client gets
    /// `408 Request Timeout` with `Connection: close` if its body had not
    /// arrived in full (the connection is then closed), or
    /// `503 Service Unavailable` if it had (the handler was the slow one).
    /// Writing the response body is not bounded by it.
    pub request_timeout: Duration,
    /// How many connections are served at once. Default 1024
    /// ([`ServerLimits::DEFAULT_MAX_CONNECTIONS`]).
    ///
    /// While this many are open the server accepts no more: new connections
    /// wait in the kernel's listen backlog until one closes. Keep the
    /// process's file descriptor limit above it plus the outbound connections
    /// (Graph, Redis). 0 counts as 1.
    pub max_connections: usize,
}

impl ServerLimits {
    /// Default [`ServerLimits::header_read_timeout`]: 15 s. Long enough for
    /// any real client on a slow link, short enough that connections trickling
    /// their headers are closed quickly.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);
    /// Default [`ServerLimits::request_timeout`]: 30 s. The notification
    /// webhook answers at once; this only bounds bodies that trickle in and
    /// handlers that hang.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default [`ServerLimits::max_connections`]: 1024. A load balancer uses
    /// a few dozen pooled connections; this leaves room for direct clients
    /// while staying within a typical file descriptor limit.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `router` over HTTP/1 on `listener` with `limits` until `shutdown`
/// resolves.
///
/// Then it stops accepting, closes idle connections (and those still sending
/// a request head), lets each request in progress finish and returns once
/// every connection is closed; [`ServerLimits::request_timeout`] bounds that
/// wait for the requests themselves.
///
/// An accept error that concerns one connection is ignored; any other (for
/// example too many open files) is logged and accepting resumes after a
/// second, so the server keeps running.
///
/// # Errors
///
/// None at present: the result is kept for I/O errors of the server itself.
pub async fn serve_with_limits(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut shutdown = pin!(shutdown);
    loop {
        // Holding a permit before accepting: while every permit is taken, new
        // connections stay in the listen backlog.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::error!(%error, "accept error; accepting again in 1 s");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                    }
                }
            },
        };
        let router = router.clone();
        let request_timeout = limits.request_timeout;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(answer(router, request, request_timeout).await) }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Header read timeouts, resets and clients that hang up mid-request.
                tracing::debug!(%remote, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors about one connection that was reset before it was accepted.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Runs `router` on `request`, bounded by `limit`.
async fn answer(router: Router, request: Request<Incoming>, limit: Duration) -> Response<Body> {
    let received = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| Body::new(TrackedBody::new(body, Arc::clone(&received))));
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    match tokio::time::timeout(limit, router.oneshot(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) if received.load(Ordering::Acquire) => {
            tracing::warn!(%method, %path, ?limit, "request timeout: the handler did not answer in time");
            status_response(StatusCode::SERVICE_UNAVAILABLE, false)
        }
        Err(_) => {
            tracing::debug!(%method, %path, ?limit, "request timeout: the body did not arrive in time");
            status_response(StatusCode::REQUEST_TIMEOUT, true)
        }
    }
}

fn status_response(status: StatusCode, close: bool) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    if close {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that records when it has been received in full.
struct TrackedBody {
    inner: Incoming,
    received: Arc<AtomicBool>,
}

impl TrackedBody {
    fn new(inner: Incoming, received: Arc<AtomicBool>) -> Self {
        if inner.is_end_stream() {
            received.store(true, Ordering::Release);
        }
        Self { inner, received }
    }
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_frame(cx);
        let ended = match &poll {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => false,
        };
        if ended {
            this.received.store(true, Ordering::Release);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
