//! How to reach Redis and how to lay out the keys.

use std::time::Duration;

/// The key prefix used when none is configured.
pub const DEFAULT_PREFIX: &str = "graph-comms";

/// Where the store keeps calls and how patient it is.
#[derive(Debug, Clone)]
pub struct RedisStoreConfig {
    pub(crate) url: String,
    /// More seed nodes of a cluster (the first is `url`); empty for one Redis.
    pub(crate) cluster_seeds: Vec<String>,
    pub(crate) cluster: bool,
    pub(crate) tls: Option<RedisTls>,
    pub(crate) prefix: String,
    pub(crate) ended_retention: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) reconnect_retries: usize,
}

impl RedisStoreConfig {
    /// The store at `url` (`redis://[user:password@]host:port/db`, or
    /// `rediss://` for TLS, trusting the system's roots unless
    /// [`RedisStoreConfig::tls`] says otherwise), prefix [`DEFAULT_PREFIX`],
    /// 10 minutes' retention for ended calls without a `forget` time, 2 s
    /// timeouts. A user and password in the URL authenticate with `AUTH`
    /// (Redis ACL users, or the access key of Azure Cache for Redis).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            cluster_seeds: Vec::new(),
            cluster: false,
            tls: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            ended_retention: Duration::from_secs(10 * 60),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            reconnect_retries: 2,
        }
    }

    /// A Redis Cluster reached through its seed nodes (at least one): each a
    /// `redis://[user:password@]host:port` or `rediss://` URL of a node (or
    /// the one endpoint of Azure Managed Redis with the OSS cluster policy).
    /// The client reads the slot map from a seed and then talks to every
    /// primary directly; more seeds only help when some are down at start-up.
    /// All seeds must share the scheme, user and password; the database is 0.
    /// Other settings as [`RedisStoreConfig::new`].
    pub fn cluster<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> Self {
        let mut seeds = seeds.into_iter().map(Into::into);
        let mut config = Self::new(seeds.next().unwrap_or_default());
        config.cluster_seeds = seeds.collect();
        config.cluster = true;
        config
    }

    /// Whether this is a Redis Cluster configuration ([`RedisStoreConfig::cluster`]).
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The URLs to connect to: the URL, and more seeds of a cluster.
    pub(crate) fn urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.cluster_seeds.iter().map(String::as_str))
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

    /// TLS settings for a `rediss://` URL: a CA to trust instead of the
    /// system's roots, and a client certificate for servers that ask for one.
    #[must_use]
    pub fn tls(mut self, tls: RedisTls) -> Self {
        self.tls = Some(tls);
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
        if self.url.trim().is_empty() {
            return Err(ConnectError::InvalidConfig(
                "no Redis URL (or cluster seed) given".to_owned(),
            ));
        }
        if self.tls.is_some() && !self.url.trim_start().to_ascii_lowercase().starts_with("rediss://") {
            return Err(ConnectError::InvalidConfig(
                "TLS settings (a CA or a client certificate) need a rediss:// URL".to_owned(),
            ));
        }
        Ok(())
    }
}

/// How a `rediss://` connection is secured beyond the defaults (the system's
/// root certificates, no client certificate). Certificates are PEM text.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisTls {
    /// The CA certificate(s) to trust instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate and its private key, for servers that require
    /// one (`tls-auth-clients yes`).
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl RedisTls {
    /// The defaults: the system's roots, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts these CA certificates (PEM) instead of the system's roots.
    #[must_use]
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents this certificate and private key (PEM) to the server.
    #[must_use]
    pub fn client_identity(mut self, certificate_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.client_identity = Some((certificate_pem.into(), key_pem.into()));
        self
    }
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("client_identity", &self.client_identity.as_ref().map(|_| "<redacted>"))
            .finish()
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
