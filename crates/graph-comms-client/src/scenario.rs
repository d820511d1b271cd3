//! The `scenario-id` of the requests a task sends: Graph's support correlates
//! one call's requests by it, so it is set per call rather than per client.

use std::future::Future;

use http::HeaderValue;

tokio::task_local! {
    static SCENARIO_ID: HeaderValue;
}

/// Runs `work` with every Graph request it sends carrying `scenario-id: id`,
/// in place of the client's own [`scenario_id`](crate::GraphClientBuilder::scenario_id).
///
/// The handler framework wraps each call's work in this with the call's id,
/// so the requests made for one call (a consultation call it places included)
/// share one scenario. Requests from tasks spawned by `work` are outside it.
/// An `id` that is not a valid header value leaves the client's own.
pub async fn with_scenario_id<F: Future>(id: &str, work: F) -> F::Output {
    match HeaderValue::from_str(id) {
        Ok(value) => SCENARIO_ID.scope(value, work).await,
        Err(_) => work.await,
    }
}

/// The scenario of the current task, if [`with_scenario_id`] set one.
pub(crate) fn current() -> Option<HeaderValue> {
    SCENARIO_ID.try_with(HeaderValue::clone).ok()
}
