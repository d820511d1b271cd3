//! Targets that ring before they answer or give up, what `GET` says meanwhile, and incoming
//! calls that nobody answers in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use graph_comms_emulator::{Emulator, EmulatorConfig, IncomingCall, TargetBehavior};
use graph_comms_model::{CallId, CallState};
use serde_json::{Value, json};

/// The call's state as `GET /communications/calls/{id}` reports it.
async fn graph_state(bot: &Bot, id: &CallId) -> String {
    let (status, _, body) = bot.send("GET", &format!("/communications/calls/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["state"].as_str().unwrap().to_owned()
}

/// `(code, subcode)` of the `resultInfo` in a notification.
fn result_of(received: &Received) -> (Option<i32>, Option<i32>) {
    let result = received.notifications().value[0]
        .call()
        .unwrap()
        .result_info
        .clone()
        .unwrap();
    (result.code, result.subcode)
}

#[tokio::test]
async fn a_target_that_rings_then_answers_completes_the_transfer() {
    let emu = start().await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let recv = CallbackReceiver::start().await;
    emu.script_target(
        "ringer",
        TargetBehavior::AcceptAfter {
            after: Duration::from_millis(600),
        },
    );
    let id = established_call(&emu, &bot, &recv, "/r").await;
    let sent = Instant::now();
    assert_eq!(bot.action(&id, "transfer", blind_transfer("ringer")).await.0, 202);
    // Under way as soon as Graph accepted the request, before any notification.
    assert_eq!(graph_state(&bot, &id).await, "transferring");
    assert_eq!(emu.call_state(&id), Some(CallState::Transferring));
    let (status, error) = bot.action(&id, "transfer", blind_transfer("ringer")).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("BadRequest")),
        "a second transfer while one is under way"
    );
    let states = wait_states(&recv, "/r", 3).await;
    assert_eq!(states[2], st("updated", Some("transferring")));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(graph_state(&bot, &id).await, "transferring", "still ringing");
    assert_eq!(recv.received_on("/r").len(), 3, "nothing more while it rings");

    let states = wait_states(&recv, "/r", 5).await;
    assert!(sent.elapsed() >= Duration::from_millis(600));
    assert_eq!(
        states[2..],
        [
            st("updated", Some("transferring")),
            st("updated", Some("transferAccepted")),
            st("deleted", Some("terminated")),
        ]
    );
    assert_eq!(result_of(&recv.received_on("/r")[4]), (Some(0), Some(7015)));
    emu.wait_for_state(&id, CallState::Terminated, WAIT).await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn a_target_that_does_not_answer_rings_then_the_call_is_back_to_established() {
    let emu = start().await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let recv = CallbackReceiver::start().await;
    emu.script_target(
        "silent",
        TargetBehavior::NoAnswer {
            after: Duration::from_millis(500),
        },
    );
    let id = established_call(&emu, &bot, &recv, "/n").await;
    assert_eq!(bot.action(&id, "transfer", blind_transfer("silent")).await.0, 202);
    assert_eq!(graph_state(&bot, &id).await, "transferring");
    wait_states(&recv, "/n", 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(graph_state(&bot, &id).await, "transferring", "still ringing");
    assert_eq!(bot.action(&id, "transfer", blind_transfer("other")).await.0, 400);

    let states = wait_states(&recv, "/n", 4).await;
    assert_eq!(states[3], st("updated", Some("established")));
    assert_eq!(result_of(&recv.received_on("/n")[3]), (Some(500), Some(7000)));
    emu.wait_for_state(&id, CallState::Established, WAIT).await.unwrap();
    assert_eq!(graph_state(&bot, &id).await, "established");
    // Established again: a new transfer is accepted.
    assert_eq!(bot.action(&id, "transfer", blind_transfer("other")).await.0, 202);
    assert_eq!(graph_state(&bot, &id).await, "transferring");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_consultative_transfer_to_a_ringing_target() {
    let emu = start().await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let recv = CallbackReceiver::start().await;
    emu.script_target(
        "ringer-c",
        TargetBehavior::AcceptAfter {
            after: Duration::from_millis(400),
        },
    );
    let a = established_call(&emu, &bot, &recv, "/a").await;

    // The consultation call rings too: `establishing` until the target answers.
    let placed = Instant::now();
    let (status, created) = bot
        .post(
            "/communications/calls",
            json!({
                "callbackUri": recv.url_for("/b"),
                "targets": [{ "identity": { "user": { "id": "ringer-c" } } }],
                "requestedModalities": ["audio"],
                "mediaConfig": { "@odata.type": "#microsoft.graph.serviceHostedMediaConfig" },
            }),
        )
        .await;
    assert_eq!(status, 201);
    let b = CallId::new(created["id"].as_str().unwrap());
    wait_states(&recv, "/b", 1).await;
    assert_eq!(graph_state(&bot, &b).await, "establishing");
    emu.wait_for_state(&b, CallState::Established, WAIT).await.unwrap();
    assert!(placed.elapsed() >= Duration::from_millis(400));

    let mut body = blind_transfer("ringer-c");
    body["transferTarget"]["replacesCallId"] = json!(b.as_str());
    assert_eq!(bot.action(&a, "transfer", body).await.0, 202);
    assert_eq!(graph_state(&bot, &a).await, "transferring");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(graph_state(&bot, &a).await, "transferring");
    assert_eq!(
        emu.call_state(&b),
        Some(CallState::Established),
        "the replaced call lasts until the target answers"
    );
    let states = wait_states(&recv, "/a", 5).await;
    assert_eq!(
        states[2..],
        [
            st("updated", Some("transferring")),
            st("updated", Some("transferAccepted")),
            st("deleted", Some("terminated"))
        ]
    );
    emu.wait_for_state(&b, CallState::Terminated, WAIT).await.unwrap();
    let b_states = wait_states(&recv, "/b", 3).await;
    assert_eq!(b_states[2], st("deleted", Some("terminated")));
    emu.shutdown().await;
}

#[tokio::test]
async fn incoming_calls_nobody_answers_end_after_the_answer_timeout() {
    let emu = Emulator::start(EmulatorConfig {
        incoming_answer_timeout: Duration::from_millis(500),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let placed = Instant::now();
    let ignored = emu
        .place_incoming_call(IncomingCall::from_user(&app, recv.url_for("/i/global"), "u", "U"))
        .await
        .unwrap();
    let answered = established_call(&emu, &bot, &recv, "/ok").await;

    let states = wait_states(&recv, "/i/global", 2).await;
    assert!(placed.elapsed() >= Duration::from_millis(500));
    assert_eq!(
        states,
        [st("created", Some("incoming")), st("deleted", Some("terminated"))]
    );
    let end = &recv.received_on("/i/global")[1];
    assert_eq!(result_of(end), (Some(408), Some(1106)));
    assert_eq!(
        end.json()["value"][0]["resourceData"]["resultInfo"]["subcode"],
        graph_comms_model::subcodes::CALL_ACCEPTANCE_TIMEOUT
    );
    emu.wait_for_state(&ignored, CallState::Terminated, WAIT).await.unwrap();
    let body = json!({ "callbackUri": recv.url_for("/i"), "mediaConfig": {}, "acceptedModalities": ["audio"] });
    let (status, error) = bot.action(&ignored, "answer", body).await;
    assert_eq!((status, error["error"]["code"].as_str()), (404, Some("itemNotFound")));

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(emu.call_state(&answered), Some(CallState::Established));
    assert_eq!(recv.received_on("/ok/global").len(), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_answer_timeout_is_per_call_and_on_the_emulator_clock() {
    let emu = start().await;
    let app = emu.default_app();
    let recv = CallbackReceiver::start().await;
    let place = |path: &str, timeout: Option<Duration>| {
        let call = IncomingCall::from_phone(&app, recv.url_for(path), "+14255550100");
        match timeout {
            Some(timeout) => call.answer_timeout(timeout),
            None => call,
        }
    };
    let quick = emu
        .place_incoming_call(place("/quick", Some(Duration::from_millis(200))))
        .await
        .unwrap();
    let usual = emu.place_incoming_call(place("/usual", None)).await.unwrap();
    let patient = emu
        .place_incoming_call(place("/patient", Some(Duration::from_secs(60))))
        .await
        .unwrap();
    emu.wait_for_state(&quick, CallState::Terminated, WAIT).await.unwrap();
    assert_eq!(emu.call_state(&usual), Some(CallState::Incoming));

    // Fifteen seconds on the emulator clock end the call with the default timeout only.
    emu.advance_clock(Duration::from_secs(16));
    assert_eq!(emu.call_state(&usual), Some(CallState::Terminated));
    assert_eq!(emu.call_state(&patient), Some(CallState::Incoming));
    for path in ["/quick", "/usual"] {
        let states = wait_states(&recv, path, 2).await;
        assert_eq!(states[1], st("deleted", Some("terminated")), "{path}");
        assert_eq!(result_of(&recv.received_on(path)[1]), (Some(408), Some(1106)), "{path}");
    }
    emu.advance_clock(Duration::from_secs(60));
    assert_eq!(emu.call_state(&patient), Some(CallState::Terminated));
    emu.shutdown().await;
}

#[tokio::test]
async fn ringing_targets_and_answer_timeouts_over_the_control_api() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let http = reqwest::Client::new();
    let control = format!("{}/_emulator", emu.base_url());
    let target = json!({ "targetId": "ctl-ringer", "behavior": { "kind": "acceptAfter", "afterMs": 300 } });
    let status = http
        .post(format!("{control}/targets"))
        .json(&target)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let id = established_call(&emu, &bot, &recv, "/c").await;
    assert_eq!(bot.action(&id, "transfer", blind_transfer("ctl-ringer")).await.0, 202);
    wait_states(&recv, "/c", 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(graph_state(&bot, &id).await, "transferring");
    assert_eq!(wait_states(&recv, "/c", 5).await[4], st("deleted", Some("terminated")));

    let mut call = serde_json::to_value(IncomingCall::from_user(&app, recv.url_for("/t"), "u", "U")).unwrap();
    call["answerTimeoutMs"] = json!(200);
    let placed: Value = http
        .post(format!("{control}/calls"))
        .json(&call)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = CallId::new(placed["callId"].as_str().unwrap());
    emu.wait_for_state(&id, CallState::Terminated, WAIT).await.unwrap();
    assert_eq!(
        result_of(&recv.wait_for_on("/t", 2, WAIT).await[1]),
        (Some(408), Some(1106))
    );

    let behavior: TargetBehavior = serde_json::from_value(target["behavior"].clone()).unwrap();
    assert_eq!(
        behavior,
        TargetBehavior::AcceptAfter {
            after: Duration::from_millis(300)
        }
    );
    let parsed: IncomingCall = serde_json::from_value(call).unwrap();
    assert_eq!(parsed.answer_timeout, Some(Duration::from_millis(200)));
    emu.shutdown().await;
}
