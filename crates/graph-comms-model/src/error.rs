//! Graph's error body: `{"error": {"code", "message", "innerError"}}`.

use serde::{Deserialize, Serialize};

use crate::Extra;

/// The body of a Graph error response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphErrorBody {
    /// The error.
    pub error: GraphError,
}

/// `error` in a Graph error body. Branch on `code`, never on `message`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphError {
    /// Machine-readable code, for example `TooManyRequests` or `BadRequest`.
    #[serde(default)]
    pub code: String,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
    /// Request ids and the date, and possibly a nested error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<InnerError>,
    /// Properties Graph adds beyond these.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `innerError`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InnerError {
    /// The request id Graph assigned (`request-id`; the errors doc spells it `requestId`).
    #[serde(
        rename = "request-id",
        alias = "requestId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_id: Option<String>,
    /// The `client-request-id` the caller sent.
    #[serde(
        rename = "client-request-id",
        alias = "clientRequestId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_request_id: Option<String>,
    /// When the error happened (ISO 8601, kept as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// A nested code, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A nested message, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A nested inner error.
    #[serde(rename = "innerError", default, skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<Box<InnerError>>,
    /// Other properties (`status`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

impl GraphErrorBody {
    /// An error body with this code and message, and a request id.
    pub fn new(code: impl Into<String>, message: impl Into<String>, request_id: impl Into<String>) -> Self {
        Self {
            error: GraphError {
                code: code.into(),
                message: message.into(),
                inner_error: Some(InnerError {
                    request_id: Some(request_id.into()),
                    ..InnerError::default()
                }),
                extra: Extra::new(),
            },
        }
    }

    /// `innerError.request-id`, if present.
    pub fn request_id(&self) -> Option<&str> {
        self.error.inner_error.as_ref()?.request_id.as_deref()
    }
}
