//! Awaitable call operations: a prompt, a recording, a tone subscription, a
//! DTMF send or a recording-status update, whose `.await` resolves when Graph
//! says the operation `completed` or `failed` (matched by its `clientContext`,
//! else its id), when the call ends, or at a timeout.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use graph_comms_model::{CallState, ChangeType, CommsNotification, CommsOperation, OperationStatus};

use crate::runtime::Listener;

/// Why an awaited operation did not complete.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    /// Graph said the operation failed (its `resultInfo` says why).
    #[error("the operation failed: {}", failure_summary(.0))]
    Failed(Box<CommsOperation>),
    /// No end arrived within the timeout (`Timings::operation_timeout`, or
    /// [`PendingOperation::timeout`]).
    #[error("no end of the operation within {0:?}")]
    TimedOut(Duration),
    /// The call ended first.
    #[error("the call ended before the operation did")]
    CallEnded,
    /// The bot stopped while waiting.
    #[error("the bot stopped while waiting for the operation")]
    Stopped,
}

fn failure_summary(operation: &CommsOperation) -> String {
    match &operation.result_info {
        Some(result) => format!(
            "{}/{} {}",
            result.code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            result.subcode.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            result.message.as_deref().unwrap_or_default()
        ),
        None => "no resultInfo".to_owned(),
    }
}

/// An operation Graph accepted and runs on the call. `.await` it (or call
/// [`finished`](Self::finished)) for its end; drop it to stop waiting (the
/// operation goes on, and `on_operation_completed` still fires).
///
/// Await it inside a hook, or while the hook's call is otherwise held: the
/// awaiting code sees the call's notifications beside its queue (with a
/// shared store, also those other instances received).
pub struct PendingOperation {
    accepted: CommsOperation,
    client_context: String,
    listener: Listener,
    timeout: Duration,
}

impl std::fmt::Debug for PendingOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingOperation")
            .field("accepted", &self.accepted)
            .field("client_context", &self.client_context)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PendingOperation {
    pub(crate) fn new(accepted: CommsOperation, client_context: String, listener: Listener, timeout: Duration) -> Self {
        Self {
            accepted,
            client_context,
            listener,
            timeout,
        }
    }

    /// The operation as Graph accepted it (its id, usually `running`).
    pub fn accepted(&self) -> &CommsOperation {
        &self.accepted
    }

    /// The `clientContext` sent with the request, by which its end is matched.
    pub fn client_context(&self) -> &str {
        &self.client_context
    }

    /// Waits at most `timeout` for the end instead of `Timings::operation_timeout`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The operation's end: `Ok` with the completed operation, or why not.
    ///
    /// # Errors
    ///
    /// [`OperationError`]: failed, timed out, the call ended, or the bot stopped.
    pub async fn finished(mut self) -> Result<CommsOperation, OperationError> {
        // Some operations are answered finished already.
        if let Some(end) = ended(&self.accepted) {
            return end;
        }
        let timeout = self.timeout;
        let wait = async {
            loop {
                let Some(notification) = self.listener.next().await else {
                    return Err(OperationError::Stopped);
                };
                if let Some(end) = self.end_in(&notification) {
                    return end;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(OperationError::TimedOut(timeout)))
    }

    fn end_in(&self, notification: &CommsNotification) -> Option<Result<CommsOperation, OperationError>> {
        if call_ended(notification) {
            return Some(Err(OperationError::CallEnded));
        }
        let operation = notification.operation()?;
        let ours = match (&operation.client_context, &operation.id, &self.accepted.id) {
            (Some(context), _, _) => *context == self.client_context,
            (None, Some(id), Some(accepted)) => id == accepted,
            _ => false,
        };
        if !ours {
            return None;
        }
        if notification.change_type == ChangeType::Deleted && operation.status.is_none() {
            return Some(Ok(operation.clone()));
        }
        ended(operation)
    }
}

/// The end an operation's status says, if it has ended.
fn ended(operation: &CommsOperation) -> Option<Result<CommsOperation, OperationError>> {
    match operation.status {
        Some(OperationStatus::Completed) => Some(Ok(operation.clone())),
        Some(OperationStatus::Failed) => Some(Err(OperationError::Failed(Box::new(operation.clone())))),
        _ => None,
    }
}

/// Whether the notification says the call itself ended.
pub(crate) fn call_ended(notification: &CommsNotification) -> bool {
    notification.call().is_some_and(|call| {
        notification.change_type == ChangeType::Deleted || call.state == Some(CallState::Terminated)
    })
}

impl IntoFuture for PendingOperation {
    type Output = Result<CommsOperation, OperationError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.finished())
    }
}
