//! How to reach Redis and how to lay out the keys.

use std::time::Duration;

/// The key prefix used when none is configured.
pub const DEFAULT_PREFIX: &str = "graph-comms";

/// Where the store keeps calls and how patient it is.
#[derive(Debug, Clone)]
pub struct RedisStoreConfig {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) ended_retention: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) reconnect_retries: usize,
}

impl RedisStoreConfig {
    /// The store at `url` (`redis://host:port/db`, `rediss://` for TLS is not
    /// compiled in), prefix [`DEFAULT_PREFIX`], 10 minutes' retention for
    /// ended calls without a `forget` time, 2 s timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            ended_retention: Duration::from_secs(10 * 60),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            reconnect_retries: 2,
        }
    }

    /// The namespace of every key: a call's record is `<prefix>:{<call id>}`,
    /// the indexes are `{<prefix>}:due` and `{<prefix>}:calls`. Several bots
    /// (or tests) share one Redis with different prefixes. Must be non-empty
    /// and contain no `{`, `}` or whitespace.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long an ended call whose record has no `forget` time is kept.
    #[must_use]
    pub fn ended_retention(mut self, retention: Duration) -> Self {
        self.ended_retention = retention;
        self
    }

    /// How long one connection attempt may take.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long Redis may take to answer one request.
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How many times a lost connection is retried before an operation fails.
    #[must_use]
    pub fn reconnect_retries(mut self, retries: usize) -> Self {
        self.reconnect_retries = retries;
        self
    }

    /// The configured prefix.
    pub fn prefix_str(&self) -> &str {
        &self.prefix
    }

    /// The longest an operation may wait before it fails as unavailable.
    pub(crate) fn operation_deadline(&self) -> Duration {
        let attempts = u32::try_from(self.reconnect_retries.saturating_add(1)).unwrap_or(u32::MAX);
        self.connect_timeout
            .saturating_mul(attempts)
            .saturating_add(self.response_timeout)
            .saturating_add(Duration::from_secs(1))
    }

    pub(crate) fn validate(&self) -> Result<(), ConnectError> {
        if self.prefix.is_empty() {
            return Err(ConnectError::InvalidConfig("the key prefix is empty".to_owned()));
        }
        if self.prefix.contains(['{', '}']) || self.prefix.chars().any(char::is_whitespace) {
            return Err(ConnectError::InvalidConfig(format!(
                "the key prefix {:?} contains '{{', '}}' or whitespace",
                self.prefix
            )));
        }
        if self.response_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(ConnectError::InvalidConfig("timeouts must be above zero".to_owned()));
        }
        Ok(())
    }
}

/// The store could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The configuration is unusable (bad URL, bad prefix).
    #[error("invalid Redis store configuration: {0}")]
    InvalidConfig(String),
    /// Redis could not be reached.
    #[error("Redis unavailable: {0}")]
    Unavailable(String),
}
