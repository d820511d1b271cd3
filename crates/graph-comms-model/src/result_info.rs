//! `resultInfo`: the code/subcode pair that says why a call or operation changed.

use serde::{Deserialize, Deserializer, Serialize};

use crate::Extra;

/// `resultInfo`.
///
/// Reads `subcode` and `subCode`, and numbers or numeric strings for both
/// codes (every transfer-failed example sends `subCode`; call-delete sends
/// `"code": "200"`). Writes the schema's `subcode` and numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultInfo {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// HTTP-like status: 2xx success, 4xx client, 5xx server. Inconsistent in
    /// practice (a successful transfer is `0` or `200`): do not branch on it alone.
    #[serde(default, deserialize_with = "lenient_i32", skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The detail code, for example 7015 (transfer completed) or 7000 (transfer failed).
    #[serde(
        default,
        alias = "subCode",
        deserialize_with = "lenient_i32",
        skip_serializing_if = "Option::is_none"
    )]
    pub subcode: Option<i32>,
    /// Human-readable text; never branch on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ResultInfo {
    /// A result with this code and subcode.
    pub fn new(code: i32, subcode: i32, message: impl Into<String>) -> Self {
        Self {
            odata_type: Some("#microsoft.graph.resultInfo".into()),
            code: Some(code),
            subcode: Some(subcode),
            message: Some(message.into()),
            extra: Extra::new(),
        }
    }
}

/// Well-known subcodes (see `docs/transfer-lifecycle.md`).
pub mod subcodes {
    /// The call ended because the transfer completed ("GracefulTransferCompleted").
    pub const TRANSFER_COMPLETED: i32 = 7015;
    /// The transfer failed; the call is back to `established`. Also "ended by bot" with code 200.
    pub const TRANSFER_FAILED: i32 = 7000;
    /// The consultative transfer failed; the call is back to `established`.
    pub const CONSULTATIVE_TRANSFER_FAILED: i32 = 7700;
    /// The call was idle past 45 minutes without keepAlive.
    pub const KEEP_ALIVE_TIMEOUT: i32 = 8537;
    /// An incoming call was not answered, rejected or redirected in time (15 s; code 408).
    pub const CALL_ACCEPTANCE_TIMEOUT: i32 = 1106;
    /// The conversation ended.
    pub const CONVERSATION_ENDED: i32 = 5001;
    /// The operation was cancelled.
    pub const OPERATION_CANCELED: i32 = 8508;
    /// The app is not registered as a calling bot ("Application is not registered in our store").
    pub const APP_NOT_REGISTERED: i32 = 7503;
    /// The app lacks the permissions for the request.
    pub const INSUFFICIENT_PERMISSIONS: i32 = 7504;
    /// The token's tenant is not the call's ("Request authorization tenant mismatch").
    pub const TENANT_MISMATCH: i32 = 7505;
    /// Transfer refused: the call is in meeting mode ("Cannot do transfer for meeting mode").
    pub const TRANSFER_IN_MEETING_MODE: i32 = 8523;

    pub use crate::failure::FailureCause;
}

fn lenient_i32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrString {
        Num(i64),
        Str(String),
    }
    let value = Option::<NumOrString>::deserialize(deserializer)?;
    let number = match value {
        None => return Ok(None),
        Some(NumOrString::Num(n)) => n,
        Some(NumOrString::Str(s)) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| serde::de::Error::custom(format_args!("expected a number or numeric string, got {s:?}")))?,
    };
    i32::try_from(number)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format_args!("code {number} is out of range")))
}
