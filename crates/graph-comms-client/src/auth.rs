//! App-only access tokens: the provider trait, the client-credentials
//! provider, and the cache every request goes through.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use graph_comms_model::{AppId, TenantId};
use serde::Deserialize;
use tracing::Instrument;

use crate::error::{TokenError, text_excerpt};

/// The Graph scope for app-only tokens.
pub(crate) const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Gets access tokens for Graph. The client caches what it returns, so an
/// implementation may fetch a new token on every call.
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// A token valid for Graph, and when it expires.
    async fn token(&self) -> Result<AccessToken, TokenError>;

    /// A token for `tenant` (the tenant of a call the app acts on; see
    /// [`crate::GraphClient::for_tenant`], which `graph-comms-handler` uses
    /// for every request on a call). The default returns [`Self::token`]: a
    /// provider that serves one tenant. A multi-tenant provider overrides it;
    /// otherwise Graph refuses a call of another tenant with subcode 7505,
    /// whose hint names the tenant mismatch.
    async fn token_for_tenant(&self, _tenant: &TenantId) -> Result<AccessToken, TokenError> {
        self.token().await
    }
}

/// Tenant names Entra ID accepts in the URL that are not one tenant: a
/// client-credentials token must name the tenant the request acts in.
const NOT_A_TENANT: [&str; 3] = ["common", "organizations", "consumers"];

/// Refuses `common` and friends (and empty ids) as the tenant of an app-only token.
pub(crate) fn check_tenant(tenant: &TenantId) -> Result<(), TokenError> {
    let id = tenant.as_str().trim();
    if id.is_empty() || NOT_A_TENANT.iter().any(|n| id.eq_ignore_ascii_case(n)) {
        return Err(TokenError::InvalidTenant(format!(
            "{id:?} is not a tenant: app-only tokens must be requested for the call's tenant id"
        )));
    }
    Ok(())
}

/// `{login}/{tenant}/oauth2/v2.0/token`.
pub(crate) fn token_url(login_base_url: &str, tenant: &TenantId) -> String {
    format!(
        "{}/{}/oauth2/v2.0/token",
        login_base_url.trim_end_matches('/'),
        crate::client::encode_segment(tenant.as_str())
    )
}

/// A bearer token and its expiry.
#[derive(Clone)]
pub struct AccessToken {
    /// The token itself (redacted in `Debug`).
    pub secret: String,
    /// When Graph stops accepting it.
    pub expires_at: Instant,
}

impl AccessToken {
    /// A token that expires `lifetime` from now.
    pub fn expiring_in(secret: impl Into<String>, lifetime: Duration) -> Self {
        Self {
            secret: secret.into(),
            expires_at: Instant::now() + lifetime,
        }
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The OAuth2 client-credentials flow against Microsoft Entra ID:
/// `POST {login}/{tenant}/oauth2/v2.0/token` with the app id and secret,
/// scope `https://graph.microsoft.com/.default`.
pub struct ClientSecretCredential {
    http: reqwest::Client,
    login_base_url: String,
    tenant: TenantId,
    token_url: String,
    app_id: AppId,
    client_secret: String,
    timeout: Duration,
}

impl fmt::Debug for ClientSecretCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecretCredential")
            .field("token_url", &self.token_url)
            .field("app_id", &self.app_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

impl ClientSecretCredential {
    /// A credential for this app in this tenant. `login_base_url` is
    /// `https://login.microsoftonline.com` for the public cloud.
    pub fn new(
        login_base_url: &str,
        tenant: &TenantId,
        app_id: AppId,
        client_secret: impl Into<String>,
    ) -> Result<Self, crate::GraphClientError> {
        let http = crate::client::http_client(crate::client::DEFAULT_USER_AGENT)?;
        Ok(Self::with_http(
            http,
            login_base_url,
            tenant,
            app_id,
            client_secret.into(),
            crate::client::DEFAULT_TIMEOUT,
        ))
    }

    pub(crate) fn with_http(
        http: reqwest::Client,
        login_base_url: &str,
        tenant: &TenantId,
        app_id: AppId,
        client_secret: String,
        timeout: Duration,
    ) -> Self {
        Self {
            http,
            login_base_url: login_base_url.trim_end_matches('/').to_owned(),
            tenant: tenant.clone(),
            token_url: token_url(login_base_url, tenant),
            app_id,
            client_secret,
            timeout,
        }
    }

    async fn request(&self, url: &str) -> Result<AccessToken, TokenError> {
        let form = [
            ("client_id", self.app_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("scope", GRAPH_SCOPE),
            ("grant_type", "client_credentials"),
        ];
        let secret = [self.client_secret.as_str()];
        exchange(&self.http, url, &form, self.timeout, &secret).await
    }

    /// A rejection with the Entra ID code; the secret never survives into it.
    #[cfg(test)]
    fn rejection(&self, status: u16, body: &[u8]) -> TokenError {
        rejection(status, body, &[self.client_secret.as_str()])
    }
}

/// One client-credentials exchange at `url` with `form`; `secrets` are
/// scrubbed from every error text.
pub(crate) async fn exchange(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    timeout: Duration,
    secrets: &[&str],
) -> Result<AccessToken, TokenError> {
    let span = tracing::info_span!("graph_token", url = %url, status = tracing::field::Empty);
    let result = exchange_in_span(http, url, form, timeout, secrets)
        .instrument(span.clone())
        .await;
    match &result {
        Ok(_) => tracing::debug!(parent: &span, "token acquired"),
        Err(err) => tracing::warn!(parent: &span, error = %err, "token request failed"),
    }
    result
}

async fn exchange_in_span(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    timeout: Duration,
    secrets: &[&str],
) -> Result<AccessToken, TokenError> {
    let send = async {
        let response = http.post(url).form(form).send().await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, body))
    };
    let (status, body) = match tokio::time::timeout(timeout, send).await {
        Err(_) => return Err(TokenError::Timeout(timeout)),
        Ok(Err(err)) => return Err(TokenError::Network(scrub(&crate::client::error_chain(&err), secrets))),
        Ok(Ok(reply)) => reply,
    };
    tracing::Span::current().record("status", status);
    if !(200..300).contains(&status) {
        return Err(rejection(status, &body, secrets));
    }
    let reply: TokenReply =
        serde_json::from_slice(&body).map_err(|err| TokenError::Decode(format!("not a token response: {err}")))?;
    let lifetime = reply
        .expires_in
        .as_ref()
        .and_then(seconds_of)
        .ok_or_else(|| TokenError::Decode("no usable expires_in".into()))?;
    Ok(AccessToken::expiring_in(reply.access_token, lifetime))
}

/// A rejection with the Entra ID code; the secrets never survive into it.
fn rejection(status: u16, body: &[u8], secrets: &[&str]) -> TokenError {
    let reply: TokenErrorReply = serde_json::from_slice(body).unwrap_or_default();
    let description = reply.error_description.unwrap_or_else(|| text_excerpt(body));
    let aad_code = reply
        .error_codes
        .iter()
        .find(|code| **code != 0)
        .map(|code| format!("AADSTS{code}"))
        .or_else(|| aadsts_in(&description));
    TokenError::Rejected {
        status,
        error: reply.error.unwrap_or_else(|| format!("HTTP {status}")),
        aad_code,
        description: scrub(&description, secrets),
        trace_id: reply.trace_id,
        correlation_id: reply.correlation_id,
    }
}

fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |text, secret| text.replace(secret, "<redacted>"))
}

#[async_trait]
impl TokenProvider for ClientSecretCredential {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.request(&self.token_url).await
    }

    /// The same app and secret against `{login}/{tenant}/oauth2/v2.0/token`.
    async fn token_for_tenant(&self, tenant: &TenantId) -> Result<AccessToken, TokenError> {
        if tenant == &self.tenant {
            return self.token().await;
        }
        check_tenant(tenant)?;
        self.request(&token_url(&self.login_base_url, tenant)).await
    }
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct TokenErrorReply {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
    trace_id: Option<String>,
    correlation_id: Option<String>,
}

/// `expires_in` as Entra ID sends it: a number, or (v1 endpoint) a numeric string.
fn seconds_of(value: &serde_json::Value) -> Option<Duration> {
    let seconds = match value {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// The first `AADSTS<digits>` in a description.
fn aadsts_in(text: &str) -> Option<String> {
    let start = text.find("AADSTS")?;
    let digits: String = text[start + 6..].chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
}

/// A snapshot of the client's token fetches, for an app's `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenMetrics {
    /// Token requests sent to the provider (cache misses and refreshes, every tenant).
    pub fetches: u64,
    /// Token requests that failed (a still-valid token may have been kept).
    pub fetch_failures: u64,
}

/// The live counters behind [`TokenMetrics`], shared by every tenant's cache.
#[derive(Debug, Default)]
pub(crate) struct TokenCounters {
    fetches: AtomicU64,
    fetch_failures: AtomicU64,
}

impl TokenCounters {
    pub(crate) fn snapshot(&self) -> TokenMetrics {
        TokenMetrics {
            fetches: self.fetches.load(Ordering::Relaxed),
            fetch_failures: self.fetch_failures.load(Ordering::Relaxed),
        }
    }
}

/// Caches the provider's token, refreshes it ahead of expiry, and makes sure
/// only one fetch runs however many requests need a token at once.
pub(crate) struct TokenCache {
    provider: Arc<dyn TokenProvider>,
    counters: Arc<TokenCounters>,
    /// `None`: the provider's own tenant ([`TokenProvider::token`]).
    tenant: Option<TenantId>,
    current: Mutex<Option<Cached>>,
    /// Held while fetching: waiters queue here and then find the fresh token.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// Refresh 10% of the lifetime before expiry, at most 5 minutes before.
fn refresh_time(token: &AccessToken, now: Instant) -> Instant {
    let lifetime = token.expires_at.saturating_duration_since(now);
    let margin = (lifetime / 10).min(Duration::from_secs(300));
    token.expires_at.checked_sub(margin).unwrap_or(now)
}

/// After a failed refresh with a still-valid token, wait this long before trying again.
const REFRESH_RETRY: Duration = Duration::from_secs(5);

impl TokenCache {
    #[cfg(test)]
    pub(crate) fn new(provider: Arc<dyn TokenProvider>) -> Self {
        Self::for_tenant(provider, None, Arc::default())
    }

    fn for_tenant(provider: Arc<dyn TokenProvider>, tenant: Option<TenantId>, counters: Arc<TokenCounters>) -> Self {
        Self {
            provider,
            counters,
            tenant,
            current: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> Option<Cached> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn store(&self, cached: Option<Cached>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = cached;
    }

    /// A token to send now.
    pub(crate) async fn get(&self) -> Result<String, TokenError> {
        if let Some(cached) = self.snapshot().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(cached.token.secret);
        }
        let _fetching = match self.fetching.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // Another request is fetching; a token that is still valid serves meanwhile.
                if let Some(cached) = self.snapshot().filter(|c| Instant::now() < c.token.expires_at) {
                    return Ok(cached.token.secret);
                }
                self.fetching.lock().await
            }
        };
        // Whoever held the lock before us may have stored a fresh token.
        let previous = self.snapshot();
        if let Some(cached) = previous.clone().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(cached.token.secret);
        }
        self.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = match &self.tenant {
            None => self.provider.token().await,
            Some(tenant) => self.provider.token_for_tenant(tenant).await,
        };
        if fetched.is_err() {
            self.counters.fetch_failures.fetch_add(1, Ordering::Relaxed);
        }
        match fetched {
            Ok(token) => {
                let refresh_at = refresh_time(&token, Instant::now());
                let secret = token.secret.clone();
                self.store(Some(Cached { token, refresh_at }));
                Ok(secret)
            }
            Err(err) => match previous.filter(|c| Instant::now() < c.token.expires_at) {
                Some(mut cached) => {
                    tracing::warn!(error = %err, "token refresh failed; using the current token until it expires");
                    cached.refresh_at = (Instant::now() + REFRESH_RETRY).min(cached.token.expires_at);
                    let secret = cached.token.secret.clone();
                    self.store(Some(cached));
                    Ok(secret)
                }
                None => Err(err),
            },
        }
    }

    /// Drops the cached token if it is the one Graph refused.
    pub(crate) fn invalidate(&self, refused: &str) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|c| c.token.secret == refused) {
            *current = None;
        }
    }
}

/// Dispatches to a provider registered for the tenant, else the default one.
pub(crate) struct PerTenantProvider {
    pub(crate) default: Arc<dyn TokenProvider>,
    pub(crate) by_tenant: HashMap<TenantId, Arc<dyn TokenProvider>>,
}

#[async_trait]
impl TokenProvider for PerTenantProvider {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.default.token().await
    }

    async fn token_for_tenant(&self, tenant: &TenantId) -> Result<AccessToken, TokenError> {
        match self.by_tenant.get(tenant) {
            Some(provider) => provider.token().await,
            None => self.default.token_for_tenant(tenant).await,
        }
    }
}

/// One [`TokenCache`] per tenant, so each tenant has its own single-flight
/// fetch and its own refresh schedule.
pub(crate) struct TokenCaches {
    provider: Arc<dyn TokenProvider>,
    /// The tenant the default cache serves, when known (from `credentials`).
    default_tenant: Option<TenantId>,
    default: TokenCache,
    others: Mutex<HashMap<TenantId, Arc<TokenCache>>>,
    counters: Arc<TokenCounters>,
}

/// Where a token comes from: the default cache, or one tenant's.
pub(crate) enum CacheRef<'a> {
    Default(&'a TokenCache),
    Tenant(Arc<TokenCache>),
}

impl std::ops::Deref for CacheRef<'_> {
    type Target = TokenCache;
    fn deref(&self) -> &TokenCache {
        match self {
            Self::Default(cache) => cache,
            Self::Tenant(cache) => cache,
        }
    }
}

impl TokenCaches {
    pub(crate) fn new(provider: Arc<dyn TokenProvider>, default_tenant: Option<TenantId>) -> Self {
        let counters = Arc::new(TokenCounters::default());
        Self {
            default: TokenCache::for_tenant(Arc::clone(&provider), None, Arc::clone(&counters)),
            provider,
            default_tenant,
            others: Mutex::new(HashMap::new()),
            counters,
        }
    }

    /// Token fetches of every tenant's cache so far.
    pub(crate) fn metrics(&self) -> TokenMetrics {
        self.counters.snapshot()
    }

    /// The cache for `tenant` (`None`, or the default tenant: the default cache).
    pub(crate) fn cache(&self, tenant: Option<&TenantId>) -> CacheRef<'_> {
        match tenant {
            Some(tenant) if self.default_tenant.as_ref() != Some(tenant) => {
                let mut others = self.others.lock().unwrap_or_else(PoisonError::into_inner);
                let cache = others.entry(tenant.clone()).or_insert_with(|| {
                    Arc::new(TokenCache::for_tenant(
                        Arc::clone(&self.provider),
                        Some(tenant.clone()),
                        Arc::clone(&self.counters),
                    ))
                });
                CacheRef::Tenant(Arc::clone(cache))
            }
            _ => CacheRef::Default(&self.default),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    struct Counting {
        calls: AtomicU32,
        lifetime: Duration,
        fail: bool,
    }

    #[async_trait]
    impl TokenProvider for Counting {
        async fn token(&self) -> Result<AccessToken, TokenError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.fail {
                return Err(TokenError::provider("down"));
            }
            Ok(AccessToken::expiring_in(format!("token-{n}"), self.lifetime))
        }
    }

    fn counting(lifetime: Duration, fail: bool) -> Arc<Counting> {
        Arc::new(Counting {
            calls: AtomicU32::new(0),
            lifetime,
            fail,
        })
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_fetch() {
        let provider = counting(Duration::from_secs(3600), false);
        let cache = Arc::new(TokenCache::new(provider.clone()));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get().await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), "token-1");
        }
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    }

    /// A provider of unknown tenant (no `credentials`) that does not override
    /// `token_for_tenant` serves its own tokens for any call's tenant: the
    /// handler asks per tenant, and a single-tenant provider must keep working.
    #[tokio::test]
    async fn a_single_tenant_provider_serves_a_calls_tenant_with_its_own_token() {
        let provider = counting(Duration::from_secs(3600), false);
        let caches = TokenCaches::new(provider.clone(), None);
        let token = caches.cache(Some(&TenantId::new("call-tenant"))).get().await.unwrap();
        assert_eq!(token, "token-1");
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    }

    /// Counts fetches per tenant; tokens name their tenant.
    #[derive(Default)]
    struct PerTenant {
        calls: Mutex<HashMap<String, u32>>,
    }

    #[async_trait]
    impl TokenProvider for PerTenant {
        async fn token(&self) -> Result<AccessToken, TokenError> {
            self.token_for_tenant(&TenantId::new("default")).await
        }

        async fn token_for_tenant(&self, tenant: &TenantId) -> Result<AccessToken, TokenError> {
            let n = {
                let mut calls = self.calls.lock().unwrap();
                let n = calls.entry(tenant.to_string()).or_default();
                *n += 1;
                *n
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(AccessToken::expiring_in(
                format!("{tenant}-{n}"),
                Duration::from_secs(3600),
            ))
        }
    }

    #[tokio::test]
    async fn each_tenant_has_its_own_single_flight_cache() {
        let provider = Arc::new(PerTenant::default());
        let caches = Arc::new(TokenCaches::new(provider.clone(), Some(TenantId::new("home"))));
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let caches = caches.clone();
                tokio::spawn(async move {
                    let tenant = ["a", "b", "home"][i % 3];
                    let token = caches.cache(Some(&TenantId::new(tenant))).get().await.unwrap();
                    (tenant, token)
                })
            })
            .collect();
        for task in tasks {
            let (tenant, token) = task.await.unwrap();
            let want = if tenant == "home" {
                "default-1".to_owned()
            } else {
                format!("{tenant}-1")
            };
            assert_eq!(token, want);
        }
        let calls = provider.calls.lock().unwrap().clone();
        assert_eq!(calls.get("a"), Some(&1));
        assert_eq!(calls.get("b"), Some(&1));
        assert_eq!(calls.get("default"), Some(&1), "the default tenant uses token()");
        assert_eq!(calls.len(), 3);
        let metrics = caches.metrics();
        assert_eq!(
            (metrics.fetches, metrics.fetch_failures),
            (3, 0),
            "every tenant's fetches count"
        );
    }

    #[test]
    fn common_is_not_a_tenant() {
        for bad in ["common", "Organizations", "consumers", " "] {
            assert!(
                matches!(check_tenant(&TenantId::new(bad)), Err(TokenError::InvalidTenant(_))),
                "{bad}"
            );
        }
        assert!(check_tenant(&TenantId::new("72f988bf-86f1-41af-91ab-2d7cd011db47")).is_ok());
    }

    #[tokio::test]
    async fn refreshes_ahead_of_expiry_and_after_invalidation() {
        let provider = counting(Duration::from_secs(1), false);
        let cache = TokenCache::new(provider.clone());
        assert_eq!(cache.get().await.unwrap(), "token-1");
        assert_eq!(cache.get().await.unwrap(), "token-1");
        // Refresh is due 10% (100 ms) before the 1 s expiry.
        tokio::time::sleep(Duration::from_millis(950)).await;
        assert_eq!(cache.get().await.unwrap(), "token-2");
        cache.invalidate("token-1");
        assert_eq!(
            cache.get().await.unwrap(),
            "token-2",
            "only the refused token is dropped"
        );
        cache.invalidate("token-2");
        assert_eq!(cache.get().await.unwrap(), "token-3");
    }

    #[tokio::test]
    async fn failures_are_returned_and_not_cached() {
        let provider = counting(Duration::from_secs(3600), true);
        let cache = TokenCache::new(provider.clone());
        assert!(matches!(cache.get().await, Err(TokenError::Provider(_))));
        assert!(cache.get().await.is_err());
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn refresh_margin_is_a_tenth_capped_at_five_minutes() {
        let now = Instant::now();
        let token = |lifetime| AccessToken {
            secret: "t".into(),
            expires_at: now + lifetime,
        };
        let hour = token(Duration::from_secs(3600));
        assert_eq!(hour.expires_at - refresh_time(&hour, now), Duration::from_secs(300));
        let short = token(Duration::from_secs(10));
        assert_eq!(short.expires_at - refresh_time(&short, now), Duration::from_secs(1));
    }

    #[test]
    fn aad_codes_are_found_in_descriptions() {
        assert_eq!(
            aadsts_in("AADSTS7000215: Invalid client secret provided.").as_deref(),
            Some("AADSTS7000215")
        );
        assert_eq!(aadsts_in("no code here"), None);
        assert_eq!(aadsts_in("AADSTS"), None);
    }

    #[test]
    fn expires_in_may_be_a_number_or_a_string() {
        assert_eq!(seconds_of(&serde_json::json!(3599)), Some(Duration::from_secs(3599)));
        assert_eq!(seconds_of(&serde_json::json!("3599")), Some(Duration::from_secs(3599)));
        assert_eq!(seconds_of(&serde_json::json!(-1)), None);
        assert_eq!(seconds_of(&serde_json::json!(null)), None);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let token = AccessToken::expiring_in("eyJ.very.secret", Duration::from_secs(1));
        assert!(!format!("{token:?}").contains("secret."));
        let credential = ClientSecretCredential::with_http(
            reqwest::Client::new(),
            "https://login.example",
            &TenantId::new("t"),
            AppId::new("a"),
            "s3cr3t-value".into(),
            Duration::from_secs(1),
        );
        assert!(!format!("{credential:?}").contains("s3cr3t-value"));
        let rejected = credential.rejection(
            401,
            br#"{"error":"invalid_client","error_description":"bad secret s3cr3t-value","error_codes":[7000215]}"#,
        );
        assert_eq!(rejected.aad_code(), Some("AADSTS7000215"));
        assert!(!rejected.to_string().contains("s3cr3t-value"));
        assert!(!format!("{rejected:?}").contains("s3cr3t-value"));
    }
}
