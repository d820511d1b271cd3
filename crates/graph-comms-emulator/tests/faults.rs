//! Delivery faults (reorder, duplicate, batch, drop, retries), API faults (429, status, delay),
//! and 300 concurrent transferred calls without cross-talk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use graph_comms_emulator::{ApiFault, DeliveryFaults, EmulatorConfig, Endpoint, FaultKind, IncomingCall};
use graph_comms_model::{CallId, CallState};
use serde_json::json;

async fn incoming(
    emu: &graph_comms_emulator::Emulator,
    recv: &CallbackReceiver,
    path: &str,
    faults: DeliveryFaults,
) -> CallId {
    let app = emu.default_app();
    let id = emu
        .place_incoming_call(
            IncomingCall::from_user(&app, recv.url_for(&format!("{path}/global")), "u", "U").faults(faults),
        )
        .await
        .unwrap();
    recv.wait_for_on(&format!("{path}/global"), 1, WAIT).await;
    id
}

#[tokio::test]
async fn reorder_swaps_adjacent_notifications_but_not_the_final_state() {
    let emu = start().await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let recv = CallbackReceiver::start().await;
    let id = incoming(
        &emu,
        &recv,
        "/o",
        DeliveryFaults {
            reorder: true,
            ..Default::default()
        },
    )
    .await;
    answer(&emu, &bot, &recv, "/o", &id).await;
    assert_eq!(bot.action(&id, "transfer", blind_transfer("t")).await.0, 202);
    let states = wait_states(&recv, "/o", 5).await;
    assert_eq!(
        states,
        [
            st("updated", Some("established")),
            st("updated", Some("establishing")),
            st("updated", Some("transferAccepted")),
            st("updated", Some("transferring")),
            st("deleted", Some("terminated")),
        ]
    );
    emu.wait_for_state(&id, CallState::Terminated, WAIT).await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn duplicate_posts_every_notification_twice() {
    let emu = start().await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let recv = CallbackReceiver::start().await;
    let id = incoming(
        &emu,
        &recv,
        "/dup",
        DeliveryFaults {
            duplicate: true,
            ..Default::default()
        },
    )
    .await;
    answer(&emu, &bot, &recv, "/dup", &id).await;
    let hits = recv.wait_for_on("/dup", 4, WAIT).await;
    assert_eq!(hits[0].body, hits[1].body);
    assert_eq!(hits[2].body, hits[3].body);
    assert_eq!(hits[0].states(), [st("updated", Some("establishing"))]);
    assert_eq!(hits[2].states(), [st("updated", Some("established"))]);
    assert_eq!(recv.wait_for_on("/dup/global", 2, WAIT).await.len(), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn batch_puts_one_actions_notifications_in_one_post() {
    let emu = start().await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let recv = CallbackReceiver::start().await;
    let id = incoming(
        &emu,
        &recv,
        "/b",
        DeliveryFaults {
            batch: true,
            ..Default::default()
        },
    )
    .await;
    let body = json!({ "callbackUri": recv.url_for("/b"), "mediaConfig": {}, "acceptedModalities": ["audio"] });
    assert_eq!(bot.action(&id, "answer", body).await.0, 202);
    emu.wait_for_state(&id, CallState::Established, WAIT).await.unwrap();
    let hits = recv.wait_for_on("/b", 1, WAIT).await;
    assert_eq!(
        hits[0].states(),
        [st("updated", Some("establishing")), st("updated", Some("established"))]
    );
    assert_eq!(bot.action(&id, "transfer", blind_transfer("t")).await.0, 202);
    let hits = recv.wait_for_on("/b", 2, WAIT).await;
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[1].notifications().value.len(), 3);
    emu.shutdown().await;
}

#[tokio::test]
async fn drop_never_delivers_the_first_notification_of_a_state() {
    let emu = start().await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let recv = CallbackReceiver::start().await;
    let faults = DeliveryFaults {
        drop: vec![CallState::Established],
        ..Default::default()
    };
    let id = incoming(&emu, &recv, "/x", faults).await;
    let body = json!({ "callbackUri": recv.url_for("/x"), "mediaConfig": {}, "acceptedModalities": ["audio"] });
    assert_eq!(bot.action(&id, "answer", body).await.0, 202);
    emu.wait_for_state(&id, CallState::Established, WAIT).await.unwrap();
    assert_eq!(bot.action(&id, "transfer", blind_transfer("t")).await.0, 202);
    let states = wait_states(&recv, "/x", 4).await;
    assert_eq!(
        states,
        [
            st("updated", Some("establishing")),
            st("updated", Some("transferring")),
            st("updated", Some("transferAccepted")),
            st("deleted", Some("terminated")),
        ]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_and_logged() {
    // Four attempts 20 ms apart (doubling), well inside the redelivery window.
    let config = EmulatorConfig {
        delivery_attempts: 4,
        ..quick_retries()
    };
    let emu = graph_comms_emulator::Emulator::start(config).await.unwrap();
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = incoming(&emu, &recv, "/rt", DeliveryFaults::default()).await;
    recv.fail_next(2);
    let body = json!({ "callbackUri": recv.url_for("/rt"), "mediaConfig": {}, "acceptedModalities": ["audio"] });
    assert_eq!(bot.action(&id, "answer", body).await.0, 202);
    let hits = recv.wait_for_on("/rt", 4, WAIT).await;
    assert_eq!(hits[0].body, hits[1].body, "a retry re-sends the same body");
    assert_eq!(hits[0].body, hits[2].body);
    assert_eq!(hits[3].states(), [st("updated", Some("established"))]);
    // The emulator logs an attempt once the receiver has answered it, just after the receiver saw it.
    let log = wait_logged(&emu, &id, 5).await;
    let attempts: Vec<(u32, Option<u16>)> = log.iter().map(|n| (n.attempt, n.response_status)).collect();
    assert_eq!(
        attempts,
        [
            (1, Some(202)),
            (1, Some(500)),
            (2, Some(500)),
            (3, Some(202)),
            (1, Some(202))
        ]
    );

    // A receiver that always fails gets delivery_attempts tries per notification.
    recv.respond_with(503);
    assert_eq!(bot.action(&id, "keepAlive", json!({})).await.0, 200);
    let (status, _, _) = bot.send("DELETE", &format!("/communications/calls/{id}"), None).await;
    assert_eq!(status, 204);
    let hits = recv.wait_for_on("/rt", 12, WAIT).await;
    assert_eq!(hits.len(), 12);
    emu.wait_for_state(&id, CallState::Terminated, WAIT).await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn delayed_deliveries_still_arrive_in_order() {
    let emu = start().await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let recv = CallbackReceiver::start().await;
    let faults = DeliveryFaults {
        delay: Duration::from_millis(30),
        ..Default::default()
    };
    let id = incoming(&emu, &recv, "/dl", faults).await;
    answer(&emu, &bot, &recv, "/dl", &id).await;
    let states = wait_states(&recv, "/dl", 2).await;
    assert_eq!(
        states,
        [st("updated", Some("establishing")), st("updated", Some("established"))]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn api_faults_throttle_fail_and_delay() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = incoming(&emu, &recv, "/af", DeliveryFaults::default()).await;
    emu.inject_api_fault(ApiFault {
        endpoint: Endpoint::Answer,
        kind: FaultKind::TooManyRequests {
            retry_after: "0.2".into(),
        },
        count: 1,
    });
    emu.inject_api_fault(ApiFault {
        endpoint: Endpoint::Any,
        kind: FaultKind::Status(503),
        count: 1,
    });
    let body = json!({ "callbackUri": recv.url_for("/af"), "mediaConfig": {}, "acceptedModalities": ["audio"] });
    let (status, headers, error) = bot
        .send(
            "POST",
            &format!("/communications/calls/{id}/answer"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "0.2");
    assert_eq!(error["error"]["code"], "TooManyRequests");
    assert_eq!(
        error["error"]["innerError"]["request-id"],
        headers["request-id"].to_str().unwrap()
    );
    assert_eq!(
        emu.call_state(&id),
        Some(CallState::Incoming),
        "a throttled request is not processed"
    );
    let (status, _, error) = bot
        .send(
            "POST",
            &format!("/communications/calls/{id}/answer"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    assert_eq!(emu.call_state(&id), Some(CallState::Incoming));

    emu.inject_api_fault(ApiFault {
        endpoint: Endpoint::Answer,
        kind: FaultKind::Delay(Duration::from_secs(3)),
        count: 1,
    });
    let late = tokio::spawn({
        let http = bot.http.clone();
        let url = format!("{}/communications/calls/{id}/answer", emu.graph_base_url());
        let token = bot.token.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    emu.wait_for_state(&id, CallState::Established, WAIT).await.unwrap();
    assert!(!late.is_finished(), "processed before the delayed response");
    assert_eq!(late.await.unwrap(), 202);

    emu.inject_api_fault(ApiFault {
        endpoint: Endpoint::Token,
        kind: FaultKind::TooManyRequests {
            retry_after: "Wed, 21 Oct 2015 07:28:00 GMT".into(),
        },
        count: 1,
    });
    let response = access_token(&emu, &app).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "Wed, 21 Oct 2015 07:28:00 GMT");
    assert_eq!(access_token(&emu, &app).await.status(), 200);

    let statuses: Vec<(Endpoint, u16)> = emu.requests().iter().map(|r| (r.endpoint, r.status)).collect();
    assert_eq!(
        statuses[1..],
        [
            (Endpoint::Answer, 429),
            (Endpoint::Answer, 503),
            (Endpoint::Answer, 202),
            (Endpoint::Token, 429),
            (Endpoint::Token, 200)
        ]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn three_hundred_concurrent_transfers_do_not_cross_talk() {
    const CALLS: usize = 300;
    let emu = start().await;
    let app = emu.default_app();
    let bot = std::sync::Arc::new(Bot::new(&emu, &app).await);
    let recv = std::sync::Arc::new(CallbackReceiver::start().await);
    let mut tasks = Vec::new();
    for n in 0..CALLS {
        let (emu, bot, recv, app) = (emu.clone(), bot.clone(), recv.clone(), app.clone());
        tasks.push(tokio::spawn(async move {
            let path = format!("/n{n}");
            let id = emu
                .place_incoming_call(IncomingCall::from_user(
                    &app,
                    recv.url_for(&format!("{path}/global")),
                    &format!("user-{n}"),
                    "U",
                ))
                .await
                .unwrap();
            answer(&emu, &bot, &recv, &path, &id).await;
            assert_eq!(
                bot.action(&id, "transfer", blind_transfer(&format!("target-{n}")))
                    .await
                    .0,
                202
            );
            emu.wait_for_state(&id, CallState::Terminated, Duration::from_secs(30))
                .await
                .unwrap();
            (path, id)
        }));
    }
    let mut first_auth = None;
    for task in tasks {
        let (path, id) = tokio::time::timeout(Duration::from_secs(45), task)
            .await
            .unwrap()
            .unwrap();
        let global = recv.received_on(&format!("{path}/global"));
        assert_eq!(global.len(), 1);
        assert_eq!(global[0].call_id(), id);
        let hits = recv.wait_for_on(&path, 5, WAIT).await;
        assert_eq!(hits.len(), 5, "{path}");
        let states: Vec<_> = hits.iter().flat_map(Received::states).collect();
        assert_eq!(
            states,
            [
                st("updated", Some("establishing")),
                st("updated", Some("established")),
                st("updated", Some("transferring")),
                st("updated", Some("transferAccepted")),
                st("deleted", Some("terminated")),
            ],
            "{path}"
        );
        for hit in &hits {
            assert_eq!(hit.call_id(), id, "{path} got another call's notification");
        }
        let auth = hits[0].authorization.clone().unwrap();
        first_auth.get_or_insert(auth);
    }
    verify(&emu, &app, &first_auth.unwrap()).await;
    emu.shutdown().await;
}
