#![doc = include_str!("../README.md")]

mod auth;
mod clip;
mod config;
mod endpoint;
mod error;
mod events;
mod keys;
mod metrics;
mod stages;

pub use config::{DEFAULT_ISSUERS, DEFAULT_MIN_KEY_REFETCH_INTERVAL, DEFAULT_OPENID_CONFIGURATION_URL, NotifyConfig};
pub use endpoint::{Admission, Journal, MESSAGE_ID_HEADER, NotifyEndpoint, UNAUTHORIZED_BODY};
pub use error::NotifyError;
pub use events::{Delivery, EventReceiver, NotificationEvent};
pub use keys::{HttpKeySource, Jwks, KeySource};
pub use metrics::{NotifyMetrics, RejectReason};
pub use stages::{RequestStages, StageObserver};

/// The token checks on their own, for the fuzz targets (feature `fuzzing`, off by default).
/// Not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use auth::fuzzing;
