#![doc = include_str!("../README.md")]
// Errors carry Graph's code, message and ids by value so callers can match on
// them; they are built only on the failure path, so their size does not matter.
#![allow(clippy::result_large_err)]

mod auth;
mod certificate;
mod client;
mod error;
mod federated;
mod retry;
mod scenario;

pub use async_trait::async_trait;
pub use auth::{AccessToken, ClientSecretCredential, TokenMetrics, TokenProvider};
pub use certificate::{ClientCertificate, ClientCertificateCredential, JWT_BEARER_ASSERTION};
pub use client::{GraphClient, GraphClientBuilder, GraphResponse, RequestInfo, RequestObserver};
pub use error::{GraphClientError, TokenError};
pub use federated::{DEFAULT_AUTHORITY_HOST, FederatedTokenCredential, WorkloadIdentityError};
pub use graph_comms_model::FailureCause;
pub use retry::{Idempotency, RetryPolicy};
pub use scenario::with_scenario_id;
