//! Delivery like Graph's: message-id headers, redelivery with backoff, `Retry-After` and a
//! window, and late duplicates. The notifications go to a recorder that keeps headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::recorder::{Hit, Recorder, Reply};
use common::*;
use graph_comms_emulator::{DeliveryFaults, DuplicateLater, Emulator, EmulatorConfig, IncomingCall};
use graph_comms_model::{CallId, CallState};
use serde_json::{Value, json};

async fn emulator(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.unwrap()
}

/// Places a call whose `created` notification goes to `{path}/global`.
async fn place(emu: &Emulator, rec: &Recorder, path: &str, faults: DeliveryFaults) -> CallId {
    let app = emu.default_app();
    let call = IncomingCall::from_user(&app, rec.url_for(&format!("{path}/global")), "u", "U").faults(faults);
    emu.place_incoming_call(call).await.unwrap()
}

async fn answer_to(bot: &Bot, rec: &Recorder, path: &str, id: &CallId) {
    let body = json!({ "callbackUri": rec.url_for(path), "mediaConfig": {}, "acceptedModalities": ["audio"] });
    assert_eq!(bot.action(id, "answer", body).await.0, 202);
}

fn ids(hits: &[Hit]) -> Vec<String> {
    hits.iter().map(|h| h.message_id().expect("a message id")).collect()
}

fn gaps(hits: &[Hit]) -> Vec<Duration> {
    hits.windows(2).map(|w| w[1].at - w[0].at).collect()
}

fn st(change: &str, state: &str) -> (String, Option<String>) {
    (change.to_owned(), Some(state.to_owned()))
}

#[tokio::test]
async fn every_message_has_an_id_that_its_retries_and_copies_repeat() {
    let emu = emulator(quick_retries()).await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let rec = Recorder::start().await;
    // The first POST (the created notification) is refused once.
    rec.script([Reply::status(500)]);
    let faults = DeliveryFaults {
        duplicate: true,
        ..DeliveryFaults::default()
    };
    let id = place(&emu, &rec, "/m", faults).await;
    let created = rec.wait_for_on("/m/global", 3, WAIT).await;
    let created_id = created[0].message_id().unwrap();
    assert!(uuid::Uuid::parse_str(&created_id).is_ok(), "{created_id}");
    assert_eq!(
        ids(&created),
        vec![created_id.clone(); 3],
        "the retry and the duplicate repeat the id"
    );
    assert!(created.iter().all(|h| h.body == created[0].body));

    answer_to(&bot, &rec, "/m", &id).await;
    let hits = rec.wait_for_on("/m", 4, WAIT).await;
    let answer_ids = ids(&hits);
    assert_eq!(answer_ids[0], answer_ids[1], "a duplicate has its original's id");
    assert_eq!(answer_ids[2], answer_ids[3]);
    assert_ne!(answer_ids[0], answer_ids[2], "one id per message");
    assert_ne!(answer_ids[0], created_id);

    // The chain id is the call's callChainId, on every message.
    let (status, _, resource) = bot.send("GET", &format!("/communications/calls/{id}"), None).await;
    assert_eq!(status, 200);
    let chain = resource["callChainId"].as_str().unwrap();
    for hit in created.iter().chain(&hits) {
        assert_eq!(hit.chain_id().as_deref(), Some(chain));
    }

    // The log records the id each attempt carried.
    let logged = wait_logged(&emu, &id, 7).await;
    let logged: Vec<(u32, Option<u16>, String)> = logged
        .iter()
        .map(|n| (n.attempt, n.response_status, n.message_id.clone().unwrap()))
        .collect();
    assert_eq!(
        logged,
        [
            (1, Some(500), created_id.clone()),
            (2, Some(202), created_id.clone()),
            (1, Some(202), created_id.clone()),
            (1, Some(202), answer_ids[0].clone()),
            (1, Some(202), answer_ids[0].clone()),
            (1, Some(202), answer_ids[2].clone()),
            (1, Some(202), answer_ids[2].clone()),
        ]
    );

    // A call the bot places has a chain too.
    let (status, created_call) = bot
        .post(
            "/communications/calls",
            json!({
                "callbackUri": rec.url_for("/out"),
                "targets": [{ "identity": { "user": { "id": "someone" } } }],
                "requestedModalities": ["audio"],
                "mediaConfig": { "@odata.type": "#microsoft.graph.serviceHostedMediaConfig" },
            }),
        )
        .await;
    assert_eq!(status, 201);
    let out = rec.wait_for_on("/out", 2, WAIT).await;
    assert_eq!(out[0].chain_id().as_deref(), created_call["callChainId"].as_str());
    assert_ne!(out[0].message_id(), out[1].message_id());
    emu.shutdown().await;
}

#[tokio::test]
async fn message_ids_can_be_left_out_per_call_or_for_the_emulator() {
    let emu = emulator(EmulatorConfig::default()).await;
    let rec = Recorder::start().await;
    let plain = place(
        &emu,
        &rec,
        "/plain",
        DeliveryFaults {
            omit_message_ids: true,
            ..DeliveryFaults::default()
        },
    )
    .await;
    let with_ids = place(&emu, &rec, "/ids", DeliveryFaults::default()).await;
    let hit = &rec.wait_for_on("/plain/global", 1, WAIT).await[0];
    assert_eq!((hit.message_id(), hit.chain_id()), (None, None));
    assert!(hit.headers.get("authorization").is_some());
    assert_eq!(wait_logged(&emu, &plain, 1).await[0].message_id, None);
    let hit = &rec.wait_for_on("/ids/global", 1, WAIT).await[0];
    assert!(hit.message_id().is_some() && hit.chain_id().is_some());
    assert_eq!(wait_logged(&emu, &with_ids, 1).await[0].message_id, hit.message_id());
    emu.shutdown().await;

    let emu = emulator(EmulatorConfig {
        message_ids: false,
        ..EmulatorConfig::default()
    })
    .await;
    let id = place(&emu, &rec, "/off", DeliveryFaults::default()).await;
    let hit = &rec.wait_for_on("/off/global", 1, WAIT).await[0];
    assert_eq!((hit.message_id(), hit.chain_id()), (None, None));
    assert_eq!(wait_logged(&emu, &id, 1).await[0].message_id, None);
    emu.shutdown().await;
}

#[tokio::test]
async fn refused_deliveries_back_off_exponentially_up_to_the_longest_interval() {
    let emu = emulator(EmulatorConfig {
        delivery_retry_initial: Duration::from_millis(100),
        delivery_retry_max_interval: Duration::from_millis(200),
        delivery_attempts: 5,
        ..EmulatorConfig::default()
    })
    .await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let rec = Recorder::start().await;
    rec.respond_with(500);
    let id = place(&emu, &rec, "/b", DeliveryFaults::default()).await;
    let hits = rec.wait_for_on("/b/global", 5, WAIT).await;
    let expected = [100, 200, 200, 200].map(Duration::from_millis);
    for (gap, wait) in gaps(&hits).into_iter().zip(expected) {
        // Never early; later only by the machine's slowness (an uncapped wait would be 400 ms, 800 ms).
        assert!(
            gap >= wait && gap < wait + Duration::from_millis(300),
            "{gap:?} for {wait:?}"
        );
    }
    let logged = wait_logged(&emu, &id, 5).await;
    let attempts: Vec<(u32, Option<u16>)> = logged.iter().map(|n| (n.attempt, n.response_status)).collect();
    assert_eq!(attempts, (1..=5).map(|n| (n, Some(500))).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rec.hits_on("/b/global").len(), 5, "delivery_attempts caps the attempts");

    // Given up: the call's next notifications flow.
    rec.respond_with(202);
    answer_to(&bot, &rec, "/b", &id).await;
    emu.wait_for_state(&id, CallState::Established, WAIT).await.unwrap();
    assert_eq!(rec.wait_for_on("/b", 2, WAIT).await.len(), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn retry_after_on_503_and_429_replaces_the_backoff() {
    let emu = emulator(EmulatorConfig {
        delivery_retry_max_interval: Duration::from_millis(20),
        ..quick_retries()
    })
    .await;
    let rec = Recorder::start().await;
    rec.script([
        // Only 429 and 503 name a wait; a 500's Retry-After is ignored.
        Reply::retry_after(500, "5"),
        Reply::retry_after(503, "0.3"),
        Reply::retry_after(429, "date+2"),
    ]);
    let id = place(&emu, &rec, "/ra", DeliveryFaults::default()).await;
    let hits = rec.wait_for_on("/ra/global", 4, WAIT).await;
    let gaps = gaps(&hits);
    assert!(gaps[0] < Duration::from_millis(500), "{gaps:?}");
    assert!(
        gaps[1] >= Duration::from_millis(300) && gaps[1] < Duration::from_millis(800),
        "{gaps:?}"
    );
    // An HTTP date has whole seconds: two seconds from the answer is one to two seconds away.
    assert!(
        gaps[2] >= Duration::from_millis(900) && gaps[2] < Duration::from_millis(2600),
        "{gaps:?}"
    );
    assert_eq!(ids(&hits), vec![hits[0].message_id().unwrap(); 4]);
    let logged = wait_logged(&emu, &id, 4).await;
    let statuses: Vec<Option<u16>> = logged.iter().map(|n| n.response_status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(429), Some(202)]);
    emu.shutdown().await;
}

#[tokio::test]
async fn redelivery_ends_with_the_window_and_the_queue_goes_on() {
    let emu = emulator(EmulatorConfig {
        delivery_retry_initial: Duration::from_millis(100),
        delivery_retry_window: Duration::from_millis(350),
        ..EmulatorConfig::default()
    })
    .await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let rec = Recorder::start().await;
    // A Retry-After past the window is cut to the window: one more attempt when it closes.
    rec.script([Reply::retry_after(503, "10"), Reply::retry_after(503, "10")]);
    let id = place(&emu, &rec, "/w", DeliveryFaults::default()).await;
    let hits = rec.wait_for_on("/w/global", 2, WAIT).await;
    let gap = hits[1].at - hits[0].at;
    assert!(
        gap >= Duration::from_millis(340) && gap < Duration::from_millis(900),
        "{gap:?}"
    );
    let logged = wait_logged(&emu, &id, 2).await;
    assert_eq!(
        logged.iter().map(|n| n.response_status).collect::<Vec<_>>(),
        [Some(503), Some(503)]
    );
    answer_to(&bot, &rec, "/w", &id).await;
    let states: Vec<_> = rec
        .wait_for_on("/w", 2, WAIT)
        .await
        .iter()
        .flat_map(Hit::states)
        .collect();
    assert_eq!(states, [st("updated", "establishing"), st("updated", "established")]);
    assert_eq!(rec.hits_on("/w/global").len(), 2, "given up after the window");

    emu.shutdown().await;

    // The computed backoff stops at the window too: attempts at 0 and 100 ms, then the 200 ms
    // wait is cut to the window's end (250 ms), and the notification is given up.
    let emu = emulator(EmulatorConfig {
        delivery_retry_initial: Duration::from_millis(100),
        delivery_retry_window: Duration::from_millis(250),
        ..EmulatorConfig::default()
    })
    .await;
    rec.respond_with(500);
    place(&emu, &rec, "/w2", DeliveryFaults::default()).await;
    rec.wait_for_on("/w2/global", 3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits = rec.hits_on("/w2/global");
    assert_eq!(hits.len(), 3, "{:?}", gaps(&hits));
    let span = hits[2].at - hits[0].at;
    assert!(
        span >= Duration::from_millis(240) && span < Duration::from_millis(400),
        "{span:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn late_duplicates_land_after_later_notifications_even_once_the_call_ended() {
    let emu = emulator(quick_retries()).await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let rec = Recorder::start().await;
    let faults = DeliveryFaults {
        duplicate_later: Some(DuplicateLater::of(Duration::from_millis(400), [CallState::Established])),
        ..DeliveryFaults::default()
    };
    let id = place(&emu, &rec, "/late", faults).await;
    rec.wait_for_on("/late/global", 1, WAIT).await;
    answer_to(&bot, &rec, "/late", &id).await;
    emu.wait_for_state(&id, CallState::Established, WAIT).await.unwrap();
    assert_eq!(bot.action(&id, "transfer", blind_transfer("t")).await.0, 202);
    rec.wait_for_on("/late", 5, WAIT).await;
    assert_eq!(emu.call_state(&id), Some(CallState::Terminated));
    // The copy is refused once and redelivered like any notification.
    rec.script([Reply::status(500)]);
    let hits = rec.wait_for_on("/late", 7, WAIT).await;
    let states: Vec<_> = hits.iter().flat_map(Hit::states).collect();
    assert_eq!(
        states,
        [
            st("updated", "establishing"),
            st("updated", "established"),
            st("updated", "transferring"),
            st("updated", "transferAccepted"),
            st("deleted", "terminated"),
            st("updated", "established"),
            st("updated", "established"),
        ]
    );
    assert_eq!(hits[5].body, hits[1].body);
    assert_eq!(
        hits[5].message_id(),
        hits[1].message_id(),
        "a copy has its original's id"
    );
    assert_eq!(hits[6].message_id(), hits[1].message_id());
    assert!(hits[5].at - hits[1].at >= Duration::from_millis(400));

    let logged = wait_logged(&emu, &id, 8).await;
    let last: Vec<_> = logged[6..]
        .iter()
        .map(|n| (n.attempt, n.response_status, n.message_id.clone()))
        .collect();
    assert_eq!(
        last,
        [
            (1, Some(500), hits[1].message_id()),
            (2, Some(202), hits[1].message_id())
        ]
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rec.hits_on("/late/global").len(), 1, "only established is copied");
    emu.shutdown().await;
}

#[tokio::test]
async fn new_faults_over_the_control_api() {
    let emu = emulator(quick_retries()).await;
    let bot = Bot::new(&emu, &emu.default_app()).await;
    let rec = Recorder::start().await;
    let http = reqwest::Client::new();
    let control = format!("{}/_emulator", emu.base_url());
    let mut call = serde_json::to_value(IncomingCall::from_user(
        &emu.default_app(),
        rec.url_for("/ctl/global"),
        "u",
        "U",
    ))
    .unwrap();
    // No states: every notification is copied.
    call["faults"] = json!({ "duplicateLater": { "afterMs": 150 } });
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
    let global = rec.wait_for_on("/ctl/global", 2, WAIT).await;
    assert_eq!(global[0].body, global[1].body);
    assert_eq!(global[0].message_id(), global[1].message_id());

    let faults = json!({ "omitMessageIds": true, "duplicateLater": { "afterMs": 100, "states": ["established"] } });
    let status = http
        .post(format!("{control}/calls/{id}/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    answer_to(&bot, &rec, "/ctl", &id).await;
    let hits = rec.wait_for_on("/ctl", 3, WAIT).await;
    let states: Vec<_> = hits.iter().flat_map(Hit::states).collect();
    assert_eq!(
        states,
        [
            st("updated", "establishing"),
            st("updated", "established"),
            st("updated", "established")
        ]
    );
    assert!(hits.iter().all(|h| h.message_id().is_none() && h.chain_id().is_none()));
    let sent: Vec<graph_comms_emulator::SentNotification> = http
        .get(format!("{control}/calls/{id}/notifications"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sent[0].message_id.is_some());
    assert_eq!(sent.last().unwrap().message_id, None);

    let parsed: DeliveryFaults = serde_json::from_value(faults).unwrap();
    assert_eq!(
        parsed.duplicate_later,
        Some(DuplicateLater::of(Duration::from_millis(100), [CallState::Established]))
    );
    assert!(parsed.omit_message_ids);
    emu.shutdown().await;
}

#[test]
fn defaults_are_graph_like() {
    let config = EmulatorConfig::default();
    assert_eq!(config.delivery_retry_initial, Duration::from_secs(1));
    assert_eq!(config.delivery_retry_max_interval, Duration::from_secs(10));
    assert_eq!(config.delivery_retry_window, Duration::from_secs(60));
    assert_eq!(config.delivery_attempts, 20);
    assert!(config.message_ids);
    assert_eq!(config.incoming_answer_timeout, Duration::from_secs(15));
    let faults = DeliveryFaults::default();
    assert!(!faults.omit_message_ids);
    assert_eq!(faults.duplicate_later, None);
}
