//! The control API under `/_emulator/...`: the Rust API over HTTP, for tools in other languages.
//!
//! | method | path | body / reply |
//! |---|---|---|
//! | GET | `/_emulator/info` | URLs, issuer, default app |
//! | POST | `/_emulator/apps` | `RegisteredApp` |
//! | POST | `/_emulator/calls` | `IncomingCall` (`"answerTimeoutMs"` optional) -> `{"callId"}` |
//! | GET | `/_emulator/calls/{id}` | `{"state"}` |
//! | POST | `/_emulator/calls/{id}/faults` | `DeliveryFaults`, e.g. `{"omitMessageIds": true, "duplicateLater": {"afterMs": 2000, "states": ["established"]}}` |
//! | GET | `/_emulator/calls/{id}/notifications` | `[SentNotification]` |
//! | POST | `/_emulator/targets` | `{"targetId", "behavior": TargetBehavior}`, e.g. `{"kind": "acceptAfter", "afterMs": 3000}` |
//! | POST | `/_emulator/api-faults` | `ApiFault` |
//! | GET | `/_emulator/requests` | `[RecordedRequest]` |
//! | POST | `/_emulator/clock/advance` | `{"ms"}` |
//! | POST | `/_emulator/keys/rotate` | `{"graceMs"}` (optional) |
//! | POST | `/_emulator/certificates` | `{"tenantId", "appId", "certificatePem"}` |
//! | POST | `/_emulator/federated-identities` | `{"tenantId", "appId", "issuer", "subject", "jwks"}` (`jwks`: the issuer's JWKS or one RSA JWK) |
//! | POST | `/_emulator/tenants` | -> `RegisteredApp` (the default app in a new tenant) |
//! | POST | `/_emulator/calls/{id}/tones` | `{"tones": ["tone1", ...]}` -> `{"delivered"}` |
//! | POST | `/_emulator/calls/{id}/recording` | `RecordingBehavior` |
//! | POST | `/_emulator/calls/{id}/meeting` | escalates the call to a meeting (transfer: 8523) |

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use graph_comms_model::{CallId, Tone};
use serde::Deserialize;
use serde_json::json;

use crate::state::Inner;
use crate::{
    ApiFault, DEFAULT_KEY_GRACE, DeliveryFaults, Emulator, IncomingCall, RecordingBehavior, RegisteredApp,
    TargetBehavior,
};

type Shared = State<Arc<Inner>>;

pub(crate) fn router() -> axum::Router<Arc<Inner>> {
    axum::Router::new()
        .route("/_emulator/info", get(info))
        .route("/_emulator/apps", post(register_app))
        .route("/_emulator/calls", post(place_call))
        .route("/_emulator/calls/{id}", get(call_state))
        .route("/_emulator/calls/{id}/faults", post(delivery_faults))
        .route("/_emulator/calls/{id}/notifications", get(notifications))
        .route("/_emulator/targets", post(script_target))
        .route("/_emulator/api-faults", post(api_fault))
        .route("/_emulator/requests", get(requests))
        .route("/_emulator/clock/advance", post(advance_clock))
        .route("/_emulator/keys/rotate", post(rotate_keys))
        .route("/_emulator/tenants", post(add_tenant))
        .route("/_emulator/certificates", post(register_certificate))
        .route("/_emulator/federated-identities", post(register_federated_identity))
        .route("/_emulator/calls/{id}/tones", post(caller_tones))
        .route("/_emulator/calls/{id}/recording", post(script_recording))
        .route("/_emulator/calls/{id}/meeting", post(escalate))
}

fn emulator(inner: Arc<Inner>) -> Emulator {
    Emulator::from_inner(inner)
}

async fn info(State(inner): Shared) -> Response {
    let emu = emulator(inner);
    Json(json!({
        "baseUrl": emu.base_url(),
        "graphBaseUrl": emu.graph_base_url(),
        "loginBaseUrl": emu.login_base_url(),
        "openidConfigurationUrl": emu.openid_configuration_url(),
        "issuer": emu.issuer(),
        "defaultApp": emu.default_app(),
    }))
    .into_response()
}

async fn register_app(State(inner): Shared, Json(app): Json<RegisteredApp>) -> StatusCode {
    emulator(inner).register_app(app);
    StatusCode::NO_CONTENT
}

async fn place_call(State(inner): Shared, Json(call): Json<IncomingCall>) -> Response {
    match emulator(inner).place_incoming_call(call).await {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "callId": id }))).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

async fn call_state(State(inner): Shared, Path(id): Path<String>) -> Response {
    match emulator(inner).call_state(&CallId::new(id)) {
        Some(state) => Json(json!({ "state": state })).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delivery_faults(
    State(inner): Shared,
    Path(id): Path<String>,
    Json(faults): Json<DeliveryFaults>,
) -> StatusCode {
    emulator(inner).set_delivery_faults(&CallId::new(id), faults);
    StatusCode::NO_CONTENT
}

async fn notifications(State(inner): Shared, Path(id): Path<String>) -> Response {
    Json(emulator(inner).notifications(&CallId::new(id))).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScriptTarget {
    target_id: String,
    behavior: TargetBehavior,
}

async fn script_target(State(inner): Shared, Json(body): Json<ScriptTarget>) -> StatusCode {
    emulator(inner).script_target(&body.target_id, body.behavior);
    StatusCode::NO_CONTENT
}

async fn api_fault(State(inner): Shared, Json(fault): Json<ApiFault>) -> StatusCode {
    emulator(inner).inject_api_fault(fault);
    StatusCode::NO_CONTENT
}

async fn requests(State(inner): Shared) -> Response {
    Json(emulator(inner).requests()).into_response()
}

#[derive(Deserialize)]
struct Advance {
    ms: u64,
}

async fn advance_clock(State(inner): Shared, Json(body): Json<Advance>) -> StatusCode {
    emulator(inner).advance_clock(Duration::from_millis(body.ms));
    StatusCode::NO_CONTENT
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Rotate {
    grace_ms: Option<u64>,
}

async fn rotate_keys(State(inner): Shared, body: Option<Json<Rotate>>) -> StatusCode {
    let grace = body
        .and_then(|b| b.0.grace_ms)
        .map_or(DEFAULT_KEY_GRACE, Duration::from_millis);
    let emu = emulator(inner);
    // Key generation is CPU work; keep it off the async workers.
    let _ = tokio::task::spawn_blocking(move || emu.rotate_signing_key_with_grace(grace)).await;
    StatusCode::NO_CONTENT
}

async fn add_tenant(State(inner): Shared) -> Response {
    (StatusCode::CREATED, Json(emulator(inner).add_tenant())).into_response()
}

#[derive(Deserialize)]
struct Tones {
    tones: Vec<Tone>,
}

async fn caller_tones(State(inner): Shared, Path(id): Path<String>, Json(body): Json<Tones>) -> Response {
    match emulator(inner).send_tones(&CallId::new(id), &body.tones) {
        Ok(delivered) => Json(json!({ "delivered": delivered })).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

async fn script_recording(
    State(inner): Shared,
    Path(id): Path<String>,
    Json(behavior): Json<RecordingBehavior>,
) -> StatusCode {
    emulator(inner).script_recording(&CallId::new(id), behavior);
    StatusCode::NO_CONTENT
}

async fn escalate(State(inner): Shared, Path(id): Path<String>) -> StatusCode {
    match emulator(inner).escalate_to_meeting(&CallId::new(id)) {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::NOT_FOUND,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Certificate {
    tenant_id: graph_comms_model::TenantId,
    app_id: graph_comms_model::AppId,
    certificate_pem: String,
}

async fn register_certificate(State(inner): Shared, Json(body): Json<Certificate>) -> Response {
    let app = RegisteredApp {
        tenant_id: body.tenant_id,
        app_id: body.app_id,
        client_secret: String::new(),
    };
    match emulator(inner).register_certificate(&app, &body.certificate_pem) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FederatedIdentity {
    tenant_id: graph_comms_model::TenantId,
    app_id: graph_comms_model::AppId,
    issuer: String,
    subject: String,
    jwks: serde_json::Value,
}

async fn register_federated_identity(State(inner): Shared, Json(body): Json<FederatedIdentity>) -> Response {
    let app = RegisteredApp {
        tenant_id: body.tenant_id,
        app_id: body.app_id,
        client_secret: String::new(),
    };
    match emulator(inner).register_federated_identity(&app, &body.issuer, &body.subject, &body.jwks) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e.to_string() }))).into_response(),
    }
}
