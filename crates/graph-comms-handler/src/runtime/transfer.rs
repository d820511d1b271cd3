//! Starting a transfer: guards and the attempt committed to the store before
//! the POST, then the POST's result fed back through the call's queue; and the
//! in-process handles that await outcomes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use graph_comms_client::GraphClientError;
use graph_comms_model::{CallId, PhoneNumber, TenantId, TransferKind, TransferRequest};
use tokio::sync::watch;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::Runtime;
use super::queue::CallEvent;
use super::state::Missing;
use crate::context::CallContext;
use crate::transfer_handle::TransferAttempt;
use graph_comms_core::attempt::{AttemptId, TransferError, TransferFailure, TransferInfo, TransferOutcome};
use graph_comms_core::record::{AttemptRecord, CallRecord};
use graph_comms_core::stepping::start_attempt;
use graph_comms_core::sync::lock;
use graph_comms_core::transfer_machine::AttemptInput;

impl Runtime {
    /// See [`CallContext::transfer`].
    pub(crate) async fn start_transfer(
        self: &Arc<Self>,
        ctx: &CallContext,
        request: TransferRequest,
    ) -> Result<TransferAttempt, TransferError> {
        let span = start_span(&request);
        let result = self.start_transfer_in_span(ctx, request).instrument(span.clone()).await;
        if let Err(error) = &result {
            span.record("transfer.outcome", "not_started");
            span.record("transfer.cause", error.label());
        }
        result
    }

    async fn start_transfer_in_span(
        self: &Arc<Self>,
        ctx: &CallContext,
        request: TransferRequest,
    ) -> Result<TransferAttempt, TransferError> {
        if self.is_shutting_down() {
            return Err(TransferError::ShuttingDown);
        }
        let call_id = ctx.call_id();
        let (allow, timings, shared) = (self.allow_concurrent_transfers, self.machine_timings, self.is_shared());
        // Chosen once: a retried write that had landed finds this attempt and is not a second one.
        let id = AttemptId::new();
        let committed = self
            .update(call_id, ctx.tenant_id(), Missing::Skip, |record| {
                let started = start_attempt(
                    record,
                    id,
                    request.clone(),
                    allow,
                    graph_comms_core::wall::now(),
                    &timings,
                );
                if let Some(attempt) = record.attempt.as_mut().filter(|a| a.info.id == id && started.is_ok()) {
                    // Until sent: an instance taking the call over asks Graph instead of sending it.
                    attempt.sending |= shared && !attempt.machine.is_finished();
                }
                started
            })
            .await
            .map_err(TransferError::Store)?;
        let committed_at = std::time::Instant::now();
        let (info, superseded) = match committed {
            Some((result, _)) => result?,
            None => return Err(TransferError::CallGone),
        };
        tracing::Span::current().record("transfer.attempt", tracing::field::display(info.id));
        let receiver = self.register_waiter(info.id);
        self.counters.transfers_started.fetch_add(1, Ordering::Relaxed);
        tracing::info!(call_id = %call_id, attempt = %info.id, kind = ?info.kind, "transfer started");
        if let Some((old, effects)) = superseded {
            self.route(call_id.clone(), CallEvent::Fire(Box::new(old), effects));
        }
        self.post_transfer(call_id, ctx.tenant_id(), info.id, &request, committed_at)
            .await;
        Ok(TransferAttempt::new(info, receiver))
    }

    /// Sends the attempt's `POST /transfer`; a failure goes back through the call's queue.
    pub(super) async fn post_transfer(
        self: &Arc<Self>,
        call_id: &CallId,
        tenant_id: &TenantId,
        id: AttemptId,
        request: &TransferRequest,
        decided_at: std::time::Instant,
    ) {
        // The attempt's span when called from `start_transfer` (a no-op elsewhere).
        let span = tracing::Span::current();
        // Paused since the attempt was committed (longer than half a lease):
        // another instance may hold the call and send this POST itself.
        if self.is_shared() && decided_at.elapsed() > self.timings.lease_ttl / 2 {
            tracing::warn!(call_id = %call_id, attempt = %id, "transfer not sent: this instance stalled since deciding it");
            span.record("transfer.outcome", "not_sent");
            span.record("transfer.cause", "stalled");
            return;
        }
        let posted = self.client_for(tenant_id).transfer(call_id, request).await;
        if self.is_shared() {
            self.note_sent(call_id, tenant_id, id).await;
        }
        match &posted {
            Ok(_) => span.record("transfer.outcome", "sent"),
            Err(error) => {
                span.record("transfer.outcome", "post_failed");
                span.record("transfer.cause", post_error_label(error))
            }
        };
        if let Err(error) = posted {
            tracing::info!(call_id = %call_id, attempt = %id, %error, "transfer request failed");
            if let Some(input) = post_failure_input(&error) {
                self.route(call_id.clone(), CallEvent::Input(id, Box::new(input)));
            }
        }
    }

    /// Records that the attempt's POST was sent.
    async fn note_sent(&self, call_id: &CallId, tenant_id: &TenantId, id: AttemptId) {
        // Left set, an instance taking the call over asks Graph: one lookup, nothing lost.
        self.settle_attempt(call_id, tenant_id, id, "that the transfer was sent", |attempt| {
            attempt.sending = false;
        })
        .await;
    }

    /// Records that the attempt's consultation call is linked to its call.
    pub(super) async fn note_linked(&self, call_id: &CallId, tenant_id: &TenantId, id: AttemptId) {
        // Left set, an instance taking the call over links it again: one write, nothing lost.
        self.settle_attempt(call_id, tenant_id, id, "that the consultation is linked", |attempt| {
            attempt.linking = false;
        })
        .await;
    }

    /// Clears a takeover flag of the attempt: with the next write under the
    /// call's lease (no round trip of its own), else with a write now.
    async fn settle_attempt(
        &self,
        call_id: &CallId,
        tenant_id: &TenantId,
        id: AttemptId,
        what: &str,
        settle: impl Fn(&mut AttemptRecord),
    ) {
        let clear = |record: &mut CallRecord| {
            if let Some(attempt) = record.attempt.as_deref_mut().filter(|a| a.info.id == id) {
                settle(attempt);
            }
        };
        if let Some(current) = self.cached(call_id) {
            let mut record = CallRecord::clone(&current);
            clear(&mut record);
            if record == *current || self.cache_deferred(&Arc::new(record)) {
                return;
            }
        }
        if let Err(error) = self.update(call_id, tenant_id, Missing::Skip, clear).await {
            tracing::warn!(call_id = %call_id, attempt = %id, %error, "could not record {what}");
        }
    }

    pub(super) fn register_waiter(&self, id: AttemptId) -> watch::Receiver<Option<TransferOutcome>> {
        let (sender, receiver) = watch::channel(None);
        lock(&self.waiters).insert(id, sender);
        receiver
    }

    pub(super) fn resolve_waiter(&self, id: AttemptId, outcome: TransferOutcome) {
        if let Some(sender) = lock(&self.waiters).remove(&id) {
            sender.send_replace(Some(outcome));
        }
    }

    /// Gives every handle still waiting in this process the `Abandoned` outcome.
    /// The attempts themselves stay in the store for the bot that resumes them.
    pub(crate) fn abandon_pending(&self) {
        let waiters: Vec<_> = lock(&self.waiters).drain().collect();
        for (_, sender) in waiters {
            sender.send_if_modified(|slot| {
                if slot.is_none() {
                    *slot = Some(TransferOutcome::Failed(TransferFailure::Abandoned));
                    true
                } else {
                    false
                }
            });
        }
    }
}

/// A span about one attempt: what kind of target, which mode, and the target
/// itself (a phone number masked as in the logs); `transfer.outcome` and
/// `transfer.cause` are recorded as they become known.
macro_rules! attempt_span {
    ($name:literal, $request:expr, $mode:expr) => {{
        let request: &TransferRequest = $request;
        let span = tracing::info_span!(
            $name,
            transfer.attempt = Empty,
            transfer.target_kind = target_kind(request),
            transfer.mode = $mode,
            transfer.target = Empty,
            transfer.outcome = Empty,
            transfer.cause = Empty,
        );
        // Masking allocates: only for a subscriber that wants the span.
        if !span.is_disabled() {
            span.record("transfer.target", target_for_logs(request).as_str());
        }
        span
    }};
}

/// The span of an attempt's start: the commit and the `POST /transfer`.
fn start_span(request: &TransferRequest) -> tracing::Span {
    attempt_span!("transfer_attempt", request, mode(request.kind()))
}

/// The span of a consultative attempt's start (placing the consultation
/// call), or of its `POST /transfer` once that call answered.
pub(super) fn consultative_span(request: &TransferRequest) -> tracing::Span {
    // The request names the consultation call only once it is placed.
    attempt_span!("transfer_attempt", request, "consultative")
}

/// The span of an attempt's outcome (its hook runs inside).
pub(crate) fn outcome_span(info: &TransferInfo) -> tracing::Span {
    let span = attempt_span!("transfer_outcome", &info.request, mode(info.kind));
    span.record("transfer.attempt", tracing::field::display(info.id));
    span
}

/// `transfer.target_kind`: which identity the target is.
fn target_kind(request: &TransferRequest) -> &'static str {
    match request.transfer_target.identity.as_ref() {
        Some(set) if set.phone.is_some() => "phone",
        Some(set) if set.user.is_some() => "user",
        Some(set) if set.application_instance.is_some() => "application_instance",
        Some(set) if set.application.is_some() => "application",
        _ => "other",
    }
}

/// `transfer.mode`.
fn mode(kind: TransferKind) -> &'static str {
    match kind {
        TransferKind::Blind => "blind",
        TransferKind::Consultative => "consultative",
        TransferKind::Pstn => "pstn",
        TransferKind::FromGroupCall => "from_group_call",
        _ => "other",
    }
}

/// The target's id; a phone number masked (`+*******8901`).
fn target_for_logs(request: &TransferRequest) -> String {
    let Some(set) = request.transfer_target.identity.as_ref() else {
        return String::new();
    };
    if let Some(phone) = &set.phone {
        let id = phone.id.as_deref().unwrap_or_default();
        return PhoneNumber::parse(id).map_or_else(|_| "(not E.164)".to_owned(), |n| n.masked());
    }
    [&set.user, &set.application_instance, &set.application]
        .into_iter()
        .flatten()
        .find_map(|identity| identity.id.clone())
        .unwrap_or_default()
}

/// `transfer.cause` of a failed `POST /transfer`.
fn post_error_label(error: &GraphClientError) -> &'static str {
    match error {
        GraphClientError::OutcomeUnknown { .. } => "outcome_unknown",
        GraphClientError::Timeout { .. } => "timeout",
        GraphClientError::Network { .. } => "network",
        GraphClientError::Decode { .. } => "decode",
        other if other.status().is_some() => "refused",
        _ => "client",
    }
}

/// Classifies a failed `POST /transfer`: was it certainly not acted on?
pub(crate) fn post_failure_input(error: &GraphClientError) -> Option<AttemptInput> {
    match error {
        GraphClientError::OutcomeUnknown { .. }
        | GraphClientError::Timeout { .. }
        | GraphClientError::Network { .. } => Some(AttemptInput::PostOutcomeUnknown),
        // A 2xx whose body did not parse: Graph accepted it.
        GraphClientError::Decode { .. } => None,
        other => Some(AttemptInput::PostRejected(crate::transfer_handle::summarize(other))),
    }
}
