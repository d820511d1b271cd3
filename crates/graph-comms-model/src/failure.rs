//! Named failure causes for Graph subcodes, each with a one-line hint.

use std::fmt;

use crate::{GraphError, ResultInfo, subcodes};

/// Why a call, transfer or request failed, from Graph's subcode.
///
/// Subcodes come from `resultInfo.subcode` in notifications, or from a Graph
/// error body whose `error.code` is a number (`"7505"`) or whose message
/// wraps one (`{"errorCode":"7503",...}`). A subcode this version does not
/// name is kept in [`FailureCause::Other`].
///
/// ```
/// use graph_comms_model::FailureCause;
///
/// let cause = FailureCause::from_subcode(7505);
/// assert_eq!(cause, FailureCause::TenantMismatch);
/// assert!(cause.hint().contains("tenant"));
/// assert_eq!(FailureCause::from_subcode(1234), FailureCause::Other(1234));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureCause {
    /// 7000: the transfer target declined, was busy or did not answer.
    TargetNotReached,
    /// 7700: the consultative transfer failed (the target declined or was not reached).
    ConsultativeTargetNotReached,
    /// 7503: the app is not registered as a calling bot.
    AppNotRegistered,
    /// 7504: the app lacks the permissions (or admin consent) for this request.
    InsufficientPermissions,
    /// 7505: the token's tenant is not the call's (or the target's) tenant.
    TenantMismatch,
    /// 8523: the call became a meeting (multiparty); transfer is not available.
    TransferInMeetingMode,
    /// 8537: the call was idle past 45 minutes without keepAlive.
    KeepAliveTimeout,
    /// 8508: the operation was cancelled.
    OperationCanceled,
    /// A subcode this version does not name, kept as sent.
    Other(i32),
}

impl FailureCause {
    /// The cause of a subcode; unknown subcodes become [`FailureCause::Other`].
    pub fn from_subcode(subcode: i32) -> Self {
        match subcode {
            subcodes::TRANSFER_FAILED => Self::TargetNotReached,
            subcodes::CONSULTATIVE_TRANSFER_FAILED => Self::ConsultativeTargetNotReached,
            subcodes::APP_NOT_REGISTERED => Self::AppNotRegistered,
            subcodes::INSUFFICIENT_PERMISSIONS => Self::InsufficientPermissions,
            subcodes::TENANT_MISMATCH => Self::TenantMismatch,
            subcodes::TRANSFER_IN_MEETING_MODE => Self::TransferInMeetingMode,
            subcodes::KEEP_ALIVE_TIMEOUT => Self::KeepAliveTimeout,
            subcodes::OPERATION_CANCELED => Self::OperationCanceled,
            other => Self::Other(other),
        }
    }

    /// The cause in a Graph error's `code` and `message`: a numeric code
    /// (`"7505"`), or an `errorCode` inside a JSON message (`UnknownError`
    /// with `{"errorCode":"7503",...}`). `None` when neither carries a number.
    pub fn from_error_parts(code: &str, message: &str) -> Option<Self> {
        if let Ok(subcode) = code.trim().parse::<i32>() {
            return Some(Self::from_subcode(subcode));
        }
        error_code_in(message).map(Self::from_subcode)
    }

    /// The cause in a Graph error body (see [`FailureCause::from_error_parts`];
    /// a numeric `innerError.code` other than the HTTP status also counts).
    pub fn from_graph_error(error: &GraphError) -> Option<Self> {
        Self::from_error_parts(&error.code, &error.message).or_else(|| {
            let inner = error
                .inner_error
                .as_ref()?
                .code
                .as_deref()?
                .trim()
                .parse::<i32>()
                .ok()?;
            // Throttling bodies repeat the HTTP status there ("429"); that is no subcode.
            (inner >= 1000).then(|| Self::from_subcode(inner))
        })
    }

    /// The cause in a `resultInfo`, if it has a non-zero subcode.
    pub fn from_result_info(result: &ResultInfo) -> Option<Self> {
        result.subcode.filter(|s| *s != 0).map(Self::from_subcode)
    }

    /// The subcode.
    pub fn subcode(self) -> i32 {
        match self {
            Self::TargetNotReached => subcodes::TRANSFER_FAILED,
            Self::ConsultativeTargetNotReached => subcodes::CONSULTATIVE_TRANSFER_FAILED,
            Self::AppNotRegistered => subcodes::APP_NOT_REGISTERED,
            Self::InsufficientPermissions => subcodes::INSUFFICIENT_PERMISSIONS,
            Self::TenantMismatch => subcodes::TENANT_MISMATCH,
            Self::TransferInMeetingMode => subcodes::TRANSFER_IN_MEETING_MODE,
            Self::KeepAliveTimeout => subcodes::KEEP_ALIVE_TIMEOUT,
            Self::OperationCanceled => subcodes::OPERATION_CANCELED,
            Self::Other(subcode) => subcode,
        }
    }

    /// A short name, for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::TargetNotReached => "target_not_reached",
            Self::ConsultativeTargetNotReached => "consultative_target_not_reached",
            Self::AppNotRegistered => "app_not_registered",
            Self::InsufficientPermissions => "insufficient_permissions",
            Self::TenantMismatch => "tenant_mismatch",
            Self::TransferInMeetingMode => "transfer_in_meeting_mode",
            Self::KeepAliveTimeout => "keep_alive_timeout",
            Self::OperationCanceled => "operation_canceled",
            Self::Other(_) => "other",
        }
    }

    /// One line saying what probably happened and what to check.
    pub fn hint(self) -> &'static str {
        match self {
            Self::TargetNotReached => "the target declined, was busy or did not answer; try the next target",
            Self::ConsultativeTargetNotReached => {
                "the consultative transfer failed: the target declined or was not reached; the caller is still with the bot"
            }
            Self::AppNotRegistered => {
                "the app is not registered as a calling bot: enable calling on the bot registration (Teams channel) for this app id"
            }
            Self::InsufficientPermissions => {
                "the app lacks permissions for this request: grant the Calls.* application permissions and admin consent in the call's tenant"
            }
            Self::TenantMismatch => {
                "the app and the call (or target) are in different tenants: get the token for the call's tenant, and consent the app there"
            }
            Self::TransferInMeetingMode => {
                "the call became a meeting (multiparty) and cannot be transferred: invite the target and remove the bot instead"
            }
            Self::KeepAliveTimeout => "the call was idle past 45 minutes: send keepAlive every 15 minutes",
            Self::OperationCanceled => "the operation was cancelled (cancelMediaProcessing or the call ended)",
            Self::Other(_) => "no hint for this subcode; see Graph's message",
        }
    }
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.name(), self.subcode(), self.hint())
    }
}

/// The number in `"errorCode":"7503"` (or `"errorCode":7503`) within a message.
fn error_code_in(message: &str) -> Option<i32> {
    let start = message.find("\"errorCode\"")? + "\"errorCode\"".len();
    let rest = message[start..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl ResultInfo {
    /// The named cause of this result's subcode (`None` without one, or for 0).
    pub fn failure_cause(&self) -> Option<FailureCause> {
        FailureCause::from_result_info(self)
    }
}

impl GraphError {
    /// The named cause this error carries, if its code names a subcode.
    pub fn failure_cause(&self) -> Option<FailureCause> {
        FailureCause::from_graph_error(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GraphErrorBody;

    #[test]
    fn known_subcodes_have_names_and_hints() {
        for (subcode, cause) in [
            (7000, FailureCause::TargetNotReached),
            (7700, FailureCause::ConsultativeTargetNotReached),
            (7503, FailureCause::AppNotRegistered),
            (7504, FailureCause::InsufficientPermissions),
            (7505, FailureCause::TenantMismatch),
            (8523, FailureCause::TransferInMeetingMode),
            (8537, FailureCause::KeepAliveTimeout),
            (8508, FailureCause::OperationCanceled),
        ] {
            assert_eq!(FailureCause::from_subcode(subcode), cause);
            assert_eq!(cause.subcode(), subcode);
            assert!(!cause.hint().is_empty());
            assert!(cause.to_string().contains(&subcode.to_string()));
        }
        assert!(FailureCause::TenantMismatch.hint().contains("different tenants"));
        assert!(FailureCause::TransferInMeetingMode.hint().contains("meeting"));
    }

    #[test]
    fn unknown_subcodes_are_kept() {
        let cause = FailureCause::from_subcode(424_242);
        assert_eq!(cause, FailureCause::Other(424_242));
        assert_eq!(cause.subcode(), 424_242);
        assert_eq!(cause.name(), "other");
    }

    #[test]
    fn graph_error_bodies_carry_causes() {
        // As Graph answers a create call with a token of another tenant.
        let body: GraphErrorBody = serde_json::from_str(
            r#"{"error":{"code":"7505","message":"Request authorization tenant mismatch.","innerError":{"request-id":"r","date":"2020-02-13T17:30:24"}}}"#,
        )
        .unwrap();
        assert_eq!(body.error.failure_cause(), Some(FailureCause::TenantMismatch));
        // As the SDK surfaces an unregistered bot: the subcode inside a JSON message.
        let wrapped = FailureCause::from_error_parts(
            "UnknownError",
            r#"{"errorCode":"7503","message":"Application is not registered in our store.","instanceAnnotations":[]}"#,
        );
        assert_eq!(wrapped, Some(FailureCause::AppNotRegistered));
        assert_eq!(
            FailureCause::from_error_parts("UnknownError", r#"{"errorCode": 8523}"#),
            Some(FailureCause::TransferInMeetingMode)
        );
        // Throttling repeats the status in innerError.code: no cause.
        let throttled: GraphErrorBody = serde_json::from_str(
            r#"{"error":{"code":"TooManyRequests","innerError":{"code":"429"},"message":"Please retry again later."}}"#,
        )
        .unwrap();
        assert_eq!(throttled.error.failure_cause(), None);
        assert_eq!(FailureCause::from_error_parts("BadRequest", "no"), None);
    }

    #[test]
    fn result_infos_carry_causes() {
        assert_eq!(
            ResultInfo::new(500, 7000, "failed").failure_cause(),
            Some(FailureCause::TargetNotReached)
        );
        assert_eq!(ResultInfo::new(200, 0, "ok").failure_cause(), None);
        assert_eq!(ResultInfo::default().failure_cause(), None);
    }
}
