//! One call can be followed through the logs: the webhook's span, the call's
//! span around its hooks, and the Graph requests the hooks make all name the
//! call, and every request about the call carries its id (as a dashed GUID)
//! as `scenario-id`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{Harness, Hook, Recorder, short_timings, to_agent};
use graph_comms_emulator::Endpoint;

/// The log, shared with the subscriber.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_webhook_hooks_and_graph_requests_name_the_call_and_share_its_scenario_id() {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter("graph_comms_notify=debug,graph_comms_client=debug,graph_comms_handler=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let handler = Arc::new(Recorder::new(to_agent));
    let h = Harness::start(handler.clone(), short_timings()).await;
    let call = h.call_from("caller").await;
    handler
        .wait_for(&call, |hooks| hooks.iter().any(Hook::is_outcome))
        .await;
    let chain = h
        .emu
        .notifications(&call)
        .iter()
        .find_map(|n| {
            n.body
                .pointer("/value/0/resourceData/callChainId")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            panic!(
                "no callChainId in {:#?}",
                h.emu.notifications(&call).first().map(|n| &n.body)
            )
        });

    let requests = h.emu.requests();
    let about_call: Vec<_> = requests.iter().filter(|r| r.call_id.as_ref() == Some(&call)).collect();
    assert!(
        about_call.iter().any(|r| r.endpoint == Endpoint::Transfer),
        "the transfer was sent: {about_call:?}"
    );
    for request in &about_call {
        assert_eq!(
            request.scenario_id.as_deref(),
            Some(call.dashed().as_str()),
            "{:?} {}",
            request.endpoint,
            request.path
        );
    }

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let id = call.dashed();
    // The call span names its tenant too (after the ids).
    let call_span = format!("call{{call_id={id} call_chain_id={chain} tenant=");
    let webhook = text
        .lines()
        .find(|l| l.contains("graph_notification{") && l.contains(&format!("call_id={id}")));
    assert!(
        webhook.is_some_and(|l| l.contains(&chain)),
        "webhook line with the call and its chain:\n{text}"
    );
    let graph = text
        .lines()
        .find(|l| l.contains(&call_span) && l.contains("graph_request{") && l.contains("action=\"transfer\""));
    assert!(
        graph.is_some(),
        "the transfer request logged inside the call's span ({call_span}):\n{text}"
    );
    h.stop().await;
}
