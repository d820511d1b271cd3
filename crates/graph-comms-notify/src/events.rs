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
    /// How the item was delivered: Graph's message id, the item's place in
    /// its request, the callback URL's query.
    pub delivery: Delivery,
}

/// How one notification item reached the endpoint.
///
/// Graph delivers at least once: a request it retries carries the same
/// `X-Microsoft-Skype-Message-ID`, so `(message id, item)` names one item of
/// one message across deliveries. The header is not in Graph's v1.0
/// reference, so it may be absent; nothing may require it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The request's `X-Microsoft-Skype-Message-ID`, when it had one.
    pub message_id: Option<Box<str>>,
    /// The item's position in the request's `value` array.
    pub item: u32,
    /// The query of the callback URL the request was sent to (without `?`),
    /// when it had one: a per-call `callbackUri` can carry context there.
    pub query: Option<Box<str>>,
}

impl Delivery {
    /// A delivery with the given message id and item position.
    pub fn new(message_id: Option<&str>, item: u32) -> Self {
        Self {
            message_id: message_id.map(Box::from),
            item,
            query: None,
        }
    }

    /// Sets the callback URL's query.
    #[must_use]
    pub fn with_query(mut self, query: Option<&str>) -> Self {
        self.query = query.filter(|q| !q.is_empty()).map(Box::from);
        self
    }

    /// The value of the query parameter `name`, `%XX` escapes decoded, when
    /// the query has it.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .as_deref()?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| percent_decode(value))
    }

    /// A stable 64-bit key of `(message id, item)` (FNV-1a), the same in
    /// every process: `None` without a message id.
    pub fn key(&self) -> Option<u64> {
        let id = self.message_id.as_deref()?;
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in id.bytes().chain([0]).chain(self.item.to_le_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Some(hash)
    }
}

/// Decodes `%XX` escapes and `+` as a space; a malformed escape is kept as written.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        index += 3;
                    }
                    None => {
                        out.push(b'%');
                        index += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
            delivery: Delivery::default(),
        })
    }

    /// Sets how the item was delivered.
    #[must_use]
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_names_one_item_of_one_message() {
        let first = Delivery::new(Some("m-1"), 0);
        assert_eq!(first.key(), Delivery::new(Some("m-1"), 0).key());
        assert_ne!(first.key(), Delivery::new(Some("m-1"), 1).key());
        assert_ne!(first.key(), Delivery::new(Some("m-2"), 0).key());
        assert_eq!(Delivery::new(None, 0).key(), None);
    }

    #[test]
    fn query_parameters_are_read_and_decoded() {
        let delivery = Delivery::new(None, 0).with_query(Some("a=1&consultationFor=c%2D1+x&bad=%zz"));
        assert_eq!(delivery.query_param("consultationFor").as_deref(), Some("c-1 x"));
        assert_eq!(delivery.query_param("bad").as_deref(), Some("%zz"));
        assert_eq!(delivery.query_param("missing"), None);
        assert_eq!(Delivery::new(None, 0).with_query(Some("")).query, None);
    }
}
