//! Optional per-request stage timing: off (and free but for one check) unless an
//! observer is installed with [`NotifyEndpoint::set_stage_observer`](crate::NotifyEndpoint::set_stage_observer).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use http::StatusCode;
use http_body::{Frame, SizeHint};

/// When one request answered by the endpoint passed each stage.
///
/// Stages the request did not reach (it was refused before) are `None`.
/// Stamps are taken with [`Instant::now`] only while an observer is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestStages {
    /// The endpoint's handler started: the request head was parsed and routed.
    /// The same instant as the events' [`received_at`](crate::NotificationEvent::received_at).
    pub received: Instant,
    /// The bearer token was accepted (the token cache or the signature check).
    pub authenticated: Option<Instant>,
    /// The body was read, parsed and turned into events.
    pub parsed: Option<Instant>,
    /// The events were journaled (when a [`Journal`](crate::Journal) is set) and queued.
    pub queued: Option<Instant>,
    /// The response body was finished (read to its end or dropped by the server),
    /// so the server holds the whole response and only has to write it.
    pub responded: Instant,
    /// The status the request was answered with.
    pub status: StatusCode,
}

/// Receives the [`RequestStages`] of every request the endpoint answers.
///
/// Called once per request, on the server's task, when the response body is
/// finished: keep it short (record into a histogram, push to a buffer).
/// Without an observer the endpoint takes no stamps.
pub trait StageObserver: Send + Sync + 'static {
    /// One answered request. `extensions` are the request's own: a server
    /// that inserted an extension of its own (a connection's accept time, a
    /// slot for the socket write time) finds it there and can join these
    /// stages with its own.
    fn observe(&self, stages: &RequestStages, extensions: &http::Extensions);
}

/// The stages taken so far, while the request is in the handler.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamps {
    pub(crate) received: Instant,
    pub(crate) authenticated: Option<Instant>,
    pub(crate) parsed: Option<Instant>,
    pub(crate) queued: Option<Instant>,
}

impl Stamps {
    pub(crate) fn new(received: Instant) -> Self {
        Self {
            received,
            authenticated: None,
            parsed: None,
            queued: None,
        }
    }
}

/// Takes a stamp into `slot` when stamps are being taken.
pub(crate) fn stamp(stamps: Option<&mut Stamps>, slot: fn(&mut Stamps) -> &mut Option<Instant>) {
    if let Some(stamps) = stamps {
        *slot(stamps) = Some(Instant::now());
    }
}

/// What the response body reports when it is finished.
struct Finish {
    observer: Arc<dyn StageObserver>,
    stamps: Stamps,
    status: StatusCode,
    extensions: http::Extensions,
}

impl Finish {
    fn report(self) {
        let stages = RequestStages {
            received: self.stamps.received,
            authenticated: self.stamps.authenticated,
            parsed: self.stamps.parsed,
            queued: self.stamps.queued,
            responded: Instant::now(),
            status: self.status,
        };
        self.observer.observe(&stages, &self.extensions);
    }
}

/// A response body that reports the stages once it ends or is dropped (servers
/// drop an empty body without polling it, once they have taken the response).
struct ObservedBody {
    inner: Body,
    finish: Option<Finish>,
}

impl ObservedBody {
    fn finish(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish.report();
        }
    }
}

impl HttpBody for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.finish();
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

impl Drop for ObservedBody {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `response` with a body that reports `stamps` to `observer` when finished.
pub(crate) fn observe_response(
    response: axum::response::Response,
    observer: Arc<dyn StageObserver>,
    stamps: Stamps,
    extensions: http::Extensions,
) -> axum::response::Response {
    let status = response.status();
    response.map(|inner| {
        Body::new(ObservedBody {
            inner,
            finish: Some(Finish {
                observer,
                stamps,
                status,
                extensions,
            }),
        })
    })
}
