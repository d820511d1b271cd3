//! Request bodies for the call actions, and builders for transfer bodies.

use serde::{Deserialize, Serialize};

use crate::{
    CallId, CallOptions, EndpointType, Extra, Identity, IdentitySet, InvitationParticipantInfo, MediaConfig, Modality,
    ParticipantInfo, PhoneNumber, Prompt, RecordingStatus, RejectReason, ScreenSharingRole, TenantId, Tone,
};

/// Create call: `POST /communications/calls` takes a [`crate::Call`].
pub type CreateCallRequest = crate::Call;

/// `POST /communications/calls/{id}/answer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerRequest {
    /// Where this call's notifications go (https).
    pub callback_uri: String,
    /// Media configuration.
    pub media_config: MediaConfig,
    /// Modalities to accept; required in practice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_modalities: Option<Vec<Modality>>,
    /// Participant capacity (policy-based recording).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_capacity: Option<i32>,
    /// `incomingCallOptions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_options: Option<CallOptions>,
    /// Properties beyond the schema's parameters.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AnswerRequest {
    /// Answer with audio and service-hosted media.
    pub fn audio(callback_uri: impl Into<String>) -> Self {
        Self {
            callback_uri: callback_uri.into(),
            media_config: MediaConfig::service_hosted(),
            accepted_modalities: Some(vec![Modality::Audio]),
            participant_capacity: None,
            call_options: None,
            extra: Extra::new(),
        }
    }
}

/// `POST /communications/calls/{id}/reject`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectRequest {
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    /// Where notifications go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_uri: Option<String>,
    /// Properties beyond the schema's parameters.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /communications/calls/{id}/redirect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectRequest {
    /// Where to send the call (more than one rings them all).
    pub targets: Vec<InvitationParticipantInfo>,
    /// Seconds to ring, 15 to 90.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
    /// Where notifications go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_uri: Option<String>,
    /// Properties beyond the schema's parameters (`routingPolicies` in the docs).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /communications/calls/{id}/transfer`.
///
/// Build one with [`TransferRequest::to_user`], [`TransferRequest::to_phone`]
/// or [`TransferRequest::to_application_instance`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferRequest {
    /// Who takes the call.
    pub transfer_target: InvitationParticipantInfo,
    /// Who is transferred; needed only when transferring out of a group call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferee: Option<ParticipantInfo>,
    /// Undeclared in the schema; the PSTN transfer examples send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// Other properties beyond the schema's parameters.
    #[serde(flatten)]
    pub extra: Extra,
}

impl TransferRequest {
    /// A transfer to a Teams user, optionally in another tenant.
    pub fn to_user(user_id: impl Into<String>, tenant: Option<TenantId>) -> TransferBuilder {
        let mut user = Identity::with_id(user_id);
        user.tenant_id = tenant;
        TransferBuilder::new(IdentitySet::user(user))
    }

    /// A transfer to a phone number (the call must come from an application
    /// instance with a number).
    pub fn to_phone(number: &PhoneNumber) -> TransferBuilder {
        TransferBuilder::new(IdentitySet::phone(Identity::with_id(number.as_str())))
    }

    /// A transfer to an application instance (a resource account).
    pub fn to_application_instance(id: impl Into<String>, tenant: Option<TenantId>) -> TransferBuilder {
        let mut instance = Identity::with_id(id);
        instance.tenant_id = tenant;
        TransferBuilder::new(IdentitySet::application_instance(instance))
    }

    /// The kind of transfer this body asks for.
    pub fn kind(&self) -> TransferKind {
        let to_phone = self
            .transfer_target
            .identity
            .as_ref()
            .is_some_and(|i| i.phone.is_some());
        match (&self.transfer_target.replaces_call_id, &self.transferee, to_phone) {
            (_, Some(_), _) => TransferKind::FromGroupCall,
            (Some(_), None, _) => TransferKind::Consultative,
            (None, None, true) => TransferKind::Pstn,
            (None, None, false) => TransferKind::Blind,
        }
    }
}

/// The kinds of transfer Graph supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransferKind {
    /// Straight to the target; the bot does not talk to it first.
    Blind,
    /// Replaces a call the bot already has with the target (`replacesCallId`).
    Consultative,
    /// Blind, to a phone number.
    Pstn,
    /// Out of a group call (`transferee` is set).
    FromGroupCall,
}

/// Builds a [`TransferRequest`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TransferBuilder {
    request: TransferRequest,
}

impl TransferBuilder {
    fn new(identity: IdentitySet) -> Self {
        let mut target = InvitationParticipantInfo::new(identity);
        target.endpoint_type = Some(EndpointType::Default);
        Self {
            request: TransferRequest {
                transfer_target: target,
                transferee: None,
                client_context: None,
                extra: Extra::new(),
            },
        }
    }

    /// Makes it consultative: the target's current call with the bot
    /// (`replacesCallId`) is dropped once the target joins.
    pub fn replaces_call(mut self, call: impl Into<CallId>) -> Self {
        self.request.transfer_target.replaces_call_id = Some(call.into());
        self
    }

    /// Transfers this participant out of a group call.
    pub fn transferee(mut self, transferee: ParticipantInfo) -> Self {
        self.request.transferee = Some(transferee);
        self
    }

    /// Sets the target's display name.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        if let Some(identity) = self.request.transfer_target.identity.as_mut() {
            let slot = [
                &mut identity.user,
                &mut identity.phone,
                &mut identity.application_instance,
            ]
            .into_iter()
            .find_map(Option::as_mut);
            if let Some(id) = slot {
                id.display_name = Some(name.into());
            }
        }
        self
    }

    /// `languageId` on the target (PSTN), for example `en-us`.
    pub fn language_id(mut self, language: impl Into<String>) -> Self {
        self.request.transfer_target.language_id = Some(language.into());
        self
    }

    /// `region` on the target (PSTN), for example `amer`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.request.transfer_target.region = Some(region.into());
        self
    }

    /// Top-level `clientContext`.
    pub fn client_context(mut self, context: impl Into<String>) -> Self {
        self.request.client_context = Some(context.into());
        self
    }

    /// The finished body.
    pub fn build(self) -> TransferRequest {
        self.request
    }
}

/// `POST /communications/calls/{id}/playPrompt`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlayPromptRequest {
    /// What to play.
    pub prompts: Vec<Prompt>,
    /// Echoed back in the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// Properties beyond the schema's parameters.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A request body that carries only `clientContext`: cancelMediaProcessing,
/// mute, unmute, subscribeToTone, addLargeGalleryView, and a participant's
/// mute and stopHoldMusic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientContextRequest {
    /// Echoed back in the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// Properties beyond the schema's parameters.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /communications/calls/{id}/cancelMediaProcessing`.
pub type CancelMediaProcessingRequest = ClientContextRequest;
/// `POST /communications/calls/{id}/mute`.
pub type MuteRequest = ClientContextRequest;
/// `POST /communications/calls/{id}/unmute`.
pub type UnmuteRequest = ClientContextRequest;
/// `POST /communications/calls/{id}/subscribeToTone`.
pub type SubscribeToToneRequest = ClientContextRequest;

/// `POST /communications/calls/{id}/updateRecordingStatus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRecordingStatusRequest {
    /// The new status.
    pub status: RecordingStatus,
    /// Echoed back in the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// Properties beyond the schema's parameters.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /communications/calls/{id}/sendDtmfTones`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendDtmfTonesRequest {
    /// Tones to send.
    pub tones: Vec<Tone>,
    /// Pause between tones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_between_tones_ms: Option<i32>,
    /// Echoed back in the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// Properties beyond the schema's parameters.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /communications/calls/{id}/participants/invite`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteParticipantsRequest {
    /// Who to invite. With `replacesCallId`, only the first is used.
    pub participants: Vec<InvitationParticipantInfo>,
    /// Echoed back in the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// Properties beyond the schema's parameters.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /communications/calls/{id}/recordResponse`: play prompts, then record
/// the caller's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordResponseRequest {
    /// Prompts to play before recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<Vec<Prompt>>,
    /// Whether the caller may interrupt the prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barge_in_allowed: Option<bool>,
    /// Seconds of silence allowed before the caller starts speaking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_silence_timeout_in_seconds: Option<i32>,
    /// Seconds of silence that end the recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_silence_timeout_in_seconds: Option<i32>,
    /// Longest recording, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_record_duration_in_seconds: Option<i32>,
    /// Whether to beep before recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play_beep: Option<bool>,
    /// DTMF characters that stop the recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_tones: Option<Vec<String>>,
    /// Echoed back in the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// Properties beyond the schema's parameters.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /communications/calls/{id}/changeScreenSharingRole`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeScreenSharingRoleRequest {
    /// The bot's new role.
    pub role: ScreenSharingRole,
    /// Properties beyond the schema's parameters.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /communications/calls/{id}/participants/{id}/startHoldMusic`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartHoldMusicRequest {
    /// Audio to play instead of the default hold music.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_prompt: Option<Prompt>,
    /// Echoed back in the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// Properties beyond the schema's parameters.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /communications/calls/{id}/participants/{id}/stopHoldMusic`.
pub type StopHoldMusicRequest = ClientContextRequest;
/// `POST /communications/calls/{id}/addLargeGalleryView`.
pub type AddLargeGalleryViewRequest = ClientContextRequest;
