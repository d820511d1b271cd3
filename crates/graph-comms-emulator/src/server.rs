//! The HTTP front: routing, request ids, API faults, the request log, tokens and keys.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use graph_comms_model::{CallId, GraphErrorBody, InnerError, TenantId};
use serde_json::{Value, json};

use crate::state::{Grant, Inner, lock};
use crate::{Endpoint, FaultKind, RecordedRequest, calls};

/// Largest request body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Ids of the request being served, for headers and error bodies.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) request_id: String,
    pub(crate) client_request_id: Option<String>,
}

/// A successful Graph response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Option<Value>,
    pub(crate) location: Option<String>,
}

impl Reply {
    pub(crate) fn empty(status: StatusCode) -> Self {
        Self {
            status,
            body: None,
            location: None,
        }
    }
}

/// A Graph error response.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// Graph's answer to a token of one tenant on a call (or target) of another.
    pub(crate) fn tenant_mismatch() -> Self {
        Self::new(StatusCode::FORBIDDEN, "7505", "Request authorization tenant mismatch.")
    }

    pub(crate) fn not_found(call: &CallId) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            format!("Call {call} was not found or has ended."),
        )
    }

    fn from_status(status: StatusCode) -> Self {
        let code = match status.as_u16() {
            400 => "BadRequest",
            401 => "InvalidAuthenticationToken",
            403 => "Forbidden",
            404 => "itemNotFound",
            409 => "Conflict",
            429 => "TooManyRequests",
            500 => "InternalServerError",
            502 => "BadGateway",
            503 => "ServiceUnavailable",
            504 => "GatewayTimeout",
            _ => "UnknownError",
        };
        let message = status.canonical_reason().unwrap_or("Injected fault").to_owned();
        Self::new(status, code, message)
    }
}

/// What a path names.
enum Route {
    Token(TenantId),
    OpenId,
    Jwks,
    Calls {
        endpoint: Endpoint,
        call: Option<CallId>,
        participant: Option<String>,
    },
    Unknown,
}

fn classify(method: &Method, path: &str) -> Route {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is = |s: &str, want: &str| s.eq_ignore_ascii_case(want);
    match segments.as_slice() {
        [tenant, o, v, t] if is(o, "oauth2") && is(v, "v2.0") && is(t, "token") && method == Method::POST => {
            Route::Token(TenantId::new(*tenant))
        }
        [v, w, o] if is(v, "v1") && is(w, ".well-known") && is(o, "OpenIdConfiguration") => Route::OpenId,
        [v, k] if is(v, "v1") && is(k, "keys") => Route::Jwks,
        [v, c, calls, rest @ ..] if is(v, "v1.0") && is(c, "communications") && is(calls, "calls") => {
            let (endpoint, call) = match (rest, method) {
                ([], &Method::POST) => (Some(Endpoint::CreateCall), None),
                ([id], &Method::GET) => (Some(Endpoint::GetCall), Some(*id)),
                ([id], &Method::DELETE) => (Some(Endpoint::HangUp), Some(*id)),
                ([id, p, i], &Method::POST) if is(p, "participants") && is(i, "invite") => {
                    (Some(Endpoint::Invite), Some(*id))
                }
                ([id, p, _], &Method::DELETE) if is(p, "participants") => {
                    (Some(Endpoint::DeleteParticipant), Some(*id))
                }
                ([id, p, _, action], &Method::POST) if is(p, "participants") => {
                    let endpoint = [
                        ("mute", Endpoint::MuteParticipant),
                        ("startHoldMusic", Endpoint::StartHoldMusic),
                        ("stopHoldMusic", Endpoint::StopHoldMusic),
                    ]
                    .into_iter()
                    .find(|(name, _)| is(action, name))
                    .map(|(_, e)| e);
                    (endpoint, Some(*id))
                }
                ([id, action], &Method::POST) => {
                    let endpoint = [
                        ("answer", Endpoint::Answer),
                        ("reject", Endpoint::Reject),
                        ("redirect", Endpoint::Redirect),
                        ("transfer", Endpoint::Transfer),
                        ("keepAlive", Endpoint::KeepAlive),
                        ("playPrompt", Endpoint::PlayPrompt),
                        ("cancelMediaProcessing", Endpoint::CancelMediaProcessing),
                        ("mute", Endpoint::Mute),
                        ("unmute", Endpoint::Unmute),
                        ("recordResponse", Endpoint::RecordResponse),
                        ("subscribeToTone", Endpoint::SubscribeToTone),
                        ("sendDtmfTones", Endpoint::SendDtmfTones),
                        ("updateRecordingStatus", Endpoint::UpdateRecordingStatus),
                        ("changeScreenSharingRole", Endpoint::ChangeScreenSharingRole),
                        ("addLargeGalleryView", Endpoint::AddLargeGalleryView),
                    ]
                    .into_iter()
                    .find(|(name, _)| is(action, name))
                    .map(|(_, e)| e);
                    (endpoint, Some(*id))
                }
                ([id, ..], _) => (None, Some(*id)),
                _ => (None, None),
            };
            let participant = match rest {
                [_, p, pid, ..] if is(p, "participants") && !is(pid, "invite") => Some((*pid).to_owned()),
                _ => None,
            };
            match endpoint {
                Some(endpoint) => Route::Calls {
                    endpoint,
                    call: call.map(CallId::new),
                    participant,
                },
                None => Route::Unknown,
            }
        }
        _ => Route::Unknown,
    }
}

/// Serves every request outside `/_emulator`.
pub(crate) async fn entry(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let ctx = Ctx {
        request_id: uuid::Uuid::new_v4().to_string(),
        client_request_id: parts
            .headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let path = parts.uri.path().to_owned();
    let route = classify(&parts.method, &path);
    let route_tenant = match &route {
        Route::Token(t) => Some(t.clone()),
        _ => None,
    };
    let (endpoint, call_id) = match &route {
        Route::Token(_) => (Endpoint::Token, None),
        Route::OpenId => (Endpoint::OpenIdConfiguration, None),
        Route::Jwks => (Endpoint::Jwks, None),
        Route::Calls { endpoint, call, .. } => (*endpoint, call.clone()),
        Route::Unknown => (Endpoint::Other, None),
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY).await;
    let (json_body, unparsable) = match &bytes {
        Ok(b) if endpoint != Endpoint::Token && !b.is_empty() => match serde_json::from_slice::<Value>(b) {
            Ok(v) => (Some(v), false),
            Err(_) => (None, true),
        },
        Ok(_) => (None, false),
        Err(_) => (None, true),
    };

    let mut delay = None;
    let mut response = match inner.take_fault(endpoint) {
        Some(FaultKind::TooManyRequests { retry_after }) => {
            let mut r = error_response(&ctx, endpoint, &ApiError::from_status(StatusCode::TOO_MANY_REQUESTS));
            if let Ok(value) = HeaderValue::from_str(&retry_after) {
                r.headers_mut().insert(header::RETRY_AFTER, value);
            }
            r
        }
        Some(FaultKind::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_response(&ctx, endpoint, &ApiError::from_status(status))
        }
        other => {
            match other {
                Some(FaultKind::Delay(d)) => delay = Some(d),
                Some(FaultKind::Hold(d)) => tokio::time::sleep(d).await,
                _ => {}
            }
            if unparsable {
                error_response(
                    &ctx,
                    endpoint,
                    &ApiError::bad_request("The request body is not valid JSON."),
                )
            } else {
                let bytes = bytes.unwrap_or_default();
                serve(&inner, &ctx, route, &parts.headers, &bytes, json_body.clone()).await
            }
        }
    };
    // Logged before a delay: the request was received and processed even if the
    // client gives up waiting for the response.
    let tenant_id = match &route_tenant {
        Some(t) => Some(t.clone()),
        None => authorize(&inner, &parts.headers).ok().map(|g| g.tenant_id),
    };
    lock(&inner.requests).push(RecordedRequest {
        tenant_id,
        method: parts.method.to_string(),
        path,
        endpoint,
        call_id,
        body: json_body,
        client_request_id: ctx.client_request_id.clone(),
        scenario_id: parts
            .headers
            .get("scenario-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        status: response.status().as_u16(),
    });
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        headers.insert("request-id", v);
    }
    let echoed = ctx.client_request_id.as_deref().unwrap_or(&ctx.request_id);
    if let Ok(v) = HeaderValue::from_str(echoed) {
        headers.insert("client-request-id", v);
    }
    response
}

async fn serve(
    inner: &Arc<Inner>,
    ctx: &Ctx,
    route: Route,
    headers: &HeaderMap,
    bytes: &[u8],
    body: Option<Value>,
) -> Response {
    match route {
        Route::Token(tenant) => token(inner, &tenant, bytes),
        Route::OpenId => axum::Json(json!({
            "issuer": inner.config.issuer,
            "jwks_uri": format!("{}/v1/keys", inner.base_url),
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }))
        .into_response(),
        Route::Jwks => {
            let now = inner.now();
            axum::Json(lock(&inner.keys).jwks(now)).into_response()
        }
        Route::Calls {
            endpoint,
            call,
            participant,
        } => {
            let result = match authorize(inner, headers) {
                Ok(grant) => calls::handle(inner, &grant, endpoint, call, participant, body).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(reply) => reply_response(reply),
                Err(e) => error_response(ctx, endpoint, &e),
            }
        }
        Route::Unknown => error_response(
            ctx,
            Endpoint::Other,
            &ApiError::new(
                StatusCode::NOT_FOUND,
                "UnknownError",
                "Resource not found for the segment.",
            ),
        ),
    }
}

fn reply_response(reply: Reply) -> Response {
    let mut response = match reply.body {
        Some(body) => (reply.status, axum::Json(body)).into_response(),
        None => reply.status.into_response(),
    };
    if let Some(location) = reply.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A Graph error body, or an AAD-shaped one for the token endpoint.
fn error_response(ctx: &Ctx, endpoint: Endpoint, error: &ApiError) -> Response {
    if endpoint == Endpoint::Token {
        let aad = match error.status.as_u16() {
            429 | 503 => "temporarily_unavailable",
            s if s >= 500 => "server_error",
            _ => "invalid_request",
        };
        return aad_error(ctx, error.status, aad, 0, &error.message);
    }
    let mut body = GraphErrorBody::new(error.code.clone(), error.message.clone(), ctx.request_id.clone());
    body.error.inner_error = Some(InnerError {
        request_id: Some(ctx.request_id.clone()),
        client_request_id: ctx.client_request_id.clone(),
        date: Some(iso_date(SystemTime::now())),
        ..InnerError::default()
    });
    (error.status, axum::Json(body)).into_response()
}

fn aad_error(ctx: &Ctx, status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": iso_date(SystemTime::now()),
        "trace_id": ctx.request_id,
        "correlation_id": ctx.client_request_id.as_deref().unwrap_or(&ctx.request_id),
    });
    (status, axum::Json(body)).into_response()
}

/// The client-credentials token endpoint.
fn token(inner: &Inner, tenant: &TenantId, bytes: &[u8]) -> Response {
    let ctx = Ctx {
        request_id: uuid::Uuid::new_v4().to_string(),
        client_request_id: None,
    };
    let form: Vec<(String, String)> = match serde_urlencoded_pairs(bytes) {
        Some(f) => f,
        None => {
            return aad_error(
                &ctx,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
            );
        }
    };
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if field("grant_type") != Some("client_credentials") {
        return aad_error(
            &ctx,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    if field("scope").is_none_or(|s| !s.ends_with("/.default")) {
        return aad_error(
            &ctx,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
        );
    }
    let Some(client_id) = field("client_id") else {
        return aad_error(
            &ctx,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(app) = inner.find_app(tenant, &client_id.into()) else {
        return aad_error(
            &ctx,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    };
    if let Some(kind) = field("client_assertion_type") {
        if kind != crate::assertion::JWT_BEARER {
            return aad_error(
                &ctx,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "AADSTS50027: client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            );
        }
        let audience = format!("{}/{}/oauth2/v2.0/token", inner.base_url, tenant);
        let assertion = field("client_assertion").unwrap_or_default();
        let checked =
            crate::federated::verify_client_assertion(inner, &app.tenant_id, &app.app_id, &audience, assertion);
        if let Err(refusal) = checked {
            return aad_error(
                &ctx,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                refusal.code,
                &refusal.description,
            );
        }
    } else if field("client_secret") != Some(app.client_secret.as_str()) {
        return aad_error(
            &ctx,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        );
    }
    let access_token = access_token(inner, &app.tenant_id, &app.app_id);
    let lifetime = inner.config.access_token_lifetime;
    lock(&inner.grants).insert(
        access_token.clone(),
        Grant {
            app_id: app.app_id,
            tenant_id: app.tenant_id,
            expires: Instant::now() + lifetime,
        },
    );
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": access_token,
    }))
    .into_response()
}

/// An access token shaped like Entra ID's (three dot-separated parts, the
/// second a base64url JSON payload with `aud`, `tid`, `appid`, `roles`), so
/// tools can read its roles as they would a real one. Not signed: the
/// emulator knows its tokens by their random third part.
fn access_token(inner: &Inner, tenant: &TenantId, app: &graph_comms_model::AppId) -> String {
    use base64::Engine as _;
    let roles = lock(&inner.roles)
        .get(&(tenant.clone(), app.clone()))
        .cloned()
        .unwrap_or_else(|| crate::state::DEFAULT_ROLES.iter().map(|r| (*r).to_owned()).collect());
    let payload = json!({
        "aud": "https://graph.microsoft.com",
        "tid": tenant.as_str(),
        "appid": app.as_str(),
        "roles": roles,
    });
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
    format!("emu.{payload}.{}", uuid::Uuid::new_v4().simple())
}

/// Decodes `application/x-www-form-urlencoded`.
fn serde_urlencoded_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn authorize(inner: &Inner, headers: &HeaderMap) -> Result<Grant, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let grant = lock(&inner.grants)
        .get(token)
        .cloned()
        .ok_or_else(|| unauthorized("Access token validation failure. Invalid audience."))?;
    if grant.expires <= Instant::now() {
        return Err(unauthorized("Access token has expired or is not yet valid."));
    }
    Ok(grant)
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC, as Graph writes `innerError.date`.
pub(crate) fn iso_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_utc() {
        assert_eq!(
            iso_date(UNIX_EPOCH + Duration::from_secs(1_597_755_111)),
            "2020-08-18T12:51:51"
        );
    }

    #[test]
    fn form_bodies_decode() {
        let pairs =
            serde_urlencoded_pairs(b"a=b%2Fc&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&x=1+2").unwrap();
        assert_eq!(pairs[1].1, "https://graph.microsoft.com/.default");
        assert_eq!(pairs[2].1, "1 2");
    }
}
