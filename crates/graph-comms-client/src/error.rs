//! The client's error types: one for Graph calls, one for getting tokens.

use std::time::Duration;

use graph_comms_model::{FailureCause, GraphErrorBody};

/// Why a Graph call failed.
///
/// Each variant tells the caller what it may do next: a [`GraphClientError::Graph`]
/// error was answered by Graph (branch on `code`); an
/// [`GraphClientError::OutcomeUnknown`] action may or may not have happened, so
/// wait for the call's notifications instead of sending it again.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GraphClientError {
    /// Graph answered with an error status (after any retries).
    #[error("Graph returned {status} {code}: {message} (request-id {}, client-request-id {client_request_id}){}", .request_id.as_deref().unwrap_or("none"), hint_suffix(code, message))]
    Graph {
        /// HTTP status.
        status: u16,
        /// Graph's `error.code` (or `HTTP {status}` when the body had none).
        code: String,
        /// Graph's `error.message`, or the start of a body that was not a Graph error.
        message: String,
        /// Graph's `request-id` (header, else `innerError`).
        request_id: Option<String>,
        /// The `client-request-id` this client sent.
        client_request_id: String,
        /// When Graph says the error happened (`innerError.date`, else the `Date` header).
        date: Option<String>,
    },
    /// A non-idempotent action failed ambiguously (timeout, connection lost
    /// after sending, or a 5xx other than 503): Graph may have acted on it. It is
    /// never re-sent; its outcome arrives as call notifications.
    #[error("outcome of {action} unknown (client-request-id {client_request_id}): {reason}")]
    OutcomeUnknown {
        /// The action, for example `transfer`.
        action: &'static str,
        /// The `client-request-id` this client sent.
        client_request_id: String,
        /// What happened.
        reason: String,
    },
    /// An idempotent request timed out on every attempt the retry budget allowed.
    #[error("{action} timed out after {timeout:?} (client-request-id {client_request_id})")]
    Timeout {
        /// The action.
        action: &'static str,
        /// The `client-request-id` this client sent.
        client_request_id: String,
        /// The per-attempt timeout that passed.
        timeout: Duration,
    },
    /// The request could not be sent or its response could not be read.
    #[error("network error on {action} (client-request-id {client_request_id}): {message}")]
    Network {
        /// The action.
        action: &'static str,
        /// The `client-request-id` this client sent.
        client_request_id: String,
        /// The transport's description.
        message: String,
    },
    /// Graph answered with success but the body was not what the action returns.
    #[error("could not read the {action} response ({status}, client-request-id {client_request_id}): {message}")]
    Decode {
        /// The action.
        action: &'static str,
        /// HTTP status of the response.
        status: u16,
        /// The `client-request-id` this client sent.
        client_request_id: String,
        /// What was wrong.
        message: String,
    },
    /// No access token could be obtained; nothing was sent to Graph.
    #[error("authentication failed: {0}")]
    Auth(#[from] TokenError),
    /// The request was refused before sending (for example a body that cannot be serialised).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The client was built with missing or invalid settings.
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl GraphClientError {
    /// The HTTP status Graph answered with, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Graph { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::Auth(TokenError::Rejected { status, .. }) => Some(*status),
            _ => None,
        }
    }

    /// Graph's `error.code`, for Graph errors.
    pub fn graph_code(&self) -> Option<&str> {
        match self {
            Self::Graph { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The named cause when Graph's error names a subcode (`"code": "7505"`,
    /// or `{"errorCode":"7503"}` inside the message); unknown subcodes are
    /// kept as [`FailureCause::Other`].
    pub fn failure_cause(&self) -> Option<FailureCause> {
        match self {
            Self::Graph { code, message, .. } => FailureCause::from_error_parts(code, message),
            _ => None,
        }
    }

    /// A one-line hint for a known [`Self::failure_cause`] (tenant mismatch,
    /// meeting mode, app not registered, ...).
    pub fn hint(&self) -> Option<&'static str> {
        self.failure_cause()
            .filter(|cause| !matches!(cause, FailureCause::Other(_)))
            .map(FailureCause::hint)
    }

    /// Whether Graph said the resource does not exist (404): the call is gone.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Graph { status: 404, .. })
    }

    /// Whether the action may or may not have happened (see [`GraphClientError::OutcomeUnknown`]).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown { .. })
    }

    /// Graph's `request-id`, for Graph errors that carried one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Graph { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// The `client-request-id` this client sent, when a request was made.
    pub fn client_request_id(&self) -> Option<&str> {
        match self {
            Self::Graph { client_request_id, .. }
            | Self::OutcomeUnknown { client_request_id, .. }
            | Self::Timeout { client_request_id, .. }
            | Self::Network { client_request_id, .. }
            | Self::Decode { client_request_id, .. } => Some(client_request_id),
            _ => None,
        }
    }

    /// A Graph error from an error response's status, headers and body.
    ///
    /// A body that is not a Graph error keeps its first 512 bytes as the message.
    pub(crate) fn from_response(
        status: u16,
        headers: &http::HeaderMap,
        body: &[u8],
        client_request_id: String,
    ) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let parsed = graph_comms_model::from_slice::<GraphErrorBody>(body).ok();
        let (code, message, inner_request_id, inner_date) = match parsed {
            Some(body) if !body.error.code.is_empty() => {
                let inner = body.error.inner_error.clone().unwrap_or_default();
                (body.error.code, body.error.message, inner.request_id, inner.date)
            }
            _ => (format!("HTTP {status}"), text_excerpt(body), None, None),
        };
        Self::Graph {
            status,
            code,
            message,
            request_id: header("request-id").or(inner_request_id),
            client_request_id,
            date: inner_date.or_else(|| header("date")),
        }
    }
}

/// ` (hint: ...)` for a Graph error naming a known subcode, else nothing.
fn hint_suffix(code: &str, message: &str) -> String {
    match FailureCause::from_error_parts(code, message) {
        Some(FailureCause::Other(_)) | None => String::new(),
        Some(cause) => format!("; hint: {}", cause.hint()),
    }
}

/// The start of a body as text, for messages.
pub(crate) fn text_excerpt(body: &[u8]) -> String {
    const LIMIT: usize = 512;
    let text = String::from_utf8_lossy(&body[..body.len().min(LIMIT)]);
    text.trim().to_owned()
}

/// Why no access token could be obtained.
///
/// Never contains the client secret.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token endpoint refused the request (wrong secret, unknown app or tenant, ...).
    #[error("token request rejected with HTTP {status}: {error}{} {description}", .aad_code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Rejected {
        /// HTTP status of the token response.
        status: u16,
        /// The OAuth2 `error`, for example `invalid_client`.
        error: String,
        /// The Entra ID code, for example `AADSTS7000215` (invalid secret).
        aad_code: Option<String>,
        /// `error_description`, with the secret removed should it appear.
        description: String,
        /// `trace_id`, for support requests.
        trace_id: Option<String>,
        /// `correlation_id`, for support requests.
        correlation_id: Option<String>,
    },
    /// The token endpoint could not be reached.
    #[error("token endpoint unreachable: {0}")]
    Network(String),
    /// The token endpoint did not answer in time.
    #[error("token request timed out after {0:?}")]
    Timeout(Duration),
    /// The token response was not a token.
    #[error("token response unreadable: {0}")]
    Decode(String),
    /// A custom [`crate::TokenProvider`] failed.
    #[error("token provider failed: {0}")]
    Provider(String),
    /// The tenant asked for cannot have an app-only token (`common`, empty, ...).
    #[error("invalid tenant: {0}")]
    InvalidTenant(String),
    /// The credential could not build its request (for example an unusable certificate key).
    #[error("credential error: {0}")]
    Credential(String),
}

impl TokenError {
    /// The Entra ID error code (`AADSTS…`), when the endpoint gave one.
    pub fn aad_code(&self) -> Option<&str> {
        match self {
            Self::Rejected { aad_code, .. } => aad_code.as_deref(),
            _ => None,
        }
    }

    /// An error from a custom token provider.
    pub fn provider(message: impl Into<String>) -> Self {
        Self::Provider(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn throttling_body_from_the_docs_is_parsed() {
        let body = br#"{"error":{"code":"TooManyRequests","innerError":{"code":"429","date":"2020-08-18T12:51:51","message":"Please retry after","request-id":"94fb3b52-452a-4535-a601-69e0a90e3aa2","status":"429"},"message":"Please retry again later."}}"#;
        let err = GraphClientError::from_response(429, &headers(&[]), body, "crid".into());
        match err {
            GraphClientError::Graph {
                status,
                code,
                message,
                request_id,
                client_request_id,
                date,
            } => {
                assert_eq!(status, 429);
                assert_eq!(code, "TooManyRequests");
                assert_eq!(message, "Please retry again later.");
                assert_eq!(request_id.as_deref(), Some("94fb3b52-452a-4535-a601-69e0a90e3aa2"));
                assert_eq!(client_request_id, "crid");
                assert_eq!(date.as_deref(), Some("2020-08-18T12:51:51"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn request_id_header_wins_and_date_falls_back_to_the_header() {
        let body = br#"{"error":{"code":"BadRequest","message":"no","innerError":{"requestId":"inner"}}}"#;
        let err = GraphClientError::from_response(
            400,
            &headers(&[("request-id", "outer"), ("date", "Tue, 15 Nov 1994 08:12:31 GMT")]),
            body,
            "c".into(),
        );
        assert_eq!(err.request_id(), Some("outer"));
        assert_eq!(err.graph_code(), Some("BadRequest"));
        assert!(matches!(err, GraphClientError::Graph { date: Some(ref d), .. } if d.contains("1994")));
    }

    #[test]
    fn a_body_that_is_not_a_graph_error_keeps_its_text() {
        let err = GraphClientError::from_response(502, &headers(&[]), b"<html>bad gateway</html>", "c".into());
        assert_eq!(err.graph_code(), Some("HTTP 502"));
        assert_eq!(err.status(), Some(502));
        assert!(err.to_string().contains("bad gateway"));
    }

    #[test]
    fn subcode_errors_carry_a_cause_and_hint() {
        let body = br#"{"error":{"code":"7505","message":"Request authorization tenant mismatch.","innerError":{"request-id":"r"}}}"#;
        let err = GraphClientError::from_response(403, &headers(&[]), body, "c".into());
        assert_eq!(err.failure_cause(), Some(FailureCause::TenantMismatch));
        assert!(err.hint().is_some_and(|h| h.contains("different tenants")));
        assert!(err.to_string().contains("hint: the app and the call"), "{err}");
        let plain = GraphClientError::from_response(
            400,
            &headers(&[]),
            br#"{"error":{"code":"BadRequest","message":"no"}}"#,
            "c".into(),
        );
        assert_eq!(plain.failure_cause(), None);
        assert_eq!(plain.hint(), None);
        let unknown = GraphClientError::from_response(
            400,
            &headers(&[]),
            br#"{"error":{"code":"9999","message":"?"}}"#,
            "c".into(),
        );
        assert_eq!(unknown.failure_cause(), Some(FailureCause::Other(9999)));
        assert_eq!(unknown.hint(), None);
    }

    #[test]
    fn accessors_tell_variants_apart() {
        let not_found = GraphClientError::from_response(404, &headers(&[]), b"", "c".into());
        assert!(not_found.is_not_found());
        assert!(!not_found.is_outcome_unknown());
        let unknown = GraphClientError::OutcomeUnknown {
            action: "transfer",
            client_request_id: "c".into(),
            reason: "timeout".into(),
        };
        assert!(unknown.is_outcome_unknown());
        assert_eq!(unknown.status(), None);
        assert_eq!(unknown.client_request_id(), Some("c"));
    }
}
