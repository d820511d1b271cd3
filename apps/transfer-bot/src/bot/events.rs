//! The receptionist's progress events, for the demo's output and tests.

use std::fmt;

use graph_comms_handler::model::CallId;

use super::plan::CallOutcome;
use crate::routing::TransferMode;

/// One step of a call's handling, for progress output and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotEvent {
    /// The incoming call this is about.
    pub call_id: CallId,
    /// What happened.
    pub kind: BotEventKind,
}

/// What happened to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BotEventKind {
    /// A call came in; this many targets are routed for it.
    Incoming {
        /// Number of targets.
        targets: usize,
    },
    /// The call is established and the hold prompt (if any) started.
    Established,
    /// A consultation call to the target is being placed.
    Consulting {
        /// The target.
        target: String,
    },
    /// A transfer to the target was requested.
    TransferStarted {
        /// The target.
        target: String,
        /// Blind or consultative.
        mode: TransferMode,
    },
    /// The target accepted.
    TransferAccepted {
        /// The target.
        target: String,
    },
    /// The transfer completed.
    TransferCompleted {
        /// The target.
        target: String,
    },
    /// The attempt on the target failed.
    TransferFailed {
        /// The target.
        target: String,
        /// Why.
        reason: String,
    },
    /// The caller chose in the menu.
    MenuChoice {
        /// What was pressed and where it leads.
        choice: String,
    },
    /// No target left; apologising.
    Apologising,
    /// The bot hung up.
    HangingUp,
    /// The bot is done with the call.
    Finished {
        /// How it ended.
        outcome: CallOutcome,
        /// The targets tried, in order.
        tried: Vec<String>,
    },
}

impl fmt::Display for BotEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.call_id.as_str();
        let short = id.get(..8).unwrap_or(id);
        write!(f, "[{short}] ")?;
        match &self.kind {
            BotEventKind::Incoming { targets } => write!(f, "incoming call, {targets} target(s) routed"),
            BotEventKind::Established => f.write_str("answered, call established"),
            BotEventKind::Consulting { target } => write!(f, "calling {target} to consult"),
            BotEventKind::TransferStarted { target, mode } => write!(f, "{} transfer to {target}", mode.as_str()),
            BotEventKind::TransferAccepted { target } => write!(f, "{target} accepted"),
            BotEventKind::TransferCompleted { target } => write!(f, "transfer to {target} completed"),
            BotEventKind::TransferFailed { target, reason } => write!(f, "transfer to {target} failed: {reason}"),
            BotEventKind::MenuChoice { choice } => write!(f, "menu: {choice}"),
            BotEventKind::Apologising => f.write_str("no target left, apologising"),
            BotEventKind::HangingUp => f.write_str("hanging up"),
            BotEventKind::Finished { outcome, tried } => {
                write!(f, "finished: {outcome}; tried [{}]", tried.join(", "))
            }
        }
    }
}
