//! Participants: `participantInfo`, `invitationParticipantInfo`, `participant`.

use serde::{Deserialize, Serialize};

use crate::{
    CallId, EndpointType, Extra, IdentitySet, MediaDirection, OnlineMeetingContentSharingDisabledReason,
    OnlineMeetingVideoDisabledReason, ParticipantId, RecordingStatus,
};

/// `participantInfo`: who a participant is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantInfo {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    /// Endpoint type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_type: Option<EndpointType>,
    /// Who it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentitySet>,
    /// Language culture, for example `en-us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_id: Option<String>,
    /// The participant id in the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<ParticipantId>,
    /// Home region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Properties the schema does not declare (`id` in some notifications).
    #[serde(flatten)]
    pub extra: Extra,
}

impl ParticipantInfo {
    /// A participant with this identity.
    pub fn new(identity: IdentitySet) -> Self {
        Self {
            odata_type: Some("#microsoft.graph.participantInfo".into()),
            identity: Some(identity),
            ..Self::default()
        }
    }

    /// Sets the participant id.
    pub fn participant_id(mut self, id: impl Into<ParticipantId>) -> Self {
        self.participant_id = Some(id.into());
        self
    }
}

/// `invitationParticipantInfo`: whom to invite, redirect or transfer to.
///
/// An open type: `endpointType`, `languageId` and `region` travel here in the
/// transfer examples though the schema does not declare them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationParticipantInfo {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Hidden from the roster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    /// Who to invite. The schema marks it non-nullable; notifications may omit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentitySet>,
    /// Participant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<ParticipantId>,
    /// Keep out of the default audio routing group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_from_default_audio_routing_group: Option<bool>,
    /// The call the target is in now; set for a consultative transfer. That
    /// call is dropped once the target joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces_call_id: Option<CallId>,
    /// Undeclared in the schema, sent by the transfer examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_type: Option<EndpointType>,
    /// Undeclared in the schema, sent by the PSTN transfer examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_id: Option<String>,
    /// Undeclared in the schema, sent by the PSTN transfer examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Other properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

impl InvitationParticipantInfo {
    /// An invitation for this identity.
    pub fn new(identity: IdentitySet) -> Self {
        Self {
            odata_type: Some("#microsoft.graph.invitationParticipantInfo".into()),
            identity: Some(identity),
            ..Self::default()
        }
    }
}

/// `mediaStream`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaStream {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<MediaDirection>,
    /// Label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Media type (`modality` in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<crate::Modality>,
    /// Muted by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_muted: Option<bool>,
    /// Source id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `recordingInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingInfo {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Who started recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<IdentitySet>,
    /// Status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_status: Option<RecordingStatus>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `removedState`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedState {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Why the participant was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `onlineMeetingRestricted`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnlineMeetingRestricted {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Why content sharing is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sharing_disabled: Option<OnlineMeetingContentSharingDisabledReason>,
    /// Why video is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_disabled: Option<OnlineMeetingVideoDisabledReason>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `participant` resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    /// `@odata.type`, usually `#microsoft.graph.participant`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// Participant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ParticipantId>,
    /// Who it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<ParticipantInfo>,
    /// In the lobby.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_in_lobby: Option<bool>,
    /// Muted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_muted: Option<bool>,
    /// Media streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_streams: Option<Vec<MediaStream>>,
    /// Opaque metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Recording info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_info: Option<RecordingInfo>,
    /// Why it was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_state: Option<RemovedState>,
    /// Restricted experience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted_experience: Option<OnlineMeetingRestricted>,
    /// Roster sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster_sequence_number: Option<i64>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}
