//! Calls shared among processes: what a [`SharedCallStore`] adds to the
//! [`CallStore`] contract (a per-call inbox, leases, fenced commits).
//!
//! Any instance may receive any notification. It appends the items to the
//! call's inbox before answering 202; the instance that holds the call's lease
//! processes the inbox in order and commits each change with the lease's
//! token, so an instance whose lease expired (paused, partitioned) cannot
//! commit anything, even when it wakes up later.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use graph_comms_model::{CallId, CommsNotification, TenantId};
use serde::{Deserialize, Serialize};

use crate::attempt::AttemptId;
use crate::error::StoreError;
use crate::record::CallRecord;
use crate::store::CallStore;
use crate::transfer_machine::AttemptInput;

/// The right to process a call's inbox and commit its record, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The call.
    pub call_id: CallId,
    /// Unique per claim (`<instance id>/<random>`): the fencing token. The
    /// store refuses a commit that carries any token but the current holder's.
    pub token: String,
}

impl Lease {
    /// A new lease of `call_id` for `owner`, with a fresh token.
    pub fn new(call_id: CallId, owner: &str) -> Self {
        Self {
            call_id,
            token: format!("{owner}/{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

/// One item of a call's inbox, in arrival order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum InboxItem {
    /// A notification item, acknowledged with 202 once appended.
    #[serde(rename_all = "camelCase")]
    Notification {
        /// The tenant named by the notification's token.
        tenant_id: TenantId,
        /// When the instance that appended it received it (wall clock).
        #[serde(with = "crate::wall::millis")]
        received_at: SystemTime,
        /// The item as Graph sent it.
        notification: Box<CommsNotification>,
        /// How it was delivered (message id, place, callback query), for
        /// recognising a delivery made again on any instance.
        #[serde(default, skip_serializing_if = "InboxDelivery::is_empty")]
        delivery: InboxDelivery,
    },
    /// What happened to a consultation call placed for this call.
    #[serde(rename_all = "camelCase")]
    Consultation {
        /// The consultation call.
        consultation: CallId,
        /// What happened to it.
        event: crate::decision::ConsultationEvent,
    },
    /// An attempt input decided by a process that did not hold the lease
    /// (the `POST /transfer` result, when another instance held the call).
    #[serde(rename_all = "camelCase")]
    Attempt {
        /// The attempt.
        id: AttemptId,
        /// What happened to it.
        input: AttemptInput,
    },
}

/// How an inbox notification was delivered (the notify endpoint's `Delivery`),
/// in stored form: what the holder needs to recognise a delivery made again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InboxDelivery {
    /// Graph's `X-Microsoft-Skype-Message-ID`, when the request had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The item's place in its request.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub item: u32,
    /// The callback URL's query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl InboxDelivery {
    /// Whether nothing is known of the delivery.
    pub fn is_empty(&self) -> bool {
        self.message_id.is_none() && self.item == 0 && self.query.is_none()
    }
}

impl InboxItem {
    /// The item as bytes for the store.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if it cannot be serialized (it always can).
    pub fn to_json(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|e| StoreError::Corrupt(format!("cannot serialize an inbox item: {e}")))
    }

    /// Reads an item written by [`InboxItem::to_json`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] naming the problem.
    pub fn from_json(bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("bad inbox item: {e}")))
    }
}

/// A call claimed by this instance.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The lease taken.
    pub lease: Lease,
    /// The call's record, if stored.
    pub record: Option<Arc<CallRecord>>,
    /// The inbox items waiting, oldest first (at most the `limit` asked for).
    pub inbox: Vec<InboxItem>,
}

impl Claim {
    /// A claim of `lease` with what the store read under it.
    pub fn new(lease: Lease, record: Option<Arc<CallRecord>>, inbox: Vec<InboxItem>) -> Self {
        Self { lease, record, inbox }
    }
}

/// What [`SharedCallStore::release`] did.
#[derive(Debug, Clone)]
pub enum Released {
    /// The lease is free and the inbox was empty.
    Free,
    /// Items were waiting: the lease is kept, with what the store read under it.
    Kept(Claim),
}

/// A [`CallStore`] several processes share: each call has an ordered inbox
/// and a lease, and the lease holder's commits are fenced.
///
/// The contract, on top of [`CallStore`]'s:
/// - **[`append`](Self::append) is durable when it returns**: the webhook
///   answers 202 only after it. Items of one call keep their order.
/// - **One holder at a time.** [`claim`](Self::claim) takes a free or expired
///   lease with a fresh token and answers `None` while another holds it.
/// - **Fencing.** [`commit`](Self::commit), [`renew`](Self::renew) and
///   [`release`](Self::release) check the token in the same atomic step as
///   their write; a stale token gets [`StoreError::LeaseLost`] and changes
///   nothing. The record's version compare-and-set applies as in `save`.
/// - **Nothing is stranded.** `release` hands back items appended while the
///   lease was held, and [`orphans`](Self::orphans) lists calls with no live
///   lease and items or outbox steps (their holder died), so some instance
///   claims them.
#[async_trait]
pub trait SharedCallStore: CallStore {
    /// Appends items to their calls' inboxes, each call's items in order.
    async fn append(&self, items: &[(CallId, InboxItem)]) -> Result<(), StoreError>;

    /// [`append`](Self::append), and in the same round trip tries to take the
    /// lease of each call appended to (as [`claim`](Self::claim) does):
    /// answers the claims taken. A call not claimed has a live holder, which
    /// sees the items when it releases.
    async fn append_and_claim(
        &self,
        items: &[(CallId, InboxItem)],
        owner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<Claim>, StoreError>;

    /// Takes the call's lease for `ttl` unless a live lease is held by anyone
    /// (this instance included): then `None`. Reads the record and up to
    /// `limit` inbox items under the new lease.
    async fn claim(
        &self,
        call_id: &CallId,
        owner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Option<Claim>, StoreError>;

    /// Extends the lease to `ttl` from now.
    ///
    /// # Errors
    ///
    /// [`StoreError::LeaseLost`] when the lease is no longer this token's.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError>;

    /// Under the lease, in one atomic step: writes `record` if given (with
    /// `save`'s compare-and-set), drops `consumed` items from the inbox's head
    /// and extends the lease to `ttl`.
    ///
    /// # Errors
    ///
    /// [`StoreError::LeaseLost`] for a stale token, [`StoreError::Conflict`]
    /// for a stale version; nothing changes then.
    async fn commit(
        &self,
        lease: &Lease,
        record: Option<Arc<CallRecord>>,
        consumed: usize,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Under the lease, in one atomic step: writes `record` if given (as
    /// [`commit`](Self::commit) does) and drops `consumed` items; then gives
    /// the lease up, or, when items were appended meanwhile, keeps it for
    /// `ttl` and reads up to `limit` of them ([`Released::Kept`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::LeaseLost`] for a stale token, [`StoreError::Conflict`]
    /// for a stale version; nothing changes then (the lease stays).
    async fn release(
        &self,
        lease: &Lease,
        consumed: usize,
        record: Option<Arc<CallRecord>>,
        ttl: Duration,
        limit: usize,
    ) -> Result<Released, StoreError>;

    /// Up to `limit` of the call's inbox items from position `from` (0 is
    /// the oldest), read without taking them: what a lease holder awaiting
    /// Graph's next notification (an operation's end, a caller's tone) reads
    /// of what other instances appended meanwhile.
    async fn peek(&self, call_id: &CallId, from: usize, limit: usize) -> Result<Vec<InboxItem>, StoreError>;

    /// Up to `limit` calls whose lease is free and which have inbox items, or
    /// whose record awaits a holder ([`CallRecord::awaits_holder`]: work left
    /// by a holder that stopped).
    async fn orphans(&self, limit: usize) -> Result<Vec<CallId>, StoreError>;
}
