//! What a hook gets: the call's identity and state, and the actions on it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use graph_comms_client::{GraphClient, GraphClientError};
use graph_comms_model::{
    AnswerRequest, CallId, CallState, CommsOperation, InvitationParticipantInfo, PlayPromptRequest, Prompt,
    RedirectRequest, RejectReason, RejectRequest, TenantId, TransferRequest,
};

use crate::attempt::{AttemptId, TransferAttempt, TransferInfo};
use crate::handler::AnswerOptions;
use crate::machine::{AttemptInput, TransferMachine};
use crate::outcome::TransferError;
use crate::runtime::{CallCell, CallEvent, Shared, TimerKind, post_failure_input};
use crate::store::{AttemptRecord, CallSnapshot};

/// A call as seen from a hook: its id, tenant, current state, and actions backed
/// by the bot's [`GraphClient`].
///
/// Cheap to clone; a clone may be moved into a spawned task and used after the
/// hook returns.
#[derive(Clone)]
pub struct CallContext {
    shared: Arc<Shared>,
    cell: Arc<CallCell>,
    call_id: CallId,
    tenant_id: TenantId,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("call_id", &self.call_id)
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

impl CallContext {
    pub(crate) fn new(shared: Arc<Shared>, cell: Arc<CallCell>) -> Self {
        let (call_id, tenant_id) = {
            let record = cell.record();
            (record.snapshot.call_id.clone(), record.snapshot.tenant_id.clone())
        };
        Self {
            shared,
            cell,
            call_id,
            tenant_id,
        }
    }

    pub(crate) fn cell(&self) -> &CallCell {
        &self.cell
    }

    /// The call's id.
    pub fn call_id(&self) -> &CallId {
        &self.call_id
    }

    /// The call's tenant (from the notification token's `tid`).
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }

    /// A copy of what the bot knows about the call now.
    pub fn snapshot(&self) -> CallSnapshot {
        self.cell.record().snapshot.clone()
    }

    /// The call's last reported state.
    pub fn state(&self) -> Option<CallState> {
        self.cell.record().snapshot.state.clone()
    }

    /// Whether this is a group call (transfers need a `transferee`).
    pub fn is_group(&self) -> bool {
        self.cell.record().snapshot.is_group
    }

    /// The call's latest transfer attempt, finished or not.
    pub fn latest_attempt(&self) -> Option<TransferInfo> {
        self.cell.record().attempt.as_ref().map(|a| a.info.clone())
    }

    /// The attempt still waiting for its outcome, if any.
    pub fn pending_attempt(&self) -> Option<AttemptId> {
        self.cell.record().pending_attempt().map(|a| a.info.id)
    }

    /// The Graph client, for actions this type does not wrap.
    pub fn client(&self) -> &GraphClient {
        &self.shared.client
    }

    /// Starts a transfer: checks the guards, records the attempt (its start time is
    /// taken before the POST), then sends `POST .../transfer`.
    ///
    /// Returns once Graph has answered the POST. A rejected or ambiguous POST is
    /// not an error here: it becomes the attempt's outcome
    /// ([`TransferFailure::Rejected`](crate::TransferFailure::Rejected), or
    /// [`TransferFailure::OutcomeUnknownNoNotification`](crate::TransferFailure::OutcomeUnknownNoNotification)
    /// if no notification follows), delivered to `on_transfer_failed` and to the
    /// returned handle.
    ///
    /// # Errors
    ///
    /// [`TransferError`] when a guard fails; nothing is sent then: the call is not
    /// established, a group call has no `transferee`, another attempt is pending
    /// (unless the bot allows concurrent attempts, in which case the older one fails
    /// with [`TransferFailure::Superseded`](crate::TransferFailure::Superseded)), the
    /// call has ended, or the bot is shutting down.
    pub async fn transfer(&self, request: TransferRequest) -> Result<TransferAttempt, TransferError> {
        if self.shared.is_shutting_down() {
            return Err(TransferError::ShuttingDown);
        }
        let consultative = request.transfer_target.replaces_call_id.is_some();
        let (info, receiver, superseded, record) = {
            let mut record = self.cell.record();
            if record.ended || !self.cell.live {
                return Err(TransferError::CallGone);
            }
            if record.snapshot.state != Some(CallState::Established) {
                return Err(TransferError::NotEstablished {
                    state: record.snapshot.state.clone(),
                });
            }
            if record.snapshot.is_group && request.transferee.is_none() {
                return Err(TransferError::GroupCallWithoutTransferee);
            }
            let mut superseded = None;
            if let Some(pending) = record.attempt.as_mut().filter(|a| !a.machine.is_finished()) {
                if !self.shared.allow_concurrent_transfers {
                    return Err(TransferError::TransferPending {
                        pending: pending.info.id,
                    });
                }
                let effects = pending.machine.handle(AttemptInput::Superseded);
                superseded = Some((pending.info.clone(), effects));
            }
            record.attempts_started += 1;
            let info = TransferInfo {
                id: AttemptId::next(),
                call_id: self.call_id.clone(),
                kind: request.kind(),
                request: request.clone(),
                number: record.attempts_started,
                started_at: Instant::now(),
            };
            let receiver = self.shared.register_waiter(info.id);
            record.attempt = Some(Box::new(AttemptRecord {
                info: info.clone(),
                machine: TransferMachine::new(consultative),
            }));
            record.version = self.shared.next_version();
            (info, receiver, superseded, record.share())
        };
        self.shared.counters.transfers_started.fetch_add(1, Ordering::Relaxed);
        tracing::info!(call_id = %self.call_id, attempt = %info.id, kind = ?info.kind, "transfer started");
        self.shared.save(record).await;
        if let Some((old, effects)) = superseded {
            self.shared
                .route(self.call_id.clone(), CallEvent::Effects(Box::new(old), effects));
        }
        let timings = &self.shared.timings;
        self.shared.schedule(
            &self.call_id,
            timings.transfer_timeout,
            TimerKind::AttemptTimeout(info.id),
        );
        if let Err(error) = self.shared.client.transfer(&self.call_id, &request).await {
            tracing::info!(call_id = %self.call_id, attempt = %info.id, %error, "transfer request failed");
            if let Some(input) = post_failure_input(&error) {
                if input == AttemptInput::PostOutcomeUnknown {
                    let window = timings.unknown_outcome_timeout;
                    self.shared
                        .schedule(&self.call_id, window, TimerKind::UnknownOutcome(info.id));
                }
                let effects = {
                    let mut record = self.cell.record();
                    record
                        .attempt
                        .as_mut()
                        .filter(|a| a.info.id == info.id)
                        .map(|a| a.machine.handle(input))
                        .unwrap_or_default()
                };
                if !effects.is_empty() {
                    let event = CallEvent::Effects(Box::new(info.clone()), effects);
                    self.shared.route(self.call_id.clone(), event);
                }
            }
        }
        Ok(TransferAttempt::new(info, receiver))
    }

    /// Answers the call. The callback URI is, in order: the options', the bot's,
    /// then the one the incoming call carried.
    ///
    /// # Errors
    ///
    /// The client's error; [`GraphClientError::InvalidRequest`] when no callback URI is known.
    pub async fn answer(&self, options: AnswerOptions) -> Result<(), GraphClientError> {
        let known = {
            let mut record = self.cell.record();
            record.keep_alive = options.keep_alive;
            record.snapshot.callback_uri.clone()
        };
        let callback_uri = options
            .callback_uri
            .or_else(|| self.shared.callback_uri.clone())
            .or(known)
            .ok_or_else(|| GraphClientError::InvalidRequest("no callback URI to answer with".into()))?;
        let mut request = AnswerRequest::audio(callback_uri);
        request.media_config = options.media_config;
        request.accepted_modalities = Some(options.accepted_modalities);
        request.call_options = options.call_options;
        self.shared.client.answer(&self.call_id, &request).await.map(|_| ())
    }

    /// Rejects the call.
    ///
    /// # Errors
    ///
    /// The client's error.
    pub async fn reject(&self, reason: RejectReason) -> Result<(), GraphClientError> {
        let request = RejectRequest {
            reason: Some(reason),
            ..RejectRequest::default()
        };
        self.shared.client.reject(&self.call_id, &request).await.map(|_| ())
    }

    /// Redirects the call (before answering) to these targets.
    ///
    /// # Errors
    ///
    /// The client's error.
    pub async fn redirect(&self, targets: Vec<InvitationParticipantInfo>) -> Result<(), GraphClientError> {
        let request = RedirectRequest {
            targets,
            ..RedirectRequest::default()
        };
        self.shared.client.redirect(&self.call_id, &request).await.map(|_| ())
    }

    /// Plays prompts; `on_operation_completed` fires when they finish.
    ///
    /// # Errors
    ///
    /// The client's error.
    pub async fn play_prompt(&self, prompts: Vec<Prompt>) -> Result<CommsOperation, GraphClientError> {
        let request = PlayPromptRequest {
            prompts,
            ..PlayPromptRequest::default()
        };
        self.shared
            .client
            .play_prompt(&self.call_id, &request)
            .await
            .map(|r| r.value)
    }

    /// Hangs up; `on_call_terminated` fires when Graph confirms.
    ///
    /// # Errors
    ///
    /// The client's error.
    pub async fn hang_up(&self) -> Result<(), GraphClientError> {
        self.shared.client.hang_up(&self.call_id).await.map(|_| ())
    }

    /// Sends one `keepAlive` now (the bot also sends them on its own schedule).
    ///
    /// # Errors
    ///
    /// The client's error; a 404 means the call has ended.
    pub async fn keep_alive(&self) -> Result<(), GraphClientError> {
        self.shared.client.keep_alive(&self.call_id).await.map(|_| ())
    }

    /// Turns the automatic `keepAlive` for this call on or off. Without it Graph
    /// ends an established call after 45 minutes (408/8537).
    pub fn set_keep_alive(&self, enabled: bool) {
        let schedule = {
            let mut record = self.cell.record();
            record.keep_alive = enabled;
            record.keep_alive_generation += 1;
            (enabled && record.established_fired && !record.ended).then_some(record.keep_alive_generation)
        };
        if let Some(generation) = schedule {
            let interval = self.shared.timings.keep_alive_interval;
            self.shared
                .schedule(&self.call_id, interval, TimerKind::KeepAlive(generation));
        }
    }
}
