//! The `call` resource and the complex types it carries.

use serde::{Deserialize, Serialize};

use crate::{
    CallDirection, CallId, CallState, CallTranscriptionState, Extra, IdentitySet, InvitationParticipantInfo,
    MediaState, Modality, ParticipantId, ParticipantInfo, ResultInfo, RoutingType, TenantId, Tone,
};

/// The `call` resource, as created, fetched, and carried in notifications.
///
/// An open type: undeclared properties (`terminationReason`, `replacesContext`,
/// `answeredBy`, ...) are kept in `extra` and written back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    /// `@odata.type`, usually `#microsoft.graph.call`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// The call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<CallId>,
    /// Where Graph posts this call's notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_uri: Option<String>,
    /// Shared by the calls of one conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_chain_id: Option<String>,
    /// Call options (incoming or outgoing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_options: Option<CallOptions>,
    /// How the call was routed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_routes: Option<Vec<CallRoute>>,
    /// The meeting chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_info: Option<ChatInfo>,
    /// Incoming or outgoing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<CallDirection>,
    /// Who the call was for, and who transferred it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming_context: Option<IncomingContext>,
    /// Media configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_config: Option<MediaConfig>,
    /// Media state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_state: Option<CallMediaState>,
    /// The meeting, for meeting calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_info: Option<MeetingInfo>,
    /// The bot's own participant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_participant_id: Option<ParticipantId>,
    /// Modalities asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_modalities: Option<Vec<Modality>>,
    /// Why the call is in its state (transfer failure, end reason, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_info: Option<ResultInfo>,
    /// The caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ParticipantInfo>,
    /// The call's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CallState>,
    /// The subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Who is called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<InvitationParticipantInfo>>,
    /// The tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// The last DTMF tone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tone_info: Option<ToneInfo>,
    /// Transcription state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription: Option<CallTranscriptionInfo>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Call {
    /// The undeclared `terminationReason` (for example `AppTransferred` after a
    /// consultative transfer), if present.
    pub fn termination_reason(&self) -> Option<&str> {
        self.extra.get("terminationReason").and_then(serde_json::Value::as_str)
    }
}

/// `callMediaState`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallMediaState {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Audio state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<MediaState>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `callRoute`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRoute {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Where it ended up.
    #[serde(rename = "final", default, skip_serializing_if = "Option::is_none")]
    pub final_: Option<IdentitySet>,
    /// Where it was first sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<IdentitySet>,
    /// How it was routed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_type: Option<RoutingType>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `callOptions`, `incomingCallOptions` and `outgoingCallOptions` (they
/// declare the same properties; `@odata.type` tells them apart).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallOptions {
    /// `@odata.type`: `#microsoft.graph.incomingCallOptions` or `...outgoingCallOptions`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Hide the bot after escalation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_bot_after_escalation: Option<bool>,
    /// Send content-sharing notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_content_sharing_notification_enabled: Option<bool>,
    /// Send roster deltas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_delta_roster_enabled: Option<bool>,
    /// Send interactive roster updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_interactive_roster_enabled: Option<bool>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

impl CallOptions {
    /// Empty `incomingCallOptions`.
    pub fn incoming() -> Self {
        Self {
            odata_type: Some("#microsoft.graph.incomingCallOptions".into()),
            ..Self::default()
        }
    }

    /// Empty `outgoingCallOptions`.
    pub fn outgoing() -> Self {
        Self {
            odata_type: Some("#microsoft.graph.outgoingCallOptions".into()),
            ..Self::default()
        }
    }
}

/// `chatInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatInfo {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Reply-chain message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_chain_message_id: Option<String>,
    /// Thread id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `toneInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToneInfo {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<i64>,
    /// The tone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tone: Option<Tone>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `callTranscriptionInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallTranscriptionInfo {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// When the state last changed (ISO 8601, kept as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_date_time: Option<String>,
    /// Transcription state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CallTranscriptionState>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `incomingContext`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingContext {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// The participant being observed (policy recording).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_participant_id: Option<String>,
    /// On whose behalf the call came in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<IdentitySet>,
    /// The participant that placed the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_participant_id: Option<String>,
    /// Who transferred the call to the bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferor: Option<IdentitySet>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `mediaInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaInfo {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// A caller-chosen id for caching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Where the audio is (https, WAV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

impl MediaInfo {
    /// Audio at this URI.
    pub fn uri(uri: impl Into<String>) -> Self {
        Self {
            odata_type: Some("#microsoft.graph.mediaInfo".into()),
            uri: Some(uri.into()),
            ..Self::default()
        }
    }
}

/// `serviceHostedMediaConfig`: Graph plays and records the media.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceHostedMediaConfig {
    /// `#microsoft.graph.serviceHostedMediaConfig`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Prompts to fetch ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_fetch_media: Option<Vec<MediaInfo>>,
    /// Properties the schema does not declare (`removeFromDefaultAudioGroup`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `appHostedMediaConfig`: the bot hosts the media (Windows-only in Microsoft's stack).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppHostedMediaConfig {
    /// `#microsoft.graph.appHostedMediaConfig`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// The media configuration blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

polymorphic! {
    /// `mediaConfig`: abstract; service- or app-hosted.
    pub enum MediaConfig {
        /// Service-hosted media.
        ServiceHosted(ServiceHostedMediaConfig) = "#microsoft.graph.serviceHostedMediaConfig",
        /// App-hosted media.
        AppHosted(AppHostedMediaConfig) = "#microsoft.graph.appHostedMediaConfig",
    }
}

impl MediaConfig {
    /// Service-hosted media with nothing prefetched.
    pub fn service_hosted() -> Self {
        Self::ServiceHosted(ServiceHostedMediaConfig {
            odata_type: Some(Self::ODATA_TYPES[0].into()),
            ..ServiceHostedMediaConfig::default()
        })
    }
}

/// `organizerMeetingInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizerMeetingInfo {
    /// `#microsoft.graph.organizerMeetingInfo`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// The organizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer: Option<IdentitySet>,
    /// Properties the schema does not declare (`allowConversationWithoutHost`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `tokenMeetingInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenMeetingInfo {
    /// `#microsoft.graph.tokenMeetingInfo`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// The token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `joinMeetingIdMeetingInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinMeetingIdMeetingInfo {
    /// `#microsoft.graph.joinMeetingIdMeetingInfo`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// The meeting id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_meeting_id: Option<String>,
    /// The passcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode: Option<String>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

polymorphic! {
    /// `meetingInfo`: abstract; organizer, token or join-id.
    pub enum MeetingInfo {
        /// Join by organizer.
        Organizer(OrganizerMeetingInfo) = "#microsoft.graph.organizerMeetingInfo",
        /// Join by token.
        Token(TokenMeetingInfo) = "#microsoft.graph.tokenMeetingInfo",
        /// Join by meeting id and passcode.
        JoinMeetingId(JoinMeetingIdMeetingInfo) = "#microsoft.graph.joinMeetingIdMeetingInfo",
    }
}
