//! What the checks need of a model struct ([`Model`]: its undeclared
//! properties and its unset fields), implemented for every covered struct.

use graph_comms_model::{
    AnswerRequest, AppHostedMediaConfig, Call, CallMediaState, CallOptions, CallRoute, CallTranscriptionInfo,
    ChangeScreenSharingRoleRequest, ChangeType, ChatInfo, ClientContextRequest, CommsNotification, CommsNotifications,
    CommsOperation, Extra, Identity, IdentitySet, IncomingContext, InvitationParticipantInfo,
    InviteParticipantsRequest, JoinMeetingIdMeetingInfo, MediaConfig, MediaInfo, MediaPrompt, MediaStream,
    OnlineMeetingRestricted, OrganizerMeetingInfo, Participant, ParticipantInfo, PlayPromptRequest,
    RecordResponseRequest, RecordingInfo, RecordingStatus, RedirectRequest, RejectRequest, RemovedState, ResultInfo,
    ScreenSharingRole, SendDtmfTonesRequest, ServiceHostedMediaConfig, StartHoldMusicRequest, TokenMeetingInfo,
    ToneInfo, TransferRequest, UpdateRecordingStatusRequest,
};
use serde::{Serialize, de::DeserializeOwned};

/// Whether a declared field holds a value.
pub(crate) trait IsSet {
    fn is_set(&self) -> bool;
}
impl<T> IsSet for Option<T> {
    fn is_set(&self) -> bool {
        self.is_some()
    }
}
impl<T> IsSet for Vec<T> {
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}
impl IsSet for String {
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}
macro_rules! always_set {
    ($($ty:ty),*) => { $( impl IsSet for $ty { fn is_set(&self) -> bool { true } } )* };
}
always_set!(
    MediaConfig,
    InvitationParticipantInfo,
    RecordingStatus,
    ScreenSharingRole,
    ChangeType
);

/// A model struct: its undeclared properties, and which declared fields are unset.
pub(crate) trait Model: Serialize + DeserializeOwned {
    fn extra(&self) -> &Extra;
    fn unset_fields(&self) -> Vec<&'static str>;
}

/// Implements [`Model`] with an exhaustive destructuring: a field added to
/// the struct does not compile here until it is listed, so every declared
/// field is checked below.
macro_rules! model {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl Model for $ty {
            fn extra(&self) -> &Extra {
                &self.extra
            }
            fn unset_fields(&self) -> Vec<&'static str> {
                let $ty { $($field,)* extra: _ } = self;
                let mut unset = Vec::new();
                $( if !$field.is_set() { unset.push(stringify!($field)); } )*
                unset
            }
        }
    };
}

model!(Call {
    odata_type,
    id,
    callback_uri,
    call_chain_id,
    call_options,
    call_routes,
    chat_info,
    direction,
    incoming_context,
    media_config,
    media_state,
    meeting_info,
    my_participant_id,
    requested_modalities,
    result_info,
    source,
    state,
    subject,
    targets,
    tenant_id,
    tone_info,
    transcription
});
model!(CallMediaState { odata_type, audio });
model!(CallRoute {
    odata_type,
    final_,
    original,
    routing_type
});
model!(CallOptions {
    odata_type,
    hide_bot_after_escalation,
    is_content_sharing_notification_enabled,
    is_delta_roster_enabled,
    is_interactive_roster_enabled
});
model!(ChatInfo {
    odata_type,
    message_id,
    reply_chain_message_id,
    thread_id
});
model!(ToneInfo {
    odata_type,
    sequence_id,
    tone
});
model!(CallTranscriptionInfo {
    odata_type,
    last_modified_date_time,
    state
});
model!(IncomingContext {
    odata_type,
    observed_participant_id,
    on_behalf_of,
    source_participant_id,
    transferor
});
model!(MediaInfo {
    odata_type,
    resource_id,
    uri
});
model!(ServiceHostedMediaConfig {
    odata_type,
    pre_fetch_media
});
model!(AppHostedMediaConfig { odata_type, blob });
model!(OrganizerMeetingInfo { odata_type, organizer });
model!(TokenMeetingInfo { odata_type, token });
model!(JoinMeetingIdMeetingInfo {
    odata_type,
    join_meeting_id,
    passcode
});
model!(Identity {
    odata_type,
    id,
    display_name,
    tenant_id,
    application_type,
    hidden,
    email,
    azure_communication_services_resource_id
});
model!(IdentitySet {
    odata_type,
    application,
    device,
    user,
    application_instance,
    asserted_identity,
    azure_communication_services_user,
    encrypted,
    endpoint_type,
    guest,
    on_premises,
    phone
});
model!(CommsNotifications { odata_type, value });
model!(CommsNotification {
    odata_type,
    change_type,
    resource_url,
    resource,
    resource_data
});
model!(CommsOperation {
    odata_type,
    id,
    client_context,
    result_info,
    status,
    participants,
    recording_access_token,
    recording_location,
    completion_reason
});
model!(MediaPrompt { odata_type, media_info });
model!(ParticipantInfo {
    odata_type,
    country_code,
    endpoint_type,
    identity,
    language_id,
    participant_id,
    region
});
model!(InvitationParticipantInfo {
    odata_type,
    hidden,
    identity,
    participant_id,
    remove_from_default_audio_routing_group,
    replaces_call_id,
    endpoint_type,
    language_id,
    region
});
model!(MediaStream {
    odata_type,
    direction,
    label,
    media_type,
    server_muted,
    source_id
});
model!(RecordingInfo {
    odata_type,
    initiator,
    recording_status
});
model!(RemovedState { odata_type, reason });
model!(OnlineMeetingRestricted {
    odata_type,
    content_sharing_disabled,
    video_disabled
});
model!(Participant {
    odata_type,
    id,
    info,
    is_in_lobby,
    is_muted,
    media_streams,
    metadata,
    recording_info,
    removed_state,
    restricted_experience,
    roster_sequence_number
});
model!(ResultInfo {
    odata_type,
    code,
    subcode,
    message
});
model!(AnswerRequest {
    callback_uri,
    media_config,
    accepted_modalities,
    participant_capacity,
    call_options
});
model!(RejectRequest { reason, callback_uri });
model!(RedirectRequest {
    targets,
    timeout,
    callback_uri
});
model!(TransferRequest {
    transfer_target,
    transferee,
    client_context
});
model!(PlayPromptRequest {
    prompts,
    client_context
});
model!(ClientContextRequest { client_context });
model!(UpdateRecordingStatusRequest { status, client_context });
model!(SendDtmfTonesRequest {
    tones,
    delay_between_tones_ms,
    client_context
});
model!(InviteParticipantsRequest {
    participants,
    client_context
});
model!(RecordResponseRequest {
    prompts,
    barge_in_allowed,
    initial_silence_timeout_in_seconds,
    max_silence_timeout_in_seconds,
    max_record_duration_in_seconds,
    play_beep,
    stop_tones,
    client_context
});
model!(ChangeScreenSharingRoleRequest { role });
model!(StartHoldMusicRequest {
    custom_prompt,
    client_context
});
