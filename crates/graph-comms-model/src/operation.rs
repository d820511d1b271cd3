//! `commsOperation` and its subtypes, and `prompt`.

use serde::{Deserialize, Serialize};

use crate::{
    Extra, InvitationParticipantInfo, MediaInfo, OperationId, OperationStatus, ResultInfo, SendDtmfCompletionReason,
};

/// `commsOperation` and every subtype, as one type told apart by `@odata.type`.
///
/// The subtypes add at most a field or two, so they share one struct; see
/// [`CommsOperation::kind`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommsOperation {
    /// `@odata.type`, for example `#microsoft.graph.playPromptOperation`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// The operation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<OperationId>,
    /// The caller's context string (at most 256 characters), echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// The result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_info: Option<ResultInfo>,
    /// The status. `Completed`/`Failed` in a response means no notification follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OperationStatus>,
    /// `inviteParticipantsOperation.participants`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<InvitationParticipantInfo>>,
    /// `recordOperation.recordingAccessToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_access_token: Option<String>,
    /// `recordOperation.recordingLocation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_location: Option<String>,
    /// `sendDtmfTonesOperation.completionReason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_reason: Option<SendDtmfCompletionReason>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Which `commsOperation` subtype an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OperationKind {
    /// `addLargeGalleryViewOperation`.
    AddLargeGalleryView,
    /// `cancelMediaProcessingOperation`.
    CancelMediaProcessing,
    /// `inviteParticipantsOperation`.
    InviteParticipants,
    /// `muteParticipantOperation`.
    MuteParticipant,
    /// `playPromptOperation`.
    PlayPrompt,
    /// `recordOperation`.
    Record,
    /// `sendDtmfTonesOperation`.
    SendDtmfTones,
    /// `startHoldMusicOperation`.
    StartHoldMusic,
    /// `stopHoldMusicOperation`.
    StopHoldMusic,
    /// `subscribeToToneOperation`.
    SubscribeToTone,
    /// `unmuteParticipantOperation`.
    UnmuteParticipant,
    /// `updateRecordingStatusOperation`.
    UpdateRecordingStatus,
    /// The base type, or no `@odata.type`.
    Generic,
    /// An `@odata.type` this version does not know (the raw value stays in `odata_type`).
    Unknown,
}

impl OperationKind {
    /// Every subtype with its `@odata.type`.
    pub const ODATA_TYPES: &'static [(OperationKind, &'static str)] = &[
        (
            Self::AddLargeGalleryView,
            "#microsoft.graph.addLargeGalleryViewOperation",
        ),
        (
            Self::CancelMediaProcessing,
            "#microsoft.graph.cancelMediaProcessingOperation",
        ),
        (Self::InviteParticipants, "#microsoft.graph.inviteParticipantsOperation"),
        (Self::MuteParticipant, "#microsoft.graph.muteParticipantOperation"),
        (Self::PlayPrompt, "#microsoft.graph.playPromptOperation"),
        (Self::Record, "#microsoft.graph.recordOperation"),
        (Self::SendDtmfTones, "#microsoft.graph.sendDtmfTonesOperation"),
        (Self::StartHoldMusic, "#microsoft.graph.startHoldMusicOperation"),
        (Self::StopHoldMusic, "#microsoft.graph.stopHoldMusicOperation"),
        (Self::SubscribeToTone, "#microsoft.graph.subscribeToToneOperation"),
        (Self::UnmuteParticipant, "#microsoft.graph.unmuteParticipantOperation"),
        (
            Self::UpdateRecordingStatus,
            "#microsoft.graph.updateRecordingStatusOperation",
        ),
        (Self::Generic, "#microsoft.graph.commsOperation"),
    ];

    /// The `@odata.type` of this kind, if it has one.
    pub fn odata_type(self) -> Option<&'static str> {
        Self::ODATA_TYPES.iter().find(|(k, _)| *k == self).map(|(_, t)| *t)
    }
}

impl CommsOperation {
    /// The subtype, from `@odata.type`.
    pub fn kind(&self) -> OperationKind {
        match &self.odata_type {
            None => OperationKind::Generic,
            Some(t) => OperationKind::ODATA_TYPES
                .iter()
                .find(|(_, name)| name.eq_ignore_ascii_case(t))
                .map_or(OperationKind::Unknown, |(kind, _)| *kind),
        }
    }

    /// An operation of this kind with this id and status.
    pub fn new(kind: OperationKind, id: impl Into<OperationId>, status: OperationStatus) -> Self {
        Self {
            odata_type: kind.odata_type().map(str::to_owned),
            id: Some(id.into()),
            status: Some(status),
            ..Self::default()
        }
    }
}

/// `mediaPrompt`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaPrompt {
    /// `#microsoft.graph.mediaPrompt`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// The audio to play.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_info: Option<MediaInfo>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

polymorphic! {
    /// `prompt`: abstract; only `mediaPrompt` exists in v1.0.
    pub enum Prompt {
        /// Play audio from a URI.
        Media(MediaPrompt) = "#microsoft.graph.mediaPrompt",
    }
}

impl Prompt {
    /// A media prompt playing the audio at `uri`.
    pub fn media(uri: impl Into<String>) -> Self {
        Self::Media(MediaPrompt {
            odata_type: Some(Self::ODATA_TYPES[0].into()),
            media_info: Some(MediaInfo::uri(uri)),
            extra: Extra::new(),
        })
    }
}
