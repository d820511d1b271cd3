//! Errors of the endpoint's setup and key handling.

/// Why the endpoint could not be built or its keys not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// A configuration value that cannot work.
    #[error("invalid notify configuration: {0}")]
    Config(String),
    /// The OpenID configuration or the key set could not be fetched or read.
    #[error("fetching signing keys from {url} failed: {reason}")]
    KeyFetch {
        /// The URL that failed.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The key set held no RSA key with a `kid`, so no token could be verified with it.
    #[error("the signing key set holds no usable RSA key")]
    NoUsableKeys,
}
