#![doc = include_str!("../README.md")]

#[macro_use]
mod enums;
#[macro_use]
mod polymorphic;

mod call;
mod error;
mod failure;
mod identity;
mod ids;
mod notification;
mod operation;
mod outgoing;
mod parse;
mod participant;
mod phone;
mod requests;
mod result_info;

pub use call::{
    AppHostedMediaConfig, Call, CallMediaState, CallOptions, CallRoute, CallTranscriptionInfo, ChatInfo,
    IncomingContext, JoinMeetingIdMeetingInfo, MediaConfig, MediaInfo, MeetingInfo, OrganizerMeetingInfo,
    ServiceHostedMediaConfig, TokenMeetingInfo, ToneInfo,
};
pub use enums::{
    CallDirection, CallState, CallTranscriptionState, ChangeType, EndpointType, MediaDirection, MediaState, Modality,
    OnlineMeetingContentSharingDisabledReason, OnlineMeetingVideoDisabledReason, OperationStatus, RecordingStatus,
    RejectReason, RoutingType, ScreenSharingRole, SendDtmfCompletionReason, Tone,
};
pub use error::{GraphError, GraphErrorBody, InnerError};
pub use failure::FailureCause;
pub use identity::{Identity, IdentitySet};
pub use ids::{
    AppId, CallId, OperationId, ParticipantId, ResourceTarget, ResourceUrl, ResourceUrlError, TenantId, UserId,
};
pub use notification::{CommsNotification, CommsNotifications, ResourceData};
pub use operation::{CommsOperation, MediaPrompt, OperationKind, Prompt};
pub use outgoing::CreateCallBuilder;
pub use parse::{ParseError, ParseErrorCategory, from_slice, from_str};
pub use participant::{
    InvitationParticipantInfo, MediaStream, OnlineMeetingRestricted, Participant, ParticipantInfo, RecordingInfo,
    RemovedState,
};
pub use phone::{PhoneNumber, PhoneNumberError};
pub use requests::{
    AddLargeGalleryViewRequest, AnswerRequest, CancelMediaProcessingRequest, ChangeScreenSharingRoleRequest,
    ClientContextRequest, CreateCallRequest, InviteParticipantsRequest, MuteRequest, PlayPromptRequest,
    RecordResponseRequest, RedirectRequest, RejectRequest, SendDtmfTonesRequest, StartHoldMusicRequest,
    StopHoldMusicRequest, SubscribeToToneRequest, TransferBuilder, TransferKind, TransferRequest, UnmuteRequest,
    UpdateRecordingStatusRequest,
};
pub use result_info::{ResultInfo, subcodes};

/// Properties a type does not declare, kept in order to write them back.
pub type Extra = serde_json::Map<String, serde_json::Value>;
