//! Signing keys: where they come from and how they are cached.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm};

use crate::NotifyError;
use crate::metrics::Counters;

/// A JSON Web Key Set, as published at an OpenID configuration's `jwks_uri`.
pub type Jwks = jsonwebtoken::jwk::JwkSet;

/// Where the endpoint gets the keys that sign notification tokens.
///
/// The default is [`HttpKeySource`]; tests and custom deployments supply their own.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    /// The current key set. Called about every `key_refresh_interval`, and for
    /// unknown `kid`s at most once per `min_key_refetch_interval` (counted from
    /// the end of the previous fetch); never twice at once.
    async fn fetch(&self) -> Result<Jwks, NotifyError>;
}

/// The largest OpenID configuration or key set read (Microsoft's are a few KB).
const MAX_KEY_DOCUMENT: usize = 1 << 20;

/// Fetches the OpenID configuration, then the key set at its `jwks_uri`
/// (which must use `https` when the configuration does). Each document is
/// read up to 1 MiB.
#[derive(Debug, Clone)]
pub struct HttpKeySource {
    openid_configuration_url: String,
    http: reqwest::Client,
}

impl HttpKeySource {
    /// A key source for this OpenID configuration document.
    pub fn new(openid_configuration_url: impl Into<String>) -> Result<Self, NotifyError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| NotifyError::Config(format!("cannot build the HTTP client for key fetches: {e}")))?;
        Ok(Self {
            openid_configuration_url: openid_configuration_url.into(),
            http,
        })
    }

    /// The keys are worth no more than the configuration's own transport.
    fn check_jwks_uri(&self, jwks_uri: &str) -> Result<(), NotifyError> {
        if self.openid_configuration_url.starts_with("https://") && !jwks_uri.starts_with("https://") {
            return Err(NotifyError::KeyFetch {
                url: self.openid_configuration_url.clone(),
                reason: format!("its jwks_uri {jwks_uri} is not https"),
            });
        }
        Ok(())
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, NotifyError> {
        let fail = |reason: String| NotifyError::KeyFetch {
            url: url.to_owned(),
            reason,
        };
        let mut response = self.http.get(url).send().await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}")));
        }
        let too_large = || fail(format!("the document is larger than {MAX_KEY_DOCUMENT} bytes"));
        if response.content_length().is_some_and(|n| n > MAX_KEY_DOCUMENT as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.to_string()))? {
            if body.len() + chunk.len() > MAX_KEY_DOCUMENT {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| fail(format!("not JSON: {e}")))
    }
}

#[async_trait::async_trait]
impl KeySource for HttpKeySource {
    async fn fetch(&self) -> Result<Jwks, NotifyError> {
        let config = self.get_json(&self.openid_configuration_url).await?;
        let Some(jwks_uri) = config.get("jwks_uri").and_then(serde_json::Value::as_str) else {
            return Err(NotifyError::KeyFetch {
                url: self.openid_configuration_url.clone(),
                reason: "the OpenID configuration has no jwks_uri".into(),
            });
        };
        self.check_jwks_uri(jwks_uri)?;
        let set = self.get_json(jwks_uri).await?;
        // Read keys one by one so one key of an unsupported kind does not hide the others.
        let keys = set
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Jwks { keys })
    }
}

/// The RSA keys by `kid`, with the fetch bookkeeping.
#[derive(Default)]
struct KeyState {
    keys: HashMap<String, Arc<DecodingKey>>,
    loaded_at: Option<Instant>,
    /// When the last fetch started, then when it ended (or was dropped): the rate limit counts from here.
    last_attempt: Option<Instant>,
    /// Fetches finished (successful or not), so a request that waited for one uses its result.
    fetches_finished: u64,
}

/// Why a token's key could not be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnknownKey;

/// Cached keys with single-flight, rate-limited refetching.
pub(crate) struct KeyStore {
    source: Arc<dyn KeySource>,
    state: RwLock<KeyState>,
    /// Held while fetching, so concurrent misses cause one fetch.
    fetching: tokio::sync::Mutex<()>,
    refresh_interval: Duration,
    min_refetch_interval: Duration,
    counters: Arc<Counters>,
}

impl KeyStore {
    pub(crate) fn new(
        source: Arc<dyn KeySource>,
        refresh_interval: Duration,
        min_refetch_interval: Duration,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            source,
            state: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
            refresh_interval,
            min_refetch_interval,
            counters,
        }
    }

    pub(crate) fn loaded(&self) -> bool {
        !self.read(|s| s.keys.is_empty())
    }

    fn read<T>(&self, f: impl FnOnce(&KeyState) -> T) -> T {
        f(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut KeyState) -> T) -> T {
        f(&mut self.state.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// The key for `kid`, fetching the set again if it is unknown and the rate limit allows.
    ///
    /// Unknown `kid`s share fetches: a request that waited while a fetch ran takes that
    /// fetch's result and starts none, and a new fetch starts only once
    /// `min_refetch_interval` has passed since the previous one ended (a cancelled fetch
    /// ends when dropped), so a flood of unknown `kid`s costs one fetch per interval.
    pub(crate) async fn key(self: &Arc<Self>, kid: &str) -> Result<Arc<DecodingKey>, UnknownKey> {
        let (found, stale, finished) = self.read(|s| {
            let stale = s.loaded_at.is_none_or(|t| t.elapsed() >= self.refresh_interval);
            (s.keys.get(kid).cloned(), stale, s.fetches_finished)
        });
        if let Some(key) = found {
            if stale {
                // Refresh off the request path; this request uses the key it has.
                let store = Arc::clone(self);
                tokio::spawn(async move { store.refresh_if_due().await });
            }
            return Ok(key);
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have fetched while this one waited: its result is the answer.
        let (found, finished_now) = self.read(|s| (s.keys.get(kid).cloned(), s.fetches_finished));
        if let Some(key) = found {
            return Ok(key);
        }
        if finished_now != finished || !self.attempt_allowed() {
            return Err(UnknownKey);
        }
        // Failure is logged and counted inside; the old keys stay.
        let _ = self.fetch_locked().await;
        self.read(|s| s.keys.get(kid).cloned()).ok_or(UnknownKey)
    }

    /// Fetches now, whatever the rate limit says.
    pub(crate) async fn refresh(&self) -> Result<(), NotifyError> {
        let _fetching = self.fetching.lock().await;
        self.fetch_locked().await
    }

    async fn refresh_if_due(&self) {
        let Ok(_fetching) = self.fetching.try_lock() else {
            return; // a fetch is already running
        };
        let stale = self.read(|s| s.loaded_at.is_none_or(|t| t.elapsed() >= self.refresh_interval));
        if stale && self.attempt_allowed() {
            let _ = self.fetch_locked().await;
        }
    }

    fn attempt_allowed(&self) -> bool {
        self.read(|s| s.last_attempt.is_none_or(|t| t.elapsed() >= self.min_refetch_interval))
    }

    /// Fetches and installs the key set; callers hold `fetching`.
    async fn fetch_locked(&self) -> Result<(), NotifyError> {
        self.write(|s| s.last_attempt = Some(Instant::now()));
        Counters::bump(&self.counters.key_fetches, 1);
        // Also stamped at the end, so a fetch slower than the interval is not followed by another at once.
        let _finish = FetchFinished(self);
        let result = self.source.fetch().await.and_then(|set| {
            let keys = usable_keys(&set);
            if keys.is_empty() {
                Err(NotifyError::NoUsableKeys)
            } else {
                Ok(keys)
            }
        });
        match result {
            Ok(keys) => {
                tracing::debug!(keys = keys.len(), "notification signing keys loaded");
                self.write(|s| {
                    s.keys = keys;
                    s.loaded_at = Some(Instant::now());
                });
                Ok(())
            }
            Err(err) => {
                Counters::bump(&self.counters.key_fetch_failures, 1);
                tracing::warn!(error = %err, "fetching notification signing keys failed; keeping the previous keys");
                Err(err)
            }
        }
    }
}

/// Ends a fetch, also when it was cancelled: stamps `last_attempt` and counts the fetch finished.
struct FetchFinished<'a>(&'a KeyStore);

impl Drop for FetchFinished<'_> {
    fn drop(&mut self) {
        self.0.write(|s| {
            s.last_attempt = Some(Instant::now());
            s.fetches_finished = s.fetches_finished.wrapping_add(1);
        });
    }
}

/// RSA keys with a `kid` that are not declared for another algorithm.
fn usable_keys(set: &Jwks) -> HashMap<String, Arc<DecodingKey>> {
    set.keys
        .iter()
        .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::RSA(_)))
        .filter(|jwk| jwk.common.key_algorithm.is_none_or(|alg| alg == KeyAlgorithm::RS256))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, Arc::new(key)))
        })
        .collect()
}

#[cfg(test)]
mod fetch_tests {
    use super::*;

    /// Serves `body` as `application/json` at every path of a loopback server.
    async fn serve(body: String) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn a_key_document_larger_than_a_mebibyte_is_refused_with_its_size() {
        let huge = format!("{{\"jwks_uri\":\"{}\"}}", "x".repeat(MAX_KEY_DOCUMENT));
        let url = serve(huge).await;
        let error = HttpKeySource::new(url)
            .expect("client")
            .fetch()
            .await
            .expect_err("refused");
        assert!(error.to_string().contains("larger than 1048576 bytes"), "{error}");
    }

    #[tokio::test]
    async fn a_jwks_uri_that_drops_https_is_refused() {
        let source = HttpKeySource::new("https://login.example/.well-known/openid-configuration").expect("client");
        let error = source.check_jwks_uri("http://login.example/keys").expect_err("refused");
        assert!(error.to_string().contains("is not https"), "{error}");
        assert!(source.check_jwks_uri("https://login.example/keys").is_ok());
    }
}
