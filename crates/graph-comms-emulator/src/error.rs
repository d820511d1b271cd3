//! The emulator's errors.

use std::time::Duration;

use graph_comms_model::{CallId, CallState};

/// What can go wrong driving the emulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The RSA signing key could not be generated or used.
    #[error("signing key error: {0}")]
    Key(&'static str),
    /// The HTTP client for notifications could not be built.
    #[error("cannot build the notification HTTP client: {0}")]
    HttpClient(String),
    /// The call is unknown to this emulator.
    #[error("unknown call {0}")]
    UnknownCall(CallId),
    /// The app of an incoming call is not registered.
    #[error("app {0} is not registered")]
    UnknownApp(String),
    /// A certificate could not be read.
    #[error("certificate error: {0}")]
    Certificate(&'static str),
    /// A federated identity credential could not be registered (no usable
    /// RSA key in the JWKS, an empty issuer or subject).
    #[error("federated identity error: {0}")]
    FederatedIdentity(String),
    /// A call did not reach a state in time.
    #[error("call {call} did not reach state {state} within {timeout:?} (now {current})")]
    StateTimeout {
        /// The call.
        call: CallId,
        /// The state waited for.
        state: CallState,
        /// The state it was in.
        current: String,
        /// How long it waited.
        timeout: Duration,
    },
}
