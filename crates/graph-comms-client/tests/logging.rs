//! What the client logs: a span per request naming it, and never a secret.
//! (Its own test binary: tracing's per-thread subscriber must not race other tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::Setup;

/// Collects formatted log output.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_each_request_and_never_a_secret() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let setup = Setup::start().await;
    let app = setup.emulator.default_app();
    let call = setup.incoming_call().await;
    let fetched = setup.client().get_call(&call).await.unwrap();
    let wrong = "wrong-secret-0b9e3c";
    let bad = setup
        .client_builder()
        .credentials(app.tenant_id.clone(), app.app_id.clone(), wrong)
        .build()
        .unwrap();
    bad.get_call(&call).await.unwrap_err();
    setup.shutdown().await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("graph_request"), "{text}");
    assert!(
        text.contains(&fetched.client_request_id),
        "the span names the request: {text}"
    );
    assert!(text.contains("get_call"));
    for secret in [app.client_secret.as_str(), wrong, "emu."] {
        assert!(!text.contains(secret), "{secret:?} logged: {text}");
    }
}
