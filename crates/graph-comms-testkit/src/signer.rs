//! Notification tokens as Graph signs them: the emulator's
//! [`NotificationSigner`], re-exported, with a process-wide pair of keys so
//! tests do not each pay for RSA key generation.
//!
//! ```
//! use graph_comms_testkit::signer;
//!
//! let token = signer::token("bot-app-id", "tenant-id");
//! let jwks = signer::jwks(&[signer::shared()]);
//! assert_eq!(jwks["keys"][0]["kid"], signer::shared().kid());
//! # let _ = token;
//! ```
//!
//! Tests that check refusals build the variant from the signer's parts
//! (another key is [`other`]; see [`NotificationSigner`] for expired tokens,
//! wrong audiences and forged `kid`s).

use std::sync::OnceLock;
use std::time::Duration;

pub use graph_comms_emulator::NotificationSigner;

/// The `iss` of Graph's notification tokens (also the emulator's default).
pub const GRAPH_ISSUER: &str = "https://api.botframework.com";

/// How long [`token`]'s tokens are valid, as long as Graph's.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

fn generate() -> NotificationSigner {
    NotificationSigner::new().unwrap_or_else(|e| panic!("generating a test signing key: {e}"))
}

/// The signer most tests use, generated on first use and shared by every
/// test in the process.
pub fn shared() -> &'static NotificationSigner {
    static SHARED: OnceLock<NotificationSigner> = OnceLock::new();
    SHARED.get_or_init(generate)
}

/// A second process-wide signer with its own key and `kid`: "another key"
/// (not published, rotated in, or a forgery's).
pub fn other() -> &'static NotificationSigner {
    static OTHER: OnceLock<NotificationSigner> = OnceLock::new();
    OTHER.get_or_init(generate)
}

/// A valid notification token from [`shared`] for the bot `app_id` in
/// `tenant_id`: issued by [`GRAPH_ISSUER`] now, valid for [`TOKEN_LIFETIME`].
///
/// # Panics
///
/// When signing fails (it does not with a generated key).
pub fn token(app_id: &str, tenant_id: &str) -> String {
    shared()
        .sign(GRAPH_ISSUER, app_id, tenant_id, TOKEN_LIFETIME)
        .unwrap_or_else(|e| panic!("signing a test token: {e}"))
}

/// One JWKS publishing every signer's key, in order.
pub fn jwks(signers: &[&NotificationSigner]) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = signers.iter().map(|signer| signer.jwk()).collect();
    serde_json::json!({ "keys": keys })
}
