//! One notification message POSTed like Graph does: signed, with message-id headers, and
//! redelivered with exponential backoff (or the receiver's `Retry-After`) while refused.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use graph_comms_model::{AppId, CallId, TenantId};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::state::{Inner, lock};
use crate::{DeliveryFaults, SentNotification};

/// The header naming one notification message; the same on its retries and copies.
pub(crate) const MESSAGE_ID: &str = "X-Microsoft-Skype-Message-ID";
/// The header naming the call chain the message belongs to.
pub(crate) const CHAIN_ID: &str = "X-Microsoft-Skype-Chain-ID";

/// One `commsNotifications` body to one URL, as every attempt and copy of it sends it.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) call: CallId,
    pub(crate) url: String,
    pub(crate) body: Value,
    /// `X-Microsoft-Skype-Message-ID` and `X-Microsoft-Skype-Chain-ID`, unless ids are off.
    pub(crate) ids: Option<(String, String)>,
    app: AppId,
    tenant: TenantId,
}

impl Message {
    /// A new message of `call` (a fresh message id) and the call's delivery faults;
    /// `None` for an unknown call.
    pub(crate) fn new(inner: &Inner, call: &CallId, url: &str, items: Vec<Value>) -> Option<(Self, DeliveryFaults)> {
        let calls = lock(&inner.calls);
        let record = calls.get(call)?;
        let ids = (inner.config.message_ids && !record.faults.omit_message_ids).then(|| {
            // Graph names the call's chain; a call without one is its own chain.
            let chain = if record.call_chain_id.is_empty() {
                call.as_str().to_owned()
            } else {
                record.call_chain_id.clone()
            };
            (uuid::Uuid::new_v4().to_string(), chain)
        });
        let message = Self {
            call: call.clone(),
            url: url.to_owned(),
            body: json!({ "@odata.type": "#microsoft.graph.commsNotifications", "value": items }),
            ids,
            app: record.app_id.clone(),
            tenant: record.tenant_id.clone(),
        };
        Some((message, record.faults.clone()))
    }

    /// The notification items of the body.
    pub(crate) fn items(&self) -> &[Value] {
        self.body
            .get("value")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }
}

/// POSTs `message` until the receiver answers 2xx, `delivery_retry_window` has passed since the
/// first attempt, or `delivery_attempts` were made. Every attempt is logged on the call.
pub(crate) async fn send(inner: &Arc<Inner>, message: &Message) {
    let config = &inner.config;
    let window_end = Instant::now().checked_add(config.delivery_retry_window);
    let attempts = config.delivery_attempts.max(1);
    let mut backoff = config.delivery_retry_initial;
    for attempt in 1..=attempts {
        let Some(answer) = post(inner, message, attempt).await else {
            return;
        };
        if answer.status.is_some_and(|s| (200..300).contains(&s)) || attempt == attempts {
            return;
        }
        let computed = backoff.min(config.delivery_retry_max_interval);
        backoff = backoff.saturating_mul(2);
        let mut wait = answer.retry_after.unwrap_or(computed);
        if let Some(end) = window_end {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            wait = wait.min(left);
        }
        tokio::time::sleep(wait).await;
    }
}

/// What the receiver answered one attempt.
struct Answer {
    /// `None` on timeout or connection error.
    status: Option<u16>,
    /// The `Retry-After` of a 429 or 503.
    retry_after: Option<Duration>,
}

/// One attempt; `None` when no token could be signed (nothing is sent).
async fn post(inner: &Inner, message: &Message, attempt: u32) -> Option<Answer> {
    let token = lock(&inner.keys).notification_token(
        &inner.config.issuer,
        message.app.as_str(),
        message.tenant.as_str(),
        inner.config.notification_token_lifetime,
    );
    let authorization = match token {
        Ok(token) => format!("Bearer {token}"),
        Err(error) => {
            tracing::error!(%error, "cannot sign a notification");
            return None;
        }
    };
    let mut request = inner
        .http
        .post(&message.url)
        .header(http::header::AUTHORIZATION, &authorization)
        .timeout(inner.config.delivery_timeout)
        .json(&message.body);
    if let Some((message_id, chain_id)) = &message.ids {
        request = request.header(MESSAGE_ID, message_id).header(CHAIN_ID, chain_id);
    }
    let response = request.send().await;
    let answer = match &response {
        Ok(response) => Answer {
            status: Some(response.status().as_u16()),
            retry_after: retry_after(response),
        },
        Err(error) => {
            tracing::debug!(%error, url = %message.url, "notification delivery failed");
            Answer {
                status: None,
                retry_after: None,
            }
        }
    };
    if let Some(record) = lock(&inner.calls).get_mut(&message.call) {
        record.notifications.push(SentNotification {
            body: message.body.clone(),
            authorization,
            attempt,
            response_status: answer.status,
            url: message.url.clone(),
            message_id: message.ids.as_ref().map(|(id, _)| id.clone()),
        });
    }
    Some(answer)
}

/// The wait a 429 or 503 asks for in `Retry-After`.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let status = response.status().as_u16();
    if status != 429 && status != 503 {
        return None;
    }
    let value = response.headers().get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// `Retry-After` as seconds (`120`, or fractional like Graph's `2.128`) or an HTTP date
/// (a date in the past is no wait).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_fractions_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 2.128 ", now), Some(Duration::from_millis(2128)));
        // 2015-10-21T07:28:00Z is 1_445_412_480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
