//! The call-control features a receptionist bot needs, over real HTTP: tones,
//! recordResponse, tenants (7505), meeting mode (8523), and the shapes an
//! SDK expects (numeric codes, schema-cased operation status, redirect ends).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Bot, CallbackReceiver, Received, WAIT, access_token, answer, blind_transfer, established_call, start};
use graph_comms_emulator::{IncomingCall, RecordingBehavior};
use graph_comms_model::{CallState, Identity, IdentitySet, ParticipantInfo, Tone};
use serde_json::{Value, json};

/// Every notification item POSTed on `path` among `received`, in order.
fn items_on(received: &[Received], path: &str) -> Vec<Value> {
    received
        .iter()
        .filter(|r| r.path == path)
        .flat_map(|r| r.json()["value"].as_array().unwrap().clone())
        .collect()
}

/// Every notification item `path` received so far, in order.
fn items(recv: &CallbackReceiver, path: &str) -> Vec<Value> {
    items_on(&recv.received(), path)
}

/// Waits until an item satisfies `pred`, and returns it.
async fn wait_item(recv: &CallbackReceiver, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let found = |received: &[Received]| items_on(received, path).into_iter().find(|i| pred(i));
    match recv.wait_until(WAIT, |received| found(received).is_some()).await {
        Ok(received) => found(&received).unwrap(),
        Err(received) => panic!("no matching item on {path}: {:#?}", items_on(&received, path)),
    }
}

fn is_op(item: &Value, op_id: &str) -> bool {
    item["changeType"] == "deleted"
        && item["resourceUrl"]
            .as_str()
            .is_some_and(|u| u.ends_with(&op_id.replace('-', "").to_uppercase()))
}

#[tokio::test]
async fn subscribed_tones_arrive_with_sequence_ids_and_repeat_on_later_updates() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = established_call(&emu, &bot, &recv, "/t").await;

    // Not subscribed yet: Graph sends no tones.
    assert!(!emu.send_tones(&id, &[Tone::Tone1]).unwrap());
    let (status, op) = bot
        .action(&id, "subscribeToTone", json!({ "clientContext": "dtmf" }))
        .await;
    assert_eq!(status, 200, "{op}");
    assert_eq!(op["@odata.type"], "#microsoft.graph.subscribeToToneOperation");
    assert_eq!(op["status"], "Completed");
    assert_eq!(op["clientContext"], "dtmf");

    assert!(emu.send_tones(&id, &[Tone::Tone1, Tone::Pound]).unwrap());
    let second = wait_item(&recv, "/t", |i| i["resourceData"]["toneInfo"]["sequenceId"] == 2).await;
    assert_eq!(second["changeType"], "updated");
    assert_eq!(second["resourceData"]["state"], "established");
    assert_eq!(second["resourceData"]["toneInfo"]["tone"], "pound");
    assert_eq!(
        second["resourceData"]["toneInfo"]["@odata.type"],
        "#microsoft.graph.toneInfo"
    );
    let tones: Vec<Value> = items(&recv, "/t")
        .iter()
        .filter_map(|i| i["resourceData"].get("toneInfo").cloned())
        .collect();
    assert_eq!(tones[0]["sequenceId"], 1);
    assert_eq!(tones[0]["tone"], "tone1");

    // The next call update repeats the last tone (same sequenceId): bots dedupe.
    let (status, _, _) = bot.send("DELETE", &format!("/communications/calls/{id}"), None).await;
    assert_eq!(status, 204);
    let terminating = wait_item(&recv, "/t", |i| i["resourceData"]["state"] == "terminating").await;
    assert_eq!(terminating["resourceData"]["toneInfo"]["sequenceId"], 2);
    // And the model reads it.
    let hit = recv.received_on("/t").last().cloned().unwrap();
    let _ = hit.notifications();

    // Over the control API too.
    let id2 = established_call(&emu, &bot, &recv, "/t2").await;
    bot.action(&id2, "subscribeToTone", json!({})).await;
    let response = reqwest::Client::new()
        .post(format!("{}/_emulator/calls/{id2}/tones", emu.base_url()))
        .json(&json!({ "tones": ["tone5"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["delivered"], true);
    let tone = wait_item(&recv, "/t2", |i| i["resourceData"].get("toneInfo").is_some()).await;
    assert_eq!(tone["resourceData"]["toneInfo"]["tone"], "tone5");
    emu.shutdown().await;
}

#[tokio::test]
async fn record_response_completes_fails_or_is_cancelled() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = established_call(&emu, &bot, &recv, "/r").await;
    let body = json!({
        "prompts": [{ "@odata.type": "#microsoft.graph.mediaPrompt", "mediaInfo": { "uri": "https://cdn/leave-a-message.wav" } }],
        "bargeInAllowed": true, "maxRecordDurationInSeconds": 10, "playBeep": true, "stopTones": ["#"],
        "clientContext": "rec-1",
    });

    let (status, op) = bot.action(&id, "recordResponse", body.clone()).await;
    assert_eq!(status, 200, "{op}");
    assert_eq!(op["@odata.type"], "#microsoft.graph.recordOperation");
    assert_eq!(op["status"], "Running");
    let op_id = op["id"].as_str().unwrap().to_owned();
    let done = wait_item(&recv, "/r", |i| is_op(i, &op_id)).await;
    assert_eq!(done["resourceData"]["status"], "Completed");
    assert_eq!(done["resourceData"]["resultInfo"]["code"], 200);
    assert!(done["resourceData"]["recordingLocation"].is_string());
    assert!(done["resourceData"]["recordingAccessToken"].is_string());
    assert_eq!(done["resourceData"]["clientContext"], "rec-1");

    emu.script_recording(&id, RecordingBehavior::Fail);
    let (_, op) = bot.action(&id, "recordResponse", body.clone()).await;
    let op_id = op["id"].as_str().unwrap().to_owned();
    let failed = wait_item(&recv, "/r", |i| is_op(i, &op_id)).await;
    assert_eq!(failed["resourceData"]["status"], "Failed");
    assert_eq!(failed["resourceData"]["resultInfo"]["code"], 500);

    // Pending until cancelMediaProcessing: then failed 400/8508 operationCanceled.
    let response = reqwest::Client::new()
        .post(format!("{}/_emulator/calls/{id}/recording", emu.base_url()))
        .json(&json!({ "kind": "pending" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (_, op) = bot.action(&id, "recordResponse", body).await;
    let op_id = op["id"].as_str().unwrap().to_owned();
    let (status, cancel) = bot
        .action(&id, "cancelMediaProcessing", json!({ "clientContext": "c" }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(cancel["status"], "Completed");
    let cancelled = wait_item(&recv, "/r", |i| is_op(i, &op_id)).await;
    assert_eq!(cancelled["resourceData"]["status"], "Failed");
    assert_eq!(cancelled["resourceData"]["resultInfo"]["subcode"], 8508);
    assert_eq!(cancelled["resourceData"]["completionReason"], "operationCanceled");

    // Before the call is answered: Graph's 400.
    let incoming = emu
        .place_incoming_call(IncomingCall::from_user(&app, recv.url_for("/r2"), "u", "U"))
        .await
        .unwrap();
    assert_eq!(bot.action(&incoming, "recordResponse", json!({})).await.0, 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn hang_up_codes_are_numbers_and_operation_status_is_schema_cased() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = established_call(&emu, &bot, &recv, "/n").await;
    let (_, op) = bot
        .action(
            &id,
            "playPrompt",
            json!({ "prompts": [{ "@odata.type": "#microsoft.graph.mediaPrompt", "mediaInfo": { "uri": "https://cdn/x.wav" } }] }),
        )
        .await;
    assert_eq!(op["status"], "Running");
    let op_id = op["id"].as_str().unwrap().to_owned();
    let done = wait_item(&recv, "/n", |i| is_op(i, &op_id)).await;
    assert_eq!(done["resourceData"]["status"], "Completed");
    for action in ["mute", "unmute", "cancelMediaProcessing", "updateRecordingStatus"] {
        let body = if action == "updateRecordingStatus" {
            json!({ "status": "recording" })
        } else {
            json!({})
        };
        let (status, op) = bot.action(&id, action, body).await;
        assert_eq!(status, 200, "{action}: {op}");
        assert_eq!(op["status"], "Completed", "{action}");
    }
    bot.send("DELETE", &format!("/communications/calls/{id}"), None).await;
    let end = wait_item(&recv, "/n", |i| {
        i["changeType"] == "deleted" && i["resourceData"]["state"] == "terminated"
    })
    .await;
    assert!(end["resourceData"]["resultInfo"]["code"].is_i64());
    assert_eq!(end["resourceData"]["resultInfo"]["subcode"], 5001);
    emu.shutdown().await;
}

#[tokio::test]
async fn redirect_ends_like_graph_with_result_info_and_answered_by() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = emu
        .place_incoming_call(IncomingCall::from_phone(&app, recv.url_for("/d"), "+12345678901"))
        .await
        .unwrap();
    recv.wait_for_on("/d", 1, WAIT).await;
    let (status, _) = bot
        .action(
            &id,
            "redirect",
            json!({ "targets": [{ "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                "identity": { "phone": { "id": "+12345678999" } } }], "timeout": 30 }),
        )
        .await;
    assert_eq!(status, 202);
    let end = wait_item(&recv, "/d", |i| i["changeType"] == "deleted").await;
    let data = &end["resourceData"];
    assert_eq!(data["state"], "terminated");
    assert_eq!(data["id"], id.as_str());
    assert_eq!(data["direction"], "incoming");
    assert_eq!(data["tenantId"], app.tenant_id.as_str());
    assert!(data["myParticipantId"].is_string());
    assert_eq!(data["terminationReason"], "AppRedirected");
    assert_eq!(data["resultInfo"]["code"], 200);
    assert_eq!(data["targets"][0]["identity"]["phone"]["id"], "+12345678999");
    assert!(data["answeredBy"]["identity"]["encrypted"]["id"].is_string());
    assert!(data["source"]["identity"]["phone"].is_object());
    let states: Vec<Value> = items(&recv, "/d")
        .iter()
        .map(|i| i["resourceData"]["state"].clone())
        .collect();
    assert_eq!(states, [json!("incoming"), json!("terminated")]);
    emu.shutdown().await;
}

#[tokio::test]
async fn group_transferee_needs_a_participant_id_and_meetings_refuse_transfer() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let other = ParticipantInfo::new(IdentitySet::user(Identity::with_id("member-2"))).participant_id("p-2");
    let id = emu
        .place_incoming_call(
            IncomingCall::from_user(&app, recv.url_for("/g/global"), "member-1", "Member").group(vec![other]),
        )
        .await
        .unwrap();
    answer(&emu, &bot, &recv, "/g", &id).await;
    // The caller of a group call has a participant id in its source.
    let created = &items(&recv, "/g/global")[0];
    assert!(created["resourceData"]["source"]["participantId"].is_string());

    let mut body = blind_transfer("target");
    body["transferee"] = json!({ "identity": { "user": { "id": "member-1" } } });
    let (status, error) = bot.action(&id, "transfer", body).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "BadRequest");
    assert!(error["error"]["message"].as_str().unwrap().contains("participantId"));

    // Participant actions name a participant of the call.
    let (status, op) = bot
        .post(
            &format!("/communications/calls/{id}/participants/p-2/startHoldMusic"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{op}");
    assert_eq!(op["@odata.type"], "#microsoft.graph.startHoldMusicOperation");
    let (status, _) = bot
        .post(
            &format!("/communications/calls/{id}/participants/nobody/mute"),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = bot
        .send("DELETE", &format!("/communications/calls/{id}/participants/p-2"), None)
        .await;
    assert_eq!(status, 204);

    // Escalated to a meeting (scripted here; inviting does the same): 8523.
    let p2p = established_call(&emu, &bot, &recv, "/m").await;
    let (status, _) = bot
        .action(
            &p2p,
            "participants/invite",
            json!({ "participants": [{ "identity": { "user": { "id": "helper" } } }] }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, error) = bot.action(&p2p, "transfer", blind_transfer("target")).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "8523");
    assert_eq!(error["error"]["message"], "Cannot do transfer for meeting mode.");
    let p2p2 = established_call(&emu, &bot, &recv, "/m2").await;
    let response = reqwest::Client::new()
        .post(format!("{}/_emulator/calls/{p2p2}/meeting", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(bot.action(&p2p2, "transfer", blind_transfer("target")).await.0, 400);
    assert_eq!(emu.call_state(&p2p2), Some(CallState::Established));
    emu.shutdown().await;
}

#[tokio::test]
async fn keep_alive_only_for_established_calls() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = emu
        .place_incoming_call(IncomingCall::from_user(&app, recv.url_for("/k"), "u", "U"))
        .await
        .unwrap();
    let (status, error) = bot.action(&id, "keepAlive", json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "BadRequest");
    answer(&emu, &bot, &recv, "/k/a", &id).await;
    assert_eq!(bot.action(&id, "keepAlive", json!({})).await.0, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn tenants_have_their_own_credentials_and_mismatches_are_7505() {
    let emu = start().await;
    let home = emu.default_app();
    let other = emu.add_tenant();
    assert_eq!(other.app_id, home.app_id);
    assert_ne!(other.client_secret, home.client_secret);

    // Each tenant checks its own secret.
    let mut wrong = other.clone();
    wrong.client_secret = home.client_secret.clone();
    let response = access_token(&emu, &wrong).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_codes"], json!([7000215]));

    let home_bot = Bot::new(&emu, &home).await;
    let other_bot = Bot::new(&emu, &other).await;
    let recv = CallbackReceiver::start().await;
    let call = emu
        .place_incoming_call(IncomingCall::from_user(&other, recv.url_for("/x"), "u", "U"))
        .await
        .unwrap();
    let (status, _, error) = home_bot
        .send("GET", &format!("/communications/calls/{call}"), None)
        .await;
    assert_eq!(status, 403);
    assert_eq!(error["error"]["code"], "7505");
    assert_eq!(error["error"]["message"], "Request authorization tenant mismatch.");
    let (status, _, _) = other_bot
        .send("GET", &format!("/communications/calls/{call}"), None)
        .await;
    assert_eq!(status, 200);
    let tenants: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.call_id.as_ref() == Some(&call))
        .map(|r| r.tenant_id)
        .collect();
    assert_eq!(tenants, [Some(home.tenant_id.clone()), Some(other.tenant_id.clone())]);

    // Creating a call from an application instance of another tenant: 7505.
    let create = |instance_tenant: &str| {
        json!({
            "@odata.type": "#microsoft.graph.call",
            "callbackUri": recv.url_for("/c"),
            "source": { "identity": { "applicationInstance": { "id": "instance-1", "tenantId": instance_tenant } } },
            "targets": [{ "identity": { "phone": { "id": "+12345678901" } } }],
            "requestedModalities": ["audio"],
            "mediaConfig": { "@odata.type": "#microsoft.graph.serviceHostedMediaConfig" },
            "tenantId": instance_tenant,
        })
    };
    let (status, error) = home_bot
        .post("/communications/calls", create(other.tenant_id.as_str()))
        .await;
    assert_eq!(status, 403);
    assert_eq!(error["error"]["code"], "7505");
    let (status, _) = home_bot
        .post("/communications/calls", create(home.tenant_id.as_str()))
        .await;
    assert_eq!(status, 201);
    // A phone number called without an application instance as the source: refused.
    let mut from_the_app = create(home.tenant_id.as_str());
    from_the_app["source"] = json!({ "identity": { "application": { "id": "the-bot" } } });
    let (status, error) = home_bot.post("/communications/calls", from_the_app).await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("applicationInstance")),
        "{error}"
    );

    // Transferring to an application instance of another tenant: 7505.
    let answered = established_call(&emu, &home_bot, &recv, "/y").await;
    let body = json!({ "transferTarget": { "identity": { "applicationInstance": {
        "id": "instance-2", "tenantId": other.tenant_id.as_str() } } } });
    let (status, error) = home_bot.action(&answered, "transfer", body).await;
    assert_eq!(status, 403);
    assert_eq!(error["error"]["code"], "7505");

    // The control API adds tenants too.
    let response = reqwest::Client::new()
        .post(format!("{}/_emulator/tenants", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let third: graph_comms_emulator::RegisteredApp = response.json().await.unwrap();
    assert_eq!(access_token(&emu, &third).await.status(), 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_remaining_call_actions_answer_like_graph() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = established_call(&emu, &bot, &recv, "/a").await;
    let (status, op) = bot
        .action(
            &id,
            "sendDtmfTones",
            json!({ "tones": ["tone1", "pound"], "delayBetweenTonesMs": 100 }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(op["@odata.type"], "#microsoft.graph.sendDtmfTonesOperation");
    let op_id = op["id"].as_str().unwrap().to_owned();
    let done = wait_item(&recv, "/a", |i| is_op(i, &op_id)).await;
    assert_eq!(done["resourceData"]["completionReason"], "completedSuccessfully");
    assert_eq!(bot.action(&id, "sendDtmfTones", json!({})).await.0, 400);
    assert_eq!(
        bot.action(&id, "changeScreenSharingRole", json!({ "role": "viewer" }))
            .await
            .0,
        202
    );
    assert_eq!(
        bot.action(&id, "changeScreenSharingRole", json!({ "role": "boss" }))
            .await
            .0,
        400
    );
    assert_eq!(
        bot.action(&id, "updateRecordingStatus", json!({ "status": "nope" }))
            .await
            .0,
        400
    );
    let (status, op) = bot
        .action(&id, "addLargeGalleryView", json!({ "clientContext": "g" }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(op["@odata.type"], "#microsoft.graph.addLargeGalleryViewOperation");
    let (status, op) = bot
        .post(
            &format!("/communications/calls/{id}/participants/anyone/mute"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "a P2P call has no roster to check");
    assert_eq!(op["@odata.type"], "#microsoft.graph.muteParticipantOperation");
    emu.shutdown().await;
}
