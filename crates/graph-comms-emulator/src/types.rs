//! The emulator's public data types: configuration, scripting and inspection.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use graph_comms_model::{AppId, CallId, CallState, IdentitySet, ParticipantInfo, TenantId};
use serde::{Deserialize, Serialize};

/// How an emulator runs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `iss` of notification JWTs and of the OpenID configuration.
    pub issuer: String,
    /// Lifetime of access tokens from the token endpoint (real time).
    pub access_token_lifetime: Duration,
    /// Lifetime of a notification JWT; one token is reused per (app, tenant) until near its expiry.
    pub notification_token_lifetime: Duration,
    /// A call without keepAlive for this long (on the emulator clock) ends with 408/8537.
    pub keep_alive_timeout: Duration,
    /// Pause before each scripted notification.
    pub step_delay: Duration,
    /// Timeout of one notification POST.
    pub delivery_timeout: Duration,
    /// Most attempts per notification POST when the receiver answers non-2xx or times out: a cap on
    /// top of [`EmulatorConfig::delivery_retry_window`] (default 20, which the window reaches first).
    pub delivery_attempts: u32,
    /// The wait before the first redelivery of a refused notification; it doubles per attempt up to
    /// [`EmulatorConfig::delivery_retry_max_interval`] (default 1 s).
    pub delivery_retry_initial: Duration,
    /// The longest wait between two attempts of a notification (default 10 s).
    pub delivery_retry_max_interval: Duration,
    /// How long after its first attempt a notification is redelivered at most (default 60 s). A
    /// wait that would end past the window is shortened to end at it: the last attempt is made
    /// when the window closes, then the notification is given up.
    pub delivery_retry_window: Duration,
    /// Send `X-Microsoft-Skype-Message-ID` and `X-Microsoft-Skype-Chain-ID` on every notification
    /// POST, as Graph does (default true). [`DeliveryFaults::omit_message_ids`] turns them off per call.
    pub message_ids: bool,
    /// An incoming call nobody answers, rejects or redirects within this time ends with `deleted`
    /// `terminated` and 408/1106, as Graph ends it after 15 s (the default). Measured on the
    /// emulator clock: it runs in real time, and [`crate::Emulator::advance_clock`] moves it on.
    /// [`IncomingCall::answer_timeout`] overrides it per call.
    pub incoming_answer_timeout: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            issuer: "https://api.botframework.com".into(),
            access_token_lifetime: Duration::from_secs(3600),
            notification_token_lifetime: Duration::from_secs(3600),
            keep_alive_timeout: Duration::from_secs(45 * 60),
            step_delay: Duration::from_millis(2),
            delivery_timeout: Duration::from_secs(5),
            delivery_attempts: 20,
            delivery_retry_initial: Duration::from_secs(1),
            delivery_retry_max_interval: Duration::from_secs(10),
            delivery_retry_window: Duration::from_secs(60),
            message_ids: true,
            incoming_answer_timeout: Duration::from_secs(15),
        }
    }
}

/// An app registration: the client-credentials identity a bot uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredApp {
    /// The tenant the app is registered in.
    pub tenant_id: TenantId,
    /// The app (client) id; `aud` of its notification JWTs.
    pub app_id: AppId,
    /// The client secret the token endpoint checks.
    pub client_secret: String,
}

impl RegisteredApp {
    /// The same app registered (consented) in another tenant, with its own secret:
    /// a multi-tenant bot's identity there.
    pub fn in_tenant(&self, tenant: impl Into<TenantId>) -> Self {
        Self {
            tenant_id: tenant.into(),
            app_id: self.app_id.clone(),
            client_secret: format!("emu~{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// An app with random tenant id, app id and secret.
    pub fn random() -> Self {
        Self {
            tenant_id: TenantId::new(uuid::Uuid::new_v4().to_string()),
            app_id: AppId::new(uuid::Uuid::new_v4().to_string()),
            client_secret: format!("emu~{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

/// Who places an incoming call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Caller {
    /// A Teams user.
    User {
        /// The user's object id.
        id: String,
        /// The user's display name.
        #[serde(rename = "displayName")]
        display_name: String,
    },
    /// A phone number (E.164).
    Phone(String),
}

/// An incoming call to offer a bot; build one with [`IncomingCall::from_user`] or [`IncomingCall::from_phone`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingCall {
    /// The bot the call is for.
    pub app_id: AppId,
    /// The tenant of the call.
    pub tenant_id: TenantId,
    /// The bot's global calling webhook: where the `created`/`incoming` notification goes.
    pub callback_uri: String,
    /// The caller.
    pub from: Caller,
    /// The called identity (bot or application instance); defaults to the bot's application identity.
    #[serde(default)]
    pub to: Option<IdentitySet>,
    /// The other participants when this is a group call (a transfer then needs `transferee`).
    #[serde(default)]
    pub group: Option<Vec<ParticipantInfo>>,
    /// Delivery faults for this call's notifications.
    #[serde(default)]
    pub faults: DeliveryFaults,
    /// How long the call waits for an answer (or a reject or redirect) before Graph ends it with
    /// 408/1106; `None` takes [`EmulatorConfig::incoming_answer_timeout`]. JSON: `answerTimeoutMs`.
    #[serde(default, rename = "answerTimeoutMs", with = "option_duration_ms")]
    pub answer_timeout: Option<Duration>,
}

impl IncomingCall {
    fn new(app: &RegisteredApp, callback_uri: String, from: Caller) -> Self {
        Self {
            app_id: app.app_id.clone(),
            tenant_id: app.tenant_id.clone(),
            callback_uri,
            from,
            to: None,
            group: None,
            faults: DeliveryFaults::default(),
            answer_timeout: None,
        }
    }

    /// A call from a Teams user to `app`'s bot.
    pub fn from_user(app: &RegisteredApp, callback_uri: impl Into<String>, user_id: &str, display_name: &str) -> Self {
        Self::new(
            app,
            callback_uri.into(),
            Caller::User {
                id: user_id.to_owned(),
                display_name: display_name.to_owned(),
            },
        )
    }

    /// A call from a phone number to `app`'s bot.
    pub fn from_phone(app: &RegisteredApp, callback_uri: impl Into<String>, number: &str) -> Self {
        Self::new(app, callback_uri.into(), Caller::Phone(number.to_owned()))
    }

    /// Sets the called identity.
    #[must_use]
    pub fn to(mut self, called: IdentitySet) -> Self {
        self.to = Some(called);
        self
    }

    /// Makes it a group call with these other participants.
    #[must_use]
    pub fn group(mut self, others: Vec<ParticipantInfo>) -> Self {
        self.group = Some(others);
        self
    }

    /// Sets the delivery faults.
    #[must_use]
    pub fn faults(mut self, faults: DeliveryFaults) -> Self {
        self.faults = faults;
        self
    }

    /// Ends the call with 408/1106 if it is still `incoming` after `timeout`, instead of after
    /// [`EmulatorConfig::incoming_answer_timeout`].
    #[must_use]
    pub fn answer_timeout(mut self, timeout: Duration) -> Self {
        self.answer_timeout = Some(timeout);
        self
    }
}

/// How a transfer (or outgoing call) target responds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[non_exhaustive]
pub enum TargetBehavior {
    /// Picks up: the transfer completes.
    Accept,
    /// Rings for `after` (the call stays `transferring`), then picks up: the transfer completes
    /// like [`TargetBehavior::Accept`]. An outgoing call to it is `establishing` for that time.
    AcceptAfter {
        /// How long it rings before it answers.
        #[serde(rename = "afterMs", with = "duration_ms")]
        after: Duration,
    },
    /// Declines: the transfer fails with 500/7000 and the call is back to `established`.
    Decline,
    /// Busy: fails like `Decline`.
    Busy,
    /// Rings without answer (the call is `transferring` meanwhile), then fails like `Decline`.
    NoAnswer {
        /// How long it rings before the failure notification.
        #[serde(rename = "afterMs", with = "duration_ms")]
        after: Duration,
    },
    /// Fails like `Decline` but with the consultative-transfer subcode 7700.
    ConsultativeFails,
}

/// How a call's next `recordResponse` ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[non_exhaustive]
pub enum RecordingBehavior {
    /// The caller speaks: `Completed` with 200/0, `recordingLocation` and `recordingAccessToken`.
    #[default]
    Complete,
    /// The recording fails: `Failed` with 500/0 (the emulator's choice; Graph documents no code).
    Fail,
    /// Stays `Running` until cancelMediaProcessing: then `Failed` with 400/8508 and
    /// `completionReason: operationCanceled`, as the cancelMediaProcessing example shows.
    Pending,
}

/// Faults applied to one call's notification deliveries.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeliveryFaults {
    /// Swap adjacent pairs: `transferAccepted` before `transferring`, `established` before `establishing`.
    pub reorder: bool,
    /// POST every notification twice.
    pub duplicate: bool,
    /// Extra delay before each POST.
    #[serde(rename = "delayMs", with = "duration_ms")]
    pub delay: Duration,
    /// Send the notifications of one scripted action in one POST (several `value` items).
    pub batch: bool,
    /// Drop (never deliver) the first notification whose `resourceData.state` is each of these.
    pub drop: Vec<CallState>,
    /// Send no `X-Microsoft-Skype-Message-ID` or `X-Microsoft-Skype-Chain-ID` header on this
    /// call's notifications: receivers must not need them.
    pub omit_message_ids: bool,
    /// Deliver a copy of some notifications again later, as Graph sometimes does.
    pub duplicate_later: Option<DuplicateLater>,
}

/// A late copy of a call's notifications: [`DeliveryFaults::duplicate_later`].
///
/// Every POST body with at least one item whose `resourceData.state` is in `states` (every body
/// when `states` is empty) is POSTed once more `after` its first delivery, with the same
/// `X-Microsoft-Skype-Message-ID`. The copy goes on its own task: it does not hold up the call's
/// later notifications (it usually lands after them), it is redelivered like any notification
/// when refused, it is logged in [`crate::Emulator::notifications`], and it is sent even when the
/// call has ended meanwhile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateLater {
    /// How long after the first delivery the copy is sent.
    #[serde(rename = "afterMs", with = "duration_ms")]
    pub after: Duration,
    /// The states whose notifications are copied; empty copies every notification.
    #[serde(default)]
    pub states: Vec<CallState>,
}

impl DuplicateLater {
    /// A copy of every notification, `after` later.
    pub fn every(after: Duration) -> Self {
        Self {
            after,
            states: Vec::new(),
        }
    }

    /// A copy of the notifications in these states, `after` later.
    pub fn of(after: Duration, states: impl IntoIterator<Item = CallState>) -> Self {
        Self {
            after,
            states: states.into_iter().collect(),
        }
    }
}

/// A fault for the next `count` requests to `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiFault {
    /// Which requests it hits.
    pub endpoint: Endpoint,
    /// What happens to them.
    pub kind: FaultKind,
    /// How many matching requests it hits.
    pub count: u32,
}

/// The endpoints the emulator serves, for faults and the request log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /{tenant}/oauth2/v2.0/token`.
    Token,
    /// `POST /communications/calls`.
    CreateCall,
    /// `GET /communications/calls/{id}`.
    GetCall,
    /// `POST .../answer`.
    Answer,
    /// `POST .../reject`.
    Reject,
    /// `POST .../redirect`.
    Redirect,
    /// `POST .../transfer`.
    Transfer,
    /// `POST .../keepAlive`.
    KeepAlive,
    /// `DELETE /communications/calls/{id}`.
    HangUp,
    /// `POST .../playPrompt`.
    PlayPrompt,
    /// `POST .../cancelMediaProcessing`.
    CancelMediaProcessing,
    /// `POST .../participants/invite`.
    Invite,
    /// `POST .../mute`.
    Mute,
    /// `POST .../unmute`.
    Unmute,
    /// `POST .../recordResponse`.
    RecordResponse,
    /// `POST .../subscribeToTone`.
    SubscribeToTone,
    /// `POST .../sendDtmfTones`.
    SendDtmfTones,
    /// `POST .../updateRecordingStatus`.
    UpdateRecordingStatus,
    /// `POST .../changeScreenSharingRole`.
    ChangeScreenSharingRole,
    /// `POST .../addLargeGalleryView`.
    AddLargeGalleryView,
    /// `POST .../participants/{id}/mute`.
    MuteParticipant,
    /// `POST .../participants/{id}/startHoldMusic`.
    StartHoldMusic,
    /// `POST .../participants/{id}/stopHoldMusic`.
    StopHoldMusic,
    /// `DELETE .../participants/{id}`.
    DeleteParticipant,
    /// Matches every endpoint (as a fault target).
    Any,
    /// `GET /v1/.well-known/OpenIdConfiguration`.
    OpenIdConfiguration,
    /// `GET` of the JWKS.
    Jwks,
    /// Any other path (unknown routes).
    Other,
}

/// What an [`ApiFault`] does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum FaultKind {
    /// 429 with `Retry-After` exactly as given ("0.2", or an HTTP date); the request is not processed.
    TooManyRequests {
        /// The `Retry-After` header value.
        #[serde(rename = "retryAfter")]
        retry_after: String,
    },
    /// This status with an error body; the request is not processed.
    Status(u16),
    /// The request is processed; the response is sent after this delay.
    Delay(#[serde(with = "duration_ms")] Duration),
    /// The request waits this long, then is processed and answered: what
    /// happens meanwhile (a hang-up, another notification) happens first.
    Hold(#[serde(with = "duration_ms")] Duration),
}

/// One HTTP request the emulator received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path (without query).
    pub path: String,
    /// Which endpoint it hit.
    pub endpoint: Endpoint,
    /// The call in the path, if any.
    pub call_id: Option<CallId>,
    /// The JSON body, if it had one (token requests are not recorded, to keep secrets out).
    pub body: Option<serde_json::Value>,
    /// The caller's `client-request-id` header.
    pub client_request_id: Option<String>,
    /// The caller's `scenario-id` header.
    #[serde(default)]
    pub scenario_id: Option<String>,
    /// The status returned.
    pub status: u16,
    /// The tenant of the bearer token (calls API) or in the URL (token endpoint).
    #[serde(default)]
    pub tenant_id: Option<TenantId>,
}

/// One notification delivery attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentNotification {
    /// The POSTed body (`commsNotifications`).
    pub body: serde_json::Value,
    /// The `Authorization` header sent (`Bearer <jwt>`).
    pub authorization: String,
    /// 1 for the first attempt of a POST, 2 for its first retry, ...
    pub attempt: u32,
    /// The receiver's status; `None` on timeout or connection error.
    pub response_status: Option<u16>,
    /// Where it was POSTed.
    pub url: String,
    /// The `X-Microsoft-Skype-Message-ID` sent: one per message, the same on its retries and
    /// copies; `None` when message ids are off.
    #[serde(default)]
    pub message_id: Option<String>,
}

/// Durations as integer milliseconds in JSON.
pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Optional durations as integer milliseconds (or null) in JSON.
pub(crate) mod option_duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}
