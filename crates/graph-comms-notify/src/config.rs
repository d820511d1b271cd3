//! Endpoint configuration.

use std::time::Duration;

use graph_comms_model::{AppId, TenantId};

/// The issuers Graph's notification tokens carry.
pub const DEFAULT_ISSUERS: [&str; 2] = ["https://api.botframework.com", "https://graph.microsoft.com"];

/// Where Graph publishes the keys that sign notification tokens.
pub const DEFAULT_OPENID_CONFIGURATION_URL: &str = "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration";

/// The default [`NotifyConfig::min_key_refetch_interval`].
pub const DEFAULT_MIN_KEY_REFETCH_INTERVAL: Duration = Duration::from_secs(5);

/// How the notification endpoint authenticates, limits and queues requests.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The bot's app id: every token's `aud` must be this.
    pub app_id: AppId,
    /// Accepted `iss` values (exact match).
    pub issuers: Vec<String>,
    /// OpenID configuration document whose `jwks_uri` lists the signing keys.
    pub openid_configuration_url: String,
    /// When set, only tokens whose `tid` is one of these are accepted.
    pub allowed_tenants: Option<Vec<TenantId>>,
    /// Tolerance on `exp` and `nbf` for clocks that disagree.
    pub clock_skew: Duration,
    /// Largest accepted body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Events the queue holds before requests get 503.
    pub queue_capacity: usize,
    /// Age after which the key set is fetched again.
    pub key_refresh_interval: Duration,
    /// Least time from the end of one key set fetch to the start of one caused by an unknown `kid`
    /// (default 5 s): a token signed with a newly published key waits at most this long, and tokens
    /// naming unknown `kid`s cannot flood the key endpoint. Concurrent unknown `kid`s share one fetch
    /// whatever this is; `Duration::ZERO` removes the wait between fetches.
    pub min_key_refetch_interval: Duration,
    /// Cache verified tokens until their `exp`, so repeat tokens skip the RSA check.
    pub token_cache: bool,
}

impl NotifyConfig {
    /// Defaults for Graph's production notifications, for this app id.
    pub fn new(app_id: impl Into<AppId>) -> Self {
        Self {
            app_id: app_id.into(),
            issuers: DEFAULT_ISSUERS.iter().map(|s| (*s).to_owned()).collect(),
            openid_configuration_url: DEFAULT_OPENID_CONFIGURATION_URL.to_owned(),
            allowed_tenants: None,
            clock_skew: Duration::from_secs(60),
            max_body_bytes: 1024 * 1024,
            queue_capacity: 10_000,
            key_refresh_interval: Duration::from_secs(2 * 60 * 60),
            min_key_refetch_interval: DEFAULT_MIN_KEY_REFETCH_INTERVAL,
            token_cache: true,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), crate::NotifyError> {
        let bad = |what: &str| Err(crate::NotifyError::Config(what.to_owned()));
        if self.app_id.as_str().trim().is_empty() {
            return bad("app_id is empty");
        }
        if self.issuers.is_empty() {
            return bad("issuers is empty, so no token could be accepted");
        }
        if self.max_body_bytes == 0 {
            return bad("max_body_bytes is 0");
        }
        // tokio's bounded channel needs 1..=MAX_PERMITS slots.
        if self.queue_capacity == 0 || self.queue_capacity > tokio::sync::Semaphore::MAX_PERMITS {
            return bad("queue_capacity must be between 1 and tokio's Semaphore::MAX_PERMITS");
        }
        Ok(())
    }
}
