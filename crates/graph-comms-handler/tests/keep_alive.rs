//! Keep-alive on the emulator's compressed clock: a kept-alive call outlives
//! 50 emulated minutes, a call without keep-alive ends 408/8537, and a 404 on
//! keep-alive ends the call's state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, Hook, Recorder, WAIT, short_timings};
use graph_comms_emulator::{DeliveryFaults, Endpoint, IncomingCall};
use graph_comms_handler::model::{CallId, CallState};

fn keep_alives(h: &Harness, call: &CallId) -> usize {
    h.emu
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::KeepAlive && r.call_id.as_ref() == Some(call) && r.status == 200)
        .count()
}

async fn wait_for_new_keep_alive(h: &Harness, call: &CallId, seen: usize) -> usize {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = keep_alives(h, call);
        if now > seen {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "no keepAlive after {seen}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_keeps_calls_past_45_minutes_and_its_absence_ends_them() {
    let mut recorder = Recorder::new(|_, _| None);
    recorder.no_keep_alive_for = Some("idler".into());
    let handler = Arc::new(recorder);
    let timings = short_timings().keep_alive_interval(Duration::from_millis(100));
    let h = Harness::start(handler.clone(), timings).await;
    let keeper = h.call_from("keeper").await;
    let idler = h.call_from("idler").await;
    for call in [&keeper, &idler] {
        h.wait_state(call, CallState::Established).await;
        handler.wait_for(call, |hooks| hooks.contains(&Hook::Established)).await;
    }
    let mut seen = wait_for_new_keep_alive(&h, &keeper, 0).await;
    // Five steps of ten emulated minutes, each followed by a real keep-alive.
    for _ in 0..5 {
        h.emu.advance_clock(Duration::from_secs(10 * 60));
        seen = wait_for_new_keep_alive(&h, &keeper, seen).await;
    }
    let hooks = handler.wait_terminated(&idler).await;
    assert_eq!(hooks.last(), Some(&Hook::Terminated { subcode: Some(8537) }));
    assert_eq!(keep_alives(&h, &idler), 0, "keep-alive was disabled for the idler");
    assert_eq!(h.emu.call_state(&keeper), Some(CallState::Established));
    assert!(
        !handler
            .hooks(&keeper)
            .iter()
            .any(|h| matches!(h, Hook::Terminated { .. }))
    );
    // The emulator logs the sixth keepAlive before the bot counts its answer.
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.bot.metrics().keep_alives_sent < 6 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(h.bot.metrics().keep_alives_sent >= 6);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_not_found_ends_the_call_state() {
    let handler = Arc::new(Recorder::new(|_, _| None));
    let timings = short_timings().keep_alive_interval(Duration::from_millis(100));
    let h = Harness::start(handler.clone(), timings).await;
    // The end notification is lost, so only the keep-alive's 404 tells the bot.
    let faults = DeliveryFaults {
        drop: vec![CallState::Terminated],
        ..DeliveryFaults::default()
    };
    let call = h
        .place(IncomingCall::from_user(&h.app, &h.callback, "vanishing", "x").faults(faults))
        .await;
    handler
        .wait_for(&call, |hooks| hooks.contains(&Hook::Established))
        .await;
    h.client.hang_up(&call).await.unwrap();
    let hooks = handler.wait_terminated(&call).await;
    assert_eq!(hooks.last(), Some(&Hook::Terminated { subcode: None }));
    assert!(
        h.emu
            .requests()
            .iter()
            .any(|r| r.endpoint == Endpoint::KeepAlive && r.call_id.as_ref() == Some(&call) && r.status == 404)
    );
    assert_eq!(h.bot.metrics().calls_active, 0);
    assert_eq!(
        h.bot.metrics().keep_alive_failures,
        0,
        "a 404 ends the call; it is not a failure"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_keep_alive_is_counted_and_retried() {
    use graph_comms_emulator::{ApiFault, FaultKind};
    let handler = Arc::new(Recorder::new(|_, _| None));
    let timings = short_timings()
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_retry(Duration::from_millis(100));
    let h = Harness::start(handler.clone(), timings).await;
    // The first keep-alive is refused (403, not retried by the client).
    h.emu.inject_api_fault(ApiFault {
        endpoint: Endpoint::KeepAlive,
        kind: FaultKind::Status(403),
        count: 1,
    });
    let call = h.call_from("steady").await;
    handler
        .wait_for(&call, |hooks| hooks.contains(&Hook::Established))
        .await;
    wait_for_new_keep_alive(&h, &call, 0).await;
    let metrics = h.bot.metrics();
    assert_eq!(metrics.keep_alive_failures, 1, "{metrics:?}");
    assert!(metrics.keep_alives_sent >= 1, "{metrics:?}");
    assert_eq!(h.emu.call_state(&call), Some(CallState::Established));
    h.stop().await;
}
