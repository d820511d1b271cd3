//! Shared set-up for the end-to-end tests: an emulator, a callback receiver
//! for its notifications, and a client pointed at both.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use graph_comms_client::{GraphClient, GraphClientBuilder, RetryPolicy};
use graph_comms_emulator::{Emulator, EmulatorConfig, Endpoint, IncomingCall, RecordedRequest};
use graph_comms_model::{AnswerRequest, CallId, CallState};
use graph_comms_testkit::receiver::CallbackReceiver;

/// An upper bound for every wait, so a broken test fails instead of hanging.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A running emulator plus a callback receiver that accepts (and records) every notification.
pub(crate) struct Setup {
    pub(crate) emulator: Emulator,
    pub(crate) callback_uri: String,
    receiver: CallbackReceiver,
}

impl Setup {
    pub(crate) async fn start() -> Self {
        Self::with_config(EmulatorConfig::default()).await
    }

    pub(crate) async fn with_config(config: EmulatorConfig) -> Self {
        let emulator = Emulator::start(config).await.expect("emulator starts");
        let receiver = CallbackReceiver::start().await;
        let callback_uri = receiver.url();
        Self {
            emulator,
            callback_uri,
            receiver,
        }
    }

    /// A client for the emulator's default app, with fast retries.
    pub(crate) fn client_builder(&self) -> GraphClientBuilder {
        graph_comms_testkit::local::client_builder(&self.emulator, &self.emulator.default_app())
            .request_timeout(Duration::from_secs(5))
            .retry_policy(RetryPolicy {
                max_attempts: 4,
                max_elapsed: Duration::from_secs(10),
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(100),
            })
    }

    pub(crate) fn client(&self) -> GraphClient {
        self.client_builder().build().expect("client builds")
    }

    /// An incoming call from a Teams user, not yet answered.
    pub(crate) async fn incoming_call(&self) -> CallId {
        let app = self.emulator.default_app();
        let call = IncomingCall::from_user(&app, self.callback_uri.clone(), "caller-user-id", "Caller");
        let id = self.emulator.place_incoming_call(call).await.expect("call placed");
        self.emulator
            .wait_for_state(&id, CallState::Incoming, WAIT)
            .await
            .expect("call is incoming");
        id
    }

    /// An incoming call answered with `client` and established.
    pub(crate) async fn established_call(&self, client: &GraphClient) -> CallId {
        let id = self.incoming_call().await;
        client
            .answer(&id, &AnswerRequest::audio(self.callback_uri.clone()))
            .await
            .expect("answered");
        self.emulator
            .wait_for_state(&id, CallState::Established, WAIT)
            .await
            .expect("call established");
        id
    }

    /// The requests the emulator received for one endpoint.
    pub(crate) fn requests_to(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        self.emulator
            .requests()
            .into_iter()
            .filter(|r| r.endpoint == endpoint)
            .collect()
    }

    pub(crate) async fn shutdown(self) {
        // The receiver stops when dropped, after the emulator's deliveries ended.
        self.emulator.shutdown().await;
    }
}
