//! Counters of what the endpoint accepted and why it refused.

use std::sync::atomic::{AtomicU64, Ordering};

use http::StatusCode;

/// Why a request was refused; each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RejectReason {
    /// No `Authorization` header.
    MissingToken,
    /// More than one `Authorization` header (a proxy might check another one than this endpoint).
    DuplicateAuthorization,
    /// Not a `Bearer` JWT, or one that cannot be decoded.
    BadToken,
    /// Past `exp` (plus the clock skew).
    Expired,
    /// Before `nbf` (minus the clock skew).
    NotYetValid,
    /// `aud` is not the app id.
    WrongAudience,
    /// `iss` is not one of the configured issuers.
    WrongIssuer,
    /// No `tid` claim.
    MissingTenant,
    /// `tid` is not in the allowed tenants.
    TenantNotAllowed,
    /// The token's `kid` is not in the key set, even after a refetch.
    UnknownKey,
    /// The RS256 signature does not verify.
    BadSignature,
    /// The header's `alg` is not RS256.
    BadAlgorithm,
    /// The body is over the size limit (or holds more events than the queue).
    TooLarge,
    /// The content type is not `application/json`.
    BadContentType,
    /// The body is not a notification envelope, or an item names no call.
    MalformedBody,
    /// The queue has no room for the body's events.
    QueueFull,
    /// The handler's queue for one of the body's calls is full (503).
    CallBusy,
    /// The [`Journal`](crate::Journal) could not make the events durable (503).
    JournalUnavailable,
    /// The endpoint was closed or the receiver dropped.
    Closed,
}

impl RejectReason {
    /// Every reason, in counter order.
    pub const ALL: [RejectReason; 19] = [
        Self::MissingToken,
        Self::DuplicateAuthorization,
        Self::BadToken,
        Self::Expired,
        Self::NotYetValid,
        Self::WrongAudience,
        Self::WrongIssuer,
        Self::MissingTenant,
        Self::TenantNotAllowed,
        Self::UnknownKey,
        Self::BadSignature,
        Self::BadAlgorithm,
        Self::TooLarge,
        Self::BadContentType,
        Self::MalformedBody,
        Self::QueueFull,
        Self::CallBusy,
        Self::JournalUnavailable,
        Self::Closed,
    ];

    /// The snake_case name used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::DuplicateAuthorization => "duplicate_authorization",
            Self::BadToken => "bad_token",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::MissingTenant => "missing_tenant",
            Self::TenantNotAllowed => "tenant_not_allowed",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::BadAlgorithm => "bad_algorithm",
            Self::TooLarge => "too_large",
            Self::BadContentType => "bad_content_type",
            Self::MalformedBody => "malformed_body",
            Self::QueueFull => "queue_full",
            Self::CallBusy => "call_busy",
            Self::JournalUnavailable => "journal_unavailable",
            Self::Closed => "closed",
        }
    }

    /// The HTTP status a request refused for this reason gets.
    pub fn status(self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadContentType | Self::MalformedBody => StatusCode::BAD_REQUEST,
            Self::QueueFull | Self::CallBusy | Self::JournalUnavailable | Self::Closed => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of the endpoint's counters since it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotifyMetrics {
    /// Requests answered 202.
    pub accepted_requests: u64,
    /// Events put on the queue.
    pub queued_events: u64,
    /// Requests whose token was found in the verified-token cache.
    pub token_cache_hits: u64,
    /// Tokens whose signature was checked (cache misses that reached the RSA check).
    pub token_verifications: u64,
    /// Key set fetches started (periodic, unknown-`kid`, or explicit).
    pub key_fetches: u64,
    /// Key set fetches that failed (the previous keys were kept).
    pub key_fetch_failures: u64,
    rejected: [u64; RejectReason::ALL.len()],
}

impl NotifyMetrics {
    /// Requests refused for this reason.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.index()]
    }

    /// Requests refused for any reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Every reason with its count, in [`RejectReason::ALL`] order.
    pub fn rejections(&self) -> impl Iterator<Item = (RejectReason, u64)> + '_ {
        RejectReason::ALL.iter().copied().zip(self.rejected.iter().copied())
    }
}

/// The live counters behind [`NotifyMetrics`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted_requests: AtomicU64,
    pub(crate) queued_events: AtomicU64,
    pub(crate) token_cache_hits: AtomicU64,
    pub(crate) token_verifications: AtomicU64,
    pub(crate) key_fetches: AtomicU64,
    pub(crate) key_fetch_failures: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    pub(crate) fn reject(&self, reason: RejectReason) {
        Self::bump(&self.rejected[reason.index()], 1);
    }

    pub(crate) fn snapshot(&self) -> NotifyMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NotifyMetrics {
            accepted_requests: get(&self.accepted_requests),
            queued_events: get(&self.queued_events),
            token_cache_hits: get(&self.token_cache_hits),
            token_verifications: get(&self.token_verifications),
            key_fetches: get(&self.key_fetches),
            key_fetch_failures: get(&self.key_fetch_failures),
            rejected: std::array::from_fn(|i| get(&self.rejected[i])),
        }
    }
}
