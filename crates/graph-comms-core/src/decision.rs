//! What hooks decide and are told: incoming-call decisions, answer options, call ends.

use graph_comms_model::{CallOptions, InvitationParticipantInfo, MediaConfig, Modality, RejectReason, ResultInfo};

/// What to do with an incoming call.
#[derive(Debug, Clone, PartialEq)]
pub enum IncomingDecision {
    /// Answer it (`POST .../answer`).
    Answer(AnswerOptions),
    /// Reject it (`POST .../reject`).
    Reject(RejectReason),
    /// Send it elsewhere (`POST .../redirect`).
    Redirect(Vec<InvitationParticipantInfo>),
    /// Do nothing now (the hook may act later through the context, or let it ring out).
    Ignore,
}

/// How to answer a call.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerOptions {
    /// Media configuration; service-hosted (Graph plays prompts) by default.
    pub media_config: MediaConfig,
    /// Modalities to accept; audio by default.
    pub accepted_modalities: Vec<Modality>,
    /// Where the call's notifications go; defaults to the bot's `callback_uri`, then
    /// to the `callbackUri` the incoming call carried.
    pub callback_uri: Option<String>,
    /// `incomingCallOptions`.
    pub call_options: Option<CallOptions>,
    /// Send `keepAlive` for this call while it is established (default true).
    pub keep_alive: bool,
}

impl Default for AnswerOptions {
    fn default() -> Self {
        Self {
            media_config: MediaConfig::service_hosted(),
            accepted_modalities: vec![Modality::Audio],
            callback_uri: None,
            call_options: None,
            keep_alive: true,
        }
    }
}

impl AnswerOptions {
    /// Audio with service-hosted media: the usual choice for a transfer bot.
    pub fn audio() -> Self {
        Self::default()
    }

    /// Answers with this callback URI instead of the bot's.
    pub fn callback_uri(mut self, uri: impl Into<String>) -> Self {
        self.callback_uri = Some(uri.into());
        self
    }

    /// Turns the automatic `keepAlive` for this call on or off.
    pub fn keep_alive(mut self, enabled: bool) -> Self {
        self.keep_alive = enabled;
        self
    }
}

/// Why and how a call ended, as told to the handler's `CallHandler::on_call_terminated`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallEnd {
    /// The end `resultInfo` (for example 200/5001, 408/8537, 0/7015).
    pub result_info: Option<ResultInfo>,
    /// The undeclared `terminationReason`, when sent (`AppTransferred`).
    pub termination_reason: Option<String>,
    /// How the bot learned about it.
    pub cause: EndCause,
}

impl CallEnd {
    /// An end with these details.
    pub fn new(result_info: Option<ResultInfo>, termination_reason: Option<String>, cause: EndCause) -> Self {
        Self {
            result_info,
            termination_reason,
            cause,
        }
    }
}

/// How the bot learned that a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum EndCause {
    /// A `terminated` or `deleted` notification.
    Notification,
    /// `keepAlive` answered 404: Graph no longer knows the call.
    KeepAliveNotFound,
    /// After a transfer attempt's timeout, looking the call up found it gone
    /// (404, or `terminated`).
    LookedUp,
}

/// What happened to a consultation call, delivered to the call it was placed for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ConsultationEvent {
    /// The consultation call is established.
    Established,
    /// The consultation call ended.
    Ended {
        /// How.
        end: CallEnd,
    },
}
