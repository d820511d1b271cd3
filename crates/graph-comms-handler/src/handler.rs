//! The user-facing hooks and how their failures are reported.

use std::fmt;

use async_trait::async_trait;
use graph_comms_model::{
    Call, CallId, CallOptions, CommsOperation, InvitationParticipantInfo, MediaConfig, Modality, RejectReason,
    ResultInfo,
};
use graph_comms_notify::NotificationEvent;

use crate::attempt::TransferInfo;
use crate::context::CallContext;
use crate::outcome::TransferFailure;

/// What a hook returns when it fails. Any error type converts into it with `?`.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// What to do with an incoming call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IncomingDecision {
    /// Answer it (`POST .../answer`).
    Answer(AnswerOptions),
    /// Reject it (`POST .../reject`).
    Reject(RejectReason),
    /// Send it elsewhere (`POST .../redirect`).
    Redirect(Vec<InvitationParticipantInfo>),
    /// Do nothing now (the hook may act later through the context, or let it ring out).
    Ignore,
}

/// How to answer a call.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerOptions {
    /// Media configuration; service-hosted (Graph plays prompts) by default.
    pub media_config: MediaConfig,
    /// Modalities to accept; audio by default.
    pub accepted_modalities: Vec<Modality>,
    /// Where the call's notifications go; defaults to the bot's `callback_uri`, then
    /// to the `callbackUri` the incoming call carried.
    pub callback_uri: Option<String>,
    /// `incomingCallOptions`.
    pub call_options: Option<CallOptions>,
    /// Send `keepAlive` for this call while it is established (default true).
    pub keep_alive: bool,
}

impl Default for AnswerOptions {
    fn default() -> Self {
        Self {
            media_config: MediaConfig::service_hosted(),
            accepted_modalities: vec![Modality::Audio],
            callback_uri: None,
            call_options: None,
            keep_alive: true,
        }
    }
}

impl AnswerOptions {
    /// Audio with service-hosted media: the usual choice for a transfer bot.
    pub fn audio() -> Self {
        Self::default()
    }

    /// Answers with this callback URI instead of the bot's.
    pub fn callback_uri(mut self, uri: impl Into<String>) -> Self {
        self.callback_uri = Some(uri.into());
        self
    }

    /// Turns the automatic `keepAlive` for this call on or off.
    pub fn keep_alive(mut self, enabled: bool) -> Self {
        self.keep_alive = enabled;
        self
    }
}

/// Why and how a call ended, as told to [`CallHandler::on_call_terminated`].
#[derive(Debug, Clone, PartialEq)]
pub struct CallEnd {
    /// The end `resultInfo` (for example 200/5001, 408/8537, 0/7015).
    pub result_info: Option<ResultInfo>,
    /// The undeclared `terminationReason`, when sent (`AppTransferred`).
    pub termination_reason: Option<String>,
    /// How the bot learned about it.
    pub cause: EndCause,
}

/// How the bot learned that a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndCause {
    /// A `terminated` or `deleted` notification.
    Notification,
    /// `keepAlive` answered 404: Graph no longer knows the call.
    KeepAliveNotFound,
}

/// The hooks of a calling bot. Every method has a default, so implement only
/// what you need.
///
/// # Ordering
///
/// Hooks of one call run one at a time, in the order the events arrived; hooks
/// of different calls run concurrently. For a transfer attempt:
/// `on_transferring` (at most once), then `on_transfer_accepted` (at most once),
/// then exactly one of `on_transfer_completed` or `on_transfer_failed`.
/// `on_notification` runs first, for every event.
///
/// # Failures
///
/// A hook that returns an error or panics is reported to the bot's
/// [`ErrorHandler`]; the call's later events, other calls and the server carry on.
#[async_trait]
pub trait CallHandler: Send + Sync + 'static {
    /// A call is ringing. The default answers with audio and service-hosted media.
    ///
    /// Graph waits about 15 seconds for the decision.
    async fn on_incoming_call(&self, ctx: &CallContext, call: &Call) -> Result<IncomingDecision, HookError> {
        let _ = (ctx, call);
        Ok(IncomingDecision::Answer(AnswerOptions::default()))
    }

    /// The call reached `established` for the first time: it can be transferred now.
    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        let _ = ctx;
        Ok(())
    }

    /// The call reported `transferring` for this attempt.
    async fn on_transferring(&self, ctx: &CallContext, attempt: &TransferInfo) -> Result<(), HookError> {
        let _ = (ctx, attempt);
        Ok(())
    }

    /// The target accepted. `inferred` is true when the completion arrived without
    /// (or before) a `transferAccepted` notification. Fires at most once per attempt,
    /// always before the outcome hook.
    async fn on_transfer_accepted(
        &self,
        ctx: &CallContext,
        attempt: &TransferInfo,
        inferred: bool,
    ) -> Result<(), HookError> {
        let _ = (ctx, attempt, inferred);
        Ok(())
    }

    /// The transfer completed: the call has left the bot.
    async fn on_transfer_completed(&self, ctx: &CallContext, attempt: &TransferInfo) -> Result<(), HookError> {
        let _ = (ctx, attempt);
        Ok(())
    }

    /// The transfer failed. The call is usually still established, so this is the
    /// place to try the next target.
    async fn on_transfer_failed(
        &self,
        ctx: &CallContext,
        attempt: &TransferInfo,
        failure: &TransferFailure,
    ) -> Result<(), HookError> {
        let _ = (ctx, attempt, failure);
        Ok(())
    }

    /// The call ended. Fires once per call; the bot forgets the call afterwards.
    async fn on_call_terminated(&self, ctx: &CallContext, end: &CallEnd) -> Result<(), HookError> {
        let _ = (ctx, end);
        Ok(())
    }

    /// An operation (playPrompt, cancelMediaProcessing, ...) finished.
    async fn on_operation_completed(&self, ctx: &CallContext, operation: &CommsOperation) -> Result<(), HookError> {
        let _ = (ctx, operation);
        Ok(())
    }

    /// Every notification for the call, raw, before the typed hooks.
    async fn on_notification(&self, ctx: &CallContext, event: &NotificationEvent) -> Result<(), HookError> {
        let _ = (ctx, event);
        Ok(())
    }
}

/// Names a hook, for error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HookName {
    /// [`CallHandler::on_incoming_call`].
    IncomingCall,
    /// [`CallHandler::on_call_established`].
    CallEstablished,
    /// [`CallHandler::on_transferring`].
    Transferring,
    /// [`CallHandler::on_transfer_accepted`].
    TransferAccepted,
    /// [`CallHandler::on_transfer_completed`].
    TransferCompleted,
    /// [`CallHandler::on_transfer_failed`].
    TransferFailed,
    /// [`CallHandler::on_call_terminated`].
    CallTerminated,
    /// [`CallHandler::on_operation_completed`].
    OperationCompleted,
    /// [`CallHandler::on_notification`].
    Notification,
}

impl fmt::Display for HookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::IncomingCall => "on_incoming_call",
            Self::CallEstablished => "on_call_established",
            Self::Transferring => "on_transferring",
            Self::TransferAccepted => "on_transfer_accepted",
            Self::TransferCompleted => "on_transfer_completed",
            Self::TransferFailed => "on_transfer_failed",
            Self::CallTerminated => "on_call_terminated",
            Self::OperationCompleted => "on_operation_completed",
            Self::Notification => "on_notification",
        })
    }
}

/// How a hook failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HookFailure {
    /// It returned an error.
    Error(HookError),
    /// It panicked; the panic message, when it was a string.
    Panicked(String),
}

impl fmt::Display for HookFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(error) => write!(f, "returned an error: {error}"),
            Self::Panicked(message) => write!(f, "panicked: {message}"),
        }
    }
}

/// Something the runtime could not do on the handler's behalf (answering after
/// the incoming hook, sending keep-alive, ...).
#[derive(Debug)]
#[non_exhaustive]
pub enum RuntimeFailure {
    /// A Graph request failed.
    Graph {
        /// What was being done (`answer`, `reject`, `redirect`, `keepAlive`).
        action: &'static str,
        /// The client's error.
        error: graph_comms_client::GraphClientError,
    },
    /// The call store failed.
    Store(crate::store::StoreError),
}

impl fmt::Display for RuntimeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Graph { action, error } => write!(f, "{action} failed: {error}"),
            Self::Store(error) => write!(f, "call store: {error}"),
        }
    }
}

/// Receives hook failures and runtime failures. The default, [`LogErrors`],
/// logs them with `tracing`.
pub trait ErrorHandler: Send + Sync + 'static {
    /// A hook returned an error or panicked.
    fn hook_failed(&self, call_id: &CallId, hook: HookName, failure: &HookFailure);

    /// The runtime failed to do something for a call.
    fn runtime_failed(&self, call_id: &CallId, failure: &RuntimeFailure) {
        tracing::warn!(call_id = %call_id, "{failure}");
    }
}

/// The default [`ErrorHandler`]: logs at `error` level.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogErrors;

impl ErrorHandler for LogErrors {
    fn hook_failed(&self, call_id: &CallId, hook: HookName, failure: &HookFailure) {
        tracing::error!(call_id = %call_id, hook = %hook, "hook {failure}");
    }
}
