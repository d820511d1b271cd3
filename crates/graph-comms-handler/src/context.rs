//! What a hook gets: the call's identity and state, and the actions on it.

use std::sync::Arc;

use graph_comms_client::{GraphClient, GraphClientError, GraphResponse};
use graph_comms_model::{
    AnswerRequest, CallId, CallState, ClientContextRequest, CommsOperation, InvitationParticipantInfo,
    InviteParticipantsRequest, ParticipantId, PlayPromptRequest, Prompt, RecordResponseRequest, RecordingStatus,
    RedirectRequest, RejectReason, RejectRequest, SendDtmfTonesRequest, StartHoldMusicRequest, TenantId, Tone,
    TransferRequest, UpdateRecordingStatusRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::digits::{CollectDigits, CollectError, Collected, Heard};
use crate::operation::PendingOperation;
use crate::runtime::Runtime;
use crate::transfer_handle::TransferAttempt;
use graph_comms_core::attempt::{AttemptId, TransferError, TransferInfo};
use graph_comms_core::decision::AnswerOptions;
use graph_comms_core::lifecycle::CallInput;
use graph_comms_core::record::{CallRecord, CallSnapshot};

/// How long a complete digit input with a press missing in between waits for it.
const GAP_SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

/// A call as seen from a hook: its id, tenant, current state, and actions backed
/// by the bot's [`GraphClient`].
///
/// Cheap to clone; a clone may be moved into a spawned task and used after the
/// hook returns (it then reads the call's latest committed state).
#[derive(Clone)]
pub struct CallContext {
    runtime: Arc<Runtime>,
    /// The latest record this context made or saw committed; used once the
    /// call is no longer in the runtime's cache (ended, or held elsewhere).
    fallback: Arc<std::sync::Mutex<Arc<CallRecord>>>,
    call_id: CallId,
    tenant_id: TenantId,
    /// Acts with tokens of the call's tenant; made on first use, so an
    /// event whose hooks send nothing costs no client handle.
    client: std::sync::OnceLock<GraphClient>,
    redelivered: bool,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("call_id", &self.call_id)
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

/// A consultation call could not be placed or linked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsultationError {
    /// Graph refused or failed the `POST /communications/calls`.
    #[error("placing the consultation call: {0}")]
    Graph(#[from] GraphClientError),
    /// Graph created the call without an id.
    #[error("the consultation call was created without an id")]
    NoId,
    /// The link between the calls could not be stored (the call was placed).
    #[error("linking the consultation call {consultation}: {error}")]
    Link {
        /// The call Graph created.
        consultation: CallId,
        /// What failed.
        error: graph_comms_core::error::StoreError,
    },
}

/// A transfer with a consultation could not be started ([`CallContext::consult`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsultError {
    /// A guard refused the transfer (nothing was placed), or the attempt could
    /// not be recorded (the consultation call was hung up).
    #[error(transparent)]
    Transfer(#[from] graph_comms_core::attempt::TransferError),
    /// The consultation call could not be placed, or placed but not linked.
    #[error(transparent)]
    Consultation(#[from] ConsultationError),
}

/// [`CallContext::hang_up`] refused, or Graph failed the request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HangUpError {
    /// A transfer of the call is in flight (its attempt has no outcome yet):
    /// the target may be ringing, and hanging up would drop the caller.
    /// Hang up from `on_transfer_failed`, once the attempt has its outcome.
    #[error("a transfer of the call is in flight (attempt {attempt}); not hanging up the caller")]
    TransferInFlight {
        /// The pending attempt.
        attempt: graph_comms_core::attempt::AttemptId,
    },
    /// Graph refused or failed the `DELETE`.
    #[error(transparent)]
    Graph(#[from] GraphClientError),
}

impl HangUpError {
    /// Whether Graph answered 404: the call had already ended.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Graph(error) if error.is_not_found())
    }
}

/// Per-call data could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The value does not (de)serialize as the requested type.
    #[error("per-call data: {0}")]
    Serde(#[from] serde_json::Error),
    /// The call store failed.
    #[error("per-call data: {0}")]
    Store(#[from] graph_comms_core::error::StoreError),
    /// The call is unknown (never seen, or forgotten after it ended).
    #[error("per-call data: the call is unknown")]
    CallGone,
}

impl CallContext {
    pub(crate) fn new(runtime: Arc<Runtime>, record: Arc<CallRecord>) -> Self {
        Self {
            call_id: record.snapshot.call_id.clone(),
            tenant_id: record.snapshot.tenant_id.clone(),
            client: std::sync::OnceLock::new(),
            runtime,
            fallback: Arc::new(std::sync::Mutex::new(record)),
            redelivered: false,
        }
    }

    /// The same context, for hooks run again from the outbox.
    pub(crate) fn redelivery(mut self) -> Self {
        self.redelivered = true;
        self
    }

    /// True when this hook already ran for the same committed step, on an
    /// instance that stopped before recording so: hooks run at least once with
    /// a shared store. Attempt hooks also say it in [`TransferInfo::redelivered`].
    pub fn is_redelivery(&self) -> bool {
        self.redelivered
    }

    /// A commit made through this context: later reads see it.
    pub(crate) fn committed(&self, record: Arc<CallRecord>) {
        *graph_comms_core::sync::lock(&self.fallback) = record;
    }

    /// The call's latest committed record as this process knows it.
    pub(crate) fn record(&self) -> Arc<CallRecord> {
        self.runtime
            .cached(&self.call_id)
            .unwrap_or_else(|| Arc::clone(&graph_comms_core::sync::lock(&self.fallback)))
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
        self.record().snapshot.clone()
    }

    /// The call's last reported state.
    pub fn state(&self) -> Option<CallState> {
        self.record().snapshot.state.clone()
    }

    /// Whether this is a group call (transfers need a `transferee`).
    pub fn is_group(&self) -> bool {
        self.record().snapshot.is_group
    }

    /// The call's latest transfer attempt, finished or not.
    pub fn latest_attempt(&self) -> Option<TransferInfo> {
        self.record().attempt.as_ref().map(|a| a.info.clone())
    }

    /// The consultation call placed for this call
    /// ([`place_consultation`](Self::place_consultation)), while there is one.
    pub fn consultation(&self) -> Option<CallId> {
        self.record().links.consultation.clone()
    }

    /// The attempt still waiting for its outcome, if any.
    pub fn pending_attempt(&self) -> Option<AttemptId> {
        self.record().pending_attempt().map(|a| a.info.id)
    }

    /// The Graph client, for actions this type does not wrap.
    pub fn client(&self) -> &GraphClient {
        self.client.get_or_init(|| self.runtime.client_for(&self.tenant_id))
    }

    /// The handler's own data for this call, if set (see [`CallContext::set_data`]).
    ///
    /// # Errors
    ///
    /// [`DataError::Serde`] when the stored value is not a `T`.
    pub fn data<T: DeserializeOwned>(&self) -> Result<Option<T>, DataError> {
        match &self.record().data {
            Some(value) => Ok(Some(T::deserialize(value)?)),
            None => Ok(None),
        }
    }

    /// Stores the handler's own data for this call with the call's record: it
    /// survives restarts, is shared with other bots on the same store, and is
    /// kept with an ended call until the call is forgotten (`ended_retention`),
    /// so `on_call_terminated` still reads what the hooks before it wrote.
    ///
    /// With a shared store, while this instance holds the call's lease (during
    /// its hooks) the value is written with the call's next commit, at the
    /// latest when the instance releases the call after its current events:
    /// no extra round trip. Reads through [`data`](Self::data) see it at once.
    ///
    /// # Errors
    ///
    /// [`DataError`] when the value does not serialize, the store fails, or the call is gone.
    pub async fn set_data<T: Serialize>(&self, value: &T) -> Result<(), DataError> {
        let value = serde_json::to_value(value)?;
        self.runtime.set_data(self, value).await
    }

    /// Places `call` (an outgoing call, e.g. to the transfer target) as a
    /// consultation for this call and links the two in the call store: its
    /// establishment and end reach this call's
    /// [`on_consultation_established`](crate::CallHandler::on_consultation_established)
    /// and [`on_consultation_ended`](crate::CallHandler::on_consultation_ended)
    /// (never its own `on_call_established` / `on_call_terminated`), in this
    /// call's order and on whichever instance holds this call. What the
    /// consultation call went through before the link existed is delivered too.
    ///
    /// # Errors
    ///
    /// [`ConsultationError`]: the call could not be placed, or placed but not linked.
    pub async fn place_consultation(&self, call: &graph_comms_model::Call) -> Result<CallId, ConsultationError> {
        self.runtime.place_consultation(self, call).await
    }

    /// A consultative transfer as one attempt: places `consultation` (an
    /// outgoing call to the transfer target; see
    /// [`CreateCallBuilder`](graph_comms_model::CreateCallBuilder), whose
    /// `to_phone` gives a number the application-instance source Graph
    /// requires), and when it answers sends `transfer` with `replacesCallId`
    /// set to it. The attempt's outcome reaches `on_transfer_accepted`,
    /// `on_transfer_completed` or `on_transfer_failed` and the returned handle
    /// like any other's:
    ///
    /// - the consultation ends before it answers (declined, not reached):
    ///   [`TransferFailure::ConsultationEnded`](crate::TransferFailure::ConsultationEnded);
    /// - Graph refuses to place it: [`TransferFailure::Rejected`](crate::TransferFailure::Rejected);
    /// - the caller hangs up meanwhile: [`TransferFailure::CallEnded`](crate::TransferFailure::CallEnded);
    /// - nothing within twice `transfer_timeout` for the ringing, then
    ///   `transfer_timeout` for the transfer: [`TransferFailure::TimedOut`](crate::TransferFailure::TimedOut).
    ///
    /// The consultation call's own events stay away from the ordinary hooks
    /// (and from `on_consultation_*`). It is hung up when the attempt fails
    /// for any reason but its own end. The attempt is recorded after Graph
    /// created the consultation call: a bot that stops in between leaves it
    /// ringing until Graph gives up. With a shared store, an instance that
    /// stops (or whose store write fails) after recording the attempt but
    /// before linking the consultation to the call leaves the attempt marked
    /// `linking`; the instance that takes the call over links it, so the
    /// consultation's answer still sends the transfer.
    ///
    /// # Errors
    ///
    /// [`ConsultError`]: a transfer guard refused (nothing placed), or the
    /// consultation call could not be placed or the attempt not recorded
    /// (then it is hung up). Once the attempt is recorded, `consult` returns
    /// it: what follows reaches its outcome.
    pub async fn consult(
        &self,
        consultation: &graph_comms_model::Call,
        transfer: graph_comms_model::TransferRequest,
    ) -> Result<TransferAttempt, ConsultError> {
        self.runtime.consult(self, consultation, transfer).await
    }

    /// Starts a transfer: checks the guards, commits the attempt to the call
    /// store (its start time is taken before the POST), then sends
    /// `POST .../transfer`.
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
    /// call has ended, the bot is shutting down, or the store failed.
    pub async fn transfer(&self, request: TransferRequest) -> Result<TransferAttempt, TransferError> {
        self.runtime.start_transfer(self, request).await
    }

    /// Answers the call. The callback URI is, in order: the options', the bot's,
    /// then the one the incoming call carried.
    ///
    /// # Errors
    ///
    /// The client's error; [`GraphClientError::InvalidRequest`] when no callback URI is known.
    pub async fn answer(&self, options: AnswerOptions) -> Result<(), GraphClientError> {
        if !options.keep_alive {
            self.set_keep_alive(false).await;
        }
        let known = self.record().snapshot.callback_uri.clone();
        let callback_uri = options
            .callback_uri
            .or_else(|| self.runtime.callback_uri.clone())
            .or(known)
            .ok_or_else(|| GraphClientError::InvalidRequest("no callback URI to answer with".into()))?;
        let mut request = AnswerRequest::audio(callback_uri);
        request.media_config = options.media_config;
        request.accepted_modalities = Some(options.accepted_modalities);
        request.call_options = options.call_options;
        self.client().answer(&self.call_id, &request).await.map(|_| ())
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
        self.client().reject(&self.call_id, &request).await.map(|_| ())
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
        self.client().redirect(&self.call_id, &request).await.map(|_| ())
    }

    /// Plays prompts. `.await` the handle for their end (`on_operation_completed`
    /// fires too).
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn play_prompt(&self, prompts: Vec<Prompt>) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = PlayPromptRequest {
                prompts,
                client_context: Some(client_context),
                ..PlayPromptRequest::default()
            };
            self.client().play_prompt(&self.call_id, &request).await
        })
        .await
    }

    /// Records what the caller says (`recordResponse`). The completed
    /// operation carries `recordingLocation` and `recordingAccessToken`.
    /// A `clientContext` in `request` is replaced by the one the handle matches.
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn record_response(&self, request: RecordResponseRequest) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = RecordResponseRequest {
                client_context: Some(client_context),
                ..request
            };
            self.client().record_response(&self.call_id, &request).await
        })
        .await
    }

    /// Subscribes to the caller's DTMF tones (`subscribeToTone`): they then
    /// arrive as `toneInfo` on call notifications (see [`CallHandler::on_tone`](crate::CallHandler::on_tone)
    /// and [`collect_digits`](Self::collect_digits)).
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn subscribe_to_tone(&self) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = with_context(client_context);
            self.client().subscribe_to_tone(&self.call_id, &request).await
        })
        .await
    }

    /// Cancels the prompts and recordings in progress (`cancelMediaProcessing`).
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn cancel_media_processing(&self) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = with_context(client_context);
            self.client().cancel_media_processing(&self.call_id, &request).await
        })
        .await
    }

    /// Sends DTMF tones to the call (`sendDtmfTones`), `delay_ms` apart if given.
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn send_dtmf_tones(
        &self,
        tones: Vec<Tone>,
        delay_ms: Option<i32>,
    ) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = SendDtmfTonesRequest {
                tones,
                delay_between_tones_ms: delay_ms,
                client_context: Some(client_context),
                extra: Default::default(),
            };
            self.client().send_dtmf_tones(&self.call_id, &request).await
        })
        .await
    }

    /// Tells Graph the bot's recording status (`updateRecordingStatus`).
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn update_recording_status(&self, status: RecordingStatus) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = UpdateRecordingStatusRequest {
                status,
                client_context: Some(client_context),
                extra: Default::default(),
            };
            self.client().update_recording_status(&self.call_id, &request).await
        })
        .await
    }

    /// Mutes the bot in the call (`mute`).
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn mute(&self) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = with_context(client_context);
            self.client().mute(&self.call_id, &request).await
        })
        .await
    }

    /// Unmutes the bot in the call (`unmute`).
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn unmute(&self) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = with_context(client_context);
            self.client().unmute(&self.call_id, &request).await
        })
        .await
    }

    /// Invites participants into the call (`participants/invite`); a group
    /// call, or a peer-to-peer call that becomes one (then a transfer is
    /// Graph's 8523, meeting mode).
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn invite_participants(
        &self,
        participants: Vec<InvitationParticipantInfo>,
    ) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = InviteParticipantsRequest {
                participants,
                client_context: Some(client_context),
                ..InviteParticipantsRequest::default()
            };
            self.client().invite_participants(&self.call_id, &request).await
        })
        .await
    }

    /// Mutes another participant (`participants/{id}/mute`).
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn mute_participant(&self, participant: &ParticipantId) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = with_context(client_context);
            self.client()
                .mute_participant(&self.call_id, participant, &request)
                .await
        })
        .await
    }

    /// Puts a participant on hold with music (`startHoldMusic`), the default
    /// music or `prompt`.
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn start_hold_music(
        &self,
        participant: &ParticipantId,
        prompt: Option<Prompt>,
    ) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = StartHoldMusicRequest {
                custom_prompt: prompt,
                client_context: Some(client_context),
                ..StartHoldMusicRequest::default()
            };
            self.client()
                .start_hold_music(&self.call_id, participant, &request)
                .await
        })
        .await
    }

    /// Takes a participant off hold (`stopHoldMusic`).
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn stop_hold_music(&self, participant: &ParticipantId) -> Result<PendingOperation, GraphClientError> {
        self.operation(|client_context| async move {
            let request = with_context(client_context);
            self.client()
                .stop_hold_music(&self.call_id, participant, &request)
                .await
        })
        .await
    }

    /// Removes a participant from the call (`DELETE participants/{id}`).
    ///
    /// # Errors
    ///
    /// The client's error when Graph refuses the request.
    pub async fn remove_participant(&self, participant: &ParticipantId) -> Result<(), GraphClientError> {
        self.client()
            .delete_participant(&self.call_id, participant)
            .await
            .map(|_| ())
    }

    /// Collects the caller's key presses: subscribes to tones, plays the
    /// prompt (the caller may press during it), then takes presses until the
    /// maximum, the terminator or a pause; plays the prompt again when nothing
    /// was pressed, as often as asked. Presses made before the call reaches
    /// this point are not taken (they went to [`CallHandler::on_tone`](crate::CallHandler::on_tone)).
    ///
    /// Await it in a hook: the presses come beside the call's queue.
    ///
    /// # Errors
    ///
    /// [`CollectError::Timeout`] when nothing was pressed, [`CollectError::HungUp`]
    /// when the call ended (or Graph no longer knew it), [`CollectError::Graph`]
    /// when Graph refused the subscription or a prompt otherwise.
    pub async fn collect_digits(&self, spec: &CollectDigits) -> Result<String, CollectError> {
        let mut listener = self.runtime.listen(&self.call_id);
        let mut collected = Collected::after(self.record().lifecycle.last_tone);
        // A 404 from Graph: the call ended before the request reached it.
        let refused = |error: GraphClientError| {
            if error.is_not_found() {
                CollectError::HungUp
            } else {
                CollectError::Graph(error)
            }
        };
        // Not awaited: tones flow once Graph has it, and a press may come first.
        drop(self.subscribe_to_tone().await.map_err(refused)?);
        for _ in 0..spec.rounds() {
            if !spec.prompts().is_empty() {
                drop(self.play_prompt(spec.prompts().to_vec()).await.map_err(refused)?);
            }
            let mut deadline = tokio::time::Instant::now() + spec.first_digit_wait();
            loop {
                let Ok(next) = tokio::time::timeout_at(deadline, listener.next()).await else {
                    break;
                };
                let Some(notification) = next else {
                    return Err(CollectError::Stopped);
                };
                match collected.hear(&notification, spec) {
                    Heard::Nothing => {}
                    Heard::Digit => deadline = tokio::time::Instant::now() + spec.inter_digit_wait(),
                    Heard::Done if collected.has_gap() => {
                        // An earlier press may still come through the inbox: a short settle.
                        deadline = tokio::time::Instant::now() + GAP_SETTLE;
                    }
                    Heard::Done => return Ok(collected.digits(spec)),
                    Heard::HungUp => return Err(CollectError::HungUp),
                }
            }
            let digits = collected.digits(spec);
            if !digits.is_empty() {
                return Ok(digits);
            }
        }
        Err(CollectError::Timeout)
    }

    /// Listens to the call before sending (its end cannot slip by), sends with
    /// a fresh `clientContext`, and wraps the accepted operation.
    async fn operation<F, Fut>(&self, send: F) -> Result<PendingOperation, GraphClientError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<GraphResponse<CommsOperation>, GraphClientError>>,
    {
        let client_context = uuid::Uuid::new_v4().to_string();
        let listener = self.runtime.listen(&self.call_id);
        let accepted = send(client_context.clone()).await?.value;
        let timeout = self.runtime.timings.operation_timeout;
        Ok(PendingOperation::new(accepted, client_context, listener, timeout))
    }

    /// Hangs up; `on_call_terminated` fires when Graph confirms.
    ///
    /// Refused while a transfer of the call is in flight: a target may ring
    /// for tens of seconds (minutes on PSTN), and the caller would be dropped
    /// mid-transfer. Every attempt ends in exactly one outcome hook, at the
    /// latest at [`Timings::ring_limit`](crate::Timings::ring_limit); hang up
    /// from there. (`ctx.client().hang_up(call_id)` drops the call anyway,
    /// for an operator's explicit order.)
    ///
    /// # Errors
    ///
    /// [`HangUpError::TransferInFlight`], or the client's error.
    pub async fn hang_up(&self) -> Result<(), HangUpError> {
        if let Some(pending) = self.record().pending_attempt() {
            return Err(HangUpError::TransferInFlight {
                attempt: pending.info.id,
            });
        }
        self.client().hang_up(&self.call_id).await?;
        Ok(())
    }

    /// Sends one `keepAlive` now (the bot also sends them on its own schedule).
    ///
    /// # Errors
    ///
    /// The client's error; a 404 means the call has ended.
    pub async fn keep_alive(&self) -> Result<(), GraphClientError> {
        self.client().keep_alive(&self.call_id).await.map(|_| ())
    }

    /// Turns the automatic `keepAlive` for this call on or off. Without it Graph
    /// ends an established call after 45 minutes (408/8537).
    pub async fn set_keep_alive(&self, enabled: bool) {
        self.runtime.input(self, CallInput::SetKeepAlive(enabled)).await;
    }
}

/// The body of an action that carries only a `clientContext`.
fn with_context(client_context: String) -> ClientContextRequest {
    ClientContextRequest {
        client_context: Some(client_context),
        ..ClientContextRequest::default()
    }
}
