//! What an instance sharing calls finds when it takes over a call from one
//! that stopped: the state such an instance leaves is written to the shared
//! store, then a bot on that store must finish the call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Hook, Recorder, emulator, short_timings};
use graph_comms_emulator::{EmulatorConfig, Endpoint, IncomingCall, TargetBehavior};
use graph_comms_handler::call_machine::start_attempt;
use graph_comms_handler::model::{CallState, TransferRequest};
use graph_comms_handler::{AttemptId, Bot, CallStore, InMemoryCallStore, SharedCallStore};

/// Before: an instance killed between committing an attempt and sending its
/// `POST /transfer` left the attempt pending until its timeout, and the target
/// was never called. The instance that takes the call over asks Graph, finds
/// the call still established, and sends the POST once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_committed_but_never_sent_is_sent_by_the_instance_that_takes_over() {
    let (emu, app, client, notify) = emulator(EmulatorConfig::default()).await;
    emu.script_target("taken-over-agent", TargetBehavior::Accept);
    let store = Arc::new(InMemoryCallStore::new());
    let handler = Arc::new(Recorder::new(|_, _| None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/api/calls", listener.local_addr().unwrap());
    let bot = Bot::builder()
        .client(client)
        .notify(notify)
        .handler(handler.clone())
        .callback_uri(callback.clone())
        .timings(short_timings().lease_ttl(Duration::from_millis(600)))
        .shared_store(Arc::clone(&store) as Arc<dyn SharedCallStore>, "survivor")
        .build()
        .unwrap();
    let served = bot.clone();
    let server = tokio::spawn(async move { served.serve(listener, std::future::pending()).await });

    let call = emu
        .place_incoming_call(IncomingCall::from_user(&app, &callback, "caller", "Caller"))
        .await
        .unwrap();
    handler.wait_for(&call, |h| h.contains(&Hook::Established)).await;
    emu.wait_for_state(&call, CallState::Established, Duration::from_secs(10))
        .await
        .unwrap();

    // What the stopped instance committed: the attempt, its POST not sent.
    let mut record = (*store.load(&call).await.unwrap().unwrap()).clone();
    let request = TransferRequest::to_user("taken-over-agent", None).build();
    let (info, _) = start_attempt(
        &mut record,
        AttemptId::new(),
        request,
        false,
        std::time::SystemTime::now(),
        &short_timings().machine(),
    )
    .unwrap();
    assert!(!record.attempt.as_ref().unwrap().posted);
    record.version += 1;
    store.save(Arc::new(record)).await.unwrap();
    // A notification it had acknowledged: the call is claimed again.
    let item = graph_comms_testkit::shared_contract::notification_item(&call, 99);
    store.append(&[(call.clone(), item)]).await.unwrap();

    let hooks = handler
        .wait_for(&call, |h| h.iter().any(|h| matches!(h, Hook::Completed(_))))
        .await;
    let posts = emu
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Transfer && r.call_id.as_ref() == Some(&call))
        .count();
    assert_eq!(posts, 1, "the POST is sent once: {hooks:?}");
    let stored = store.load(&call).await.unwrap().unwrap();
    let attempt = stored.attempt.as_ref().unwrap();
    assert_eq!(attempt.info.id, info.id);
    assert!(
        attempt.machine.outcome().is_some_and(|o| o.is_completed()),
        "{attempt:?}"
    );
    bot.shutdown().await;
    server.abort();
    emu.shutdown().await;
}
