//! A call's plan: its targets, how far the receptionist got, and how the call
//! ended, kept in the call's record (`CallContext::data`) so any instance
//! sharing the store carries it on.

use std::fmt;

use graph_comms_handler::CallContext;
use graph_comms_handler::model::{CallId, ParticipantInfo};

use crate::menu::Choice;
use crate::routing::Target;

/// How the bot finished with a call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CallOutcome {
    /// A transfer completed to this target.
    Transferred {
        /// The target (log-safe label).
        target: String,
    },
    /// Every target failed; the bot apologised (if a prompt is configured) and hung up.
    Apologised,
    /// The call ended before any transfer completed (e.g. the caller hung up).
    Dropped {
        /// The end code, `code/subcode`.
        reason: String,
    },
}

impl fmt::Display for CallOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transferred { target } => write!(f, "transferred to {target}"),
            Self::Apologised => f.write_str("apologised, hung up"),
            Self::Dropped { reason } => write!(f, "dropped ({reason})"),
        }
    }
}

impl CallOutcome {
    /// A short stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Transferred { .. } => "transferred",
            Self::Apologised => "apologised",
            Self::Dropped { .. } => "dropped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum Phase {
    /// Answered, waiting for `established`.
    Ringing,
    /// Placing or waiting on a consultation call: written by versions that
    /// drove consultations themselves; read like `Transferring`.
    Consulting(Option<CallId>),
    /// A transfer request is out.
    Transferring,
    /// Playing the apology; hang up once it ended.
    Apologising,
    /// Hung up; waiting for the end.
    HangingUp,
}

/// An inbound call's progress through its targets, kept in the call's record.
/// Empty fields are left out (the record is stored with every change), and
/// read back as empty.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Plan {
    pub(super) targets: Vec<Target>,
    pub(super) next: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) tried: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) current: Option<Target>,
    /// Written by versions that drove consultations themselves; unused now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) consultation: Option<CallId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) transferee: Option<ParticipantInfo>,
    pub(super) phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) outcome: Option<CallOutcome>,
    /// The caller still has to choose in the menu.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) menu_pending: bool,
    /// What the caller chose in the menu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) choice: Option<Choice>,
}

/// The call's plan, if it is an inbound call of this receptionist.
pub(super) fn plan(ctx: &CallContext) -> Option<Plan> {
    match ctx.data::<Plan>() {
        Ok(plan) => plan,
        Err(e) => {
            tracing::warn!(call_id = %ctx.call_id(), error = %e, "unreadable call plan");
            None
        }
    }
}

/// Changes the call's plan and stores it with the call; `None` when the call has no plan.
pub(super) async fn update_plan<R>(ctx: &CallContext, change: impl FnOnce(&mut Plan) -> R) -> Option<R> {
    let mut plan = plan(ctx)?;
    let result = change(&mut plan);
    if let Err(e) = ctx.set_data(&plan).await {
        tracing::warn!(call_id = %ctx.call_id(), error = %e, "could not store the call plan");
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan as the app stored it before empty fields were left out (taken
    /// from a demo call's record in Redis).
    const WITH_NULLS: &str = r#"{"choice":null,"consultation":null,"current":{"destination":{"user":{"id":"heidi","tenant_id":null}},"displayName":null,"mode":"blind"},"menuPending":false,"next":1,"outcome":{"transferred":{"target":"user:heidi"}},"phase":"transferring","targets":[{"destination":{"user":{"id":"heidi","tenant_id":null}},"displayName":null,"mode":"blind"}],"transferee":null,"tried":["user:heidi"]}"#;

    #[test]
    fn a_plan_is_written_without_its_empty_fields_and_reads_the_form_with_nulls() {
        let plan: Plan = serde_json::from_str(WITH_NULLS).unwrap();
        assert_eq!(plan.current, Some(Target::user("heidi")));
        assert_eq!(plan.tried, ["user:heidi"]);
        let written = serde_json::to_string(&plan).unwrap();
        assert!(
            !written.contains("null") && !written.contains("menuPending"),
            "{written}"
        );
        assert!(
            written.len() * 10 < WITH_NULLS.len() * 8,
            "{} vs {} bytes",
            written.len(),
            WITH_NULLS.len()
        );
        let again: Plan = serde_json::from_str(&written).unwrap();
        assert_eq!(serde_json::to_string(&again).unwrap(), written);
    }
}
