//! The user-facing hooks.

use async_trait::async_trait;
use graph_comms_model::{Call, CallId, CommsOperation, ToneInfo};
use graph_comms_notify::NotificationEvent;

use crate::context::CallContext;
#[cfg(doc)]
use crate::report::ErrorHandler;
use graph_comms_core::attempt::{TransferFailure, TransferInfo};
use graph_comms_core::decision::{AnswerOptions, CallEnd, IncomingDecision};

/// What a hook returns when it fails. Any error type converts into it with `?`.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// A hook's error asking to run the hook again later: it could not do its
/// work now (the call store was unavailable, say) and nothing was decided.
/// With a shared store, a hook of an outbox step (`on_incoming_call`,
/// `on_call_established`, `on_tone`, the attempt's hooks, `on_call_terminated`)
/// returning it stays in the call's outbox, with the steps after it, and runs
/// again on this or another instance once the call is claimed again: by its
/// next notification, or by the orphan sweep within half a lease
/// ([`CallContext::is_redelivery`] is then true). Without a shared store it
/// is reported like any error. Other errors are reported and the hook is not
/// run again.
///
/// ```
/// # use graph_comms_handler::{HookError, RetryLater};
/// fn store_down() -> Result<(), HookError> {
///     Err(RetryLater::new("the call store is unavailable").into())
/// }
/// # assert!(store_down().unwrap_err().is::<RetryLater>());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryLater(String);

impl RetryLater {
    /// Run again later, for this reason (logged).
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

impl std::fmt::Display for RetryLater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (the hook runs again later)", self.0)
    }
}

impl std::error::Error for RetryLater {}

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

    /// A consultation call placed with [`CallContext::place_consultation`]
    /// for this call is established (typically: transfer this call with
    /// `replacesCallId` set to it). Runs under this call's ordering, on the
    /// instance that holds this call; the consultation call's own
    /// `on_call_established` does not fire. At least once: act on it only
    /// while your call still waits for this consultation.
    async fn on_consultation_established(&self, ctx: &CallContext, consultation: &CallId) -> Result<(), HookError> {
        let _ = (ctx, consultation);
        Ok(())
    }

    /// A consultation call placed for this call ended (declined, not
    /// answered, hung up, or replaced by a completed transfer). Its own
    /// `on_call_terminated` does not fire.
    async fn on_consultation_ended(
        &self,
        ctx: &CallContext,
        consultation: &CallId,
        end: &CallEnd,
    ) -> Result<(), HookError> {
        let _ = (ctx, consultation, end);
        Ok(())
    }

    /// The caller pressed a key (after [`CallContext::subscribe_to_tone`]):
    /// each press once, in `sequenceId` order, though Graph repeats the last
    /// `toneInfo` on later call notifications. Runs in the call's order, so
    /// while another hook of the call awaits [`CallContext::collect_digits`],
    /// the presses it takes reach this hook afterwards.
    async fn on_tone(&self, ctx: &CallContext, tone: &ToneInfo) -> Result<(), HookError> {
        let _ = (ctx, tone);
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
