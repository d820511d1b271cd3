//! What the endpoint hands to the consumer.

use std::time::Instant;

use graph_comms_model::{CallId, CommsNotification, ResourceUrl, TenantId};
use tokio::sync::mpsc;

/// One notification item, ready for the per-call consumer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NotificationEvent {
    /// The call the item is about (from `resourceUrl` or the legacy `resource`).
    pub call_id: CallId,
    /// The parsed resource path: the call, an operation, the roster, ...
    pub resource: ResourceUrl,
    /// The whole item as received, including its change type and `resourceData`.
    pub notification: CommsNotification,
    /// The tenant named by the token's `tid`.
    pub tenant_id: TenantId,
    /// When the request carrying the item was received.
    pub received_at: Instant,
    /// Position in arrival order across all requests, starting at 0.
    pub sequence: u64,
}

impl NotificationEvent {
    /// The event for one item, as the endpoint builds it (sequence 0): for
    /// items read back from a journal.
    ///
    /// # Errors
    ///
    /// The item names no call (no parseable `resourceUrl` or `resource`).
    pub fn new(
        notification: CommsNotification,
        tenant_id: TenantId,
        received_at: Instant,
    ) -> Result<Self, graph_comms_model::ResourceUrlError> {
        let resource = notification.resource()?;
        Ok(Self {
            call_id: resource.call_id.clone(),
            resource,
            notification,
            tenant_id,
            received_at,
            sequence: 0,
        })
    }
}

/// The receiving end of the endpoint's bounded queue, in arrival order.
#[derive(Debug)]
pub struct EventReceiver {
    pub(crate) inner: mpsc::Receiver<NotificationEvent>,
}

impl EventReceiver {
    /// The next event; `None` once the endpoint is closed (or dropped) and the queue is drained.
    pub async fn recv(&mut self) -> Option<NotificationEvent> {
        self.inner.recv().await
    }

    /// The next event if one is queued now.
    pub fn try_recv(&mut self) -> Option<NotificationEvent> {
        self.inner.try_recv().ok()
    }

    /// Events queued and not yet received.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}
