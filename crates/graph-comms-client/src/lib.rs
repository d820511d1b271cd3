#![doc = include_str!("../README.md")]

mod auth;
mod client;
mod error;
mod retry;

pub use async_trait::async_trait;
pub use auth::{AccessToken, ClientSecretCredential, TokenProvider};
pub use client::{GraphClient, GraphClientBuilder, GraphResponse, RequestInfo, RequestObserver};
pub use error::{GraphClientError, TokenError};
pub use retry::{Idempotency, RetryPolicy};
