//! The bearer tokens the load generators send are signed by a key made for the
//! run (the emulator's `NotificationSigner`, as Graph signs them); this hands
//! its public key to the notification endpoint as a static key set.

use anyhow::Context;
use graph_comms_emulator::NotificationSigner;
use graph_comms_notify::{Jwks, KeySource, NotifyError};

/// The run's key as the endpoint's JWKS.
pub(crate) fn jwks(signer: &NotificationSigner) -> anyhow::Result<Jwks> {
    serde_json::from_value(signer.jwks()).context("bench JWKS")
}

/// A key source that always answers with the same keys (plus, optionally, those of another source).
pub(crate) struct StaticKeys {
    /// The fixed keys.
    pub(crate) keys: Jwks,
    /// Keys fetched on each call and merged in (the emulator's, in the full server).
    pub(crate) also: Option<Box<dyn KeySource>>,
}

#[async_trait::async_trait]
impl KeySource for StaticKeys {
    async fn fetch(&self) -> Result<Jwks, NotifyError> {
        let mut keys = self.keys.clone();
        if let Some(other) = &self.also {
            keys.keys.extend(other.fetch().await?.keys);
        }
        Ok(keys)
    }
}
