//! End-to-end call scenarios over real HTTP: answer, every transfer kind and outcome, hang-up,
//! prompts, keep-alive, authentication, state rules, notification signing and the control API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use graph_comms_emulator::{IncomingCall, RegisteredApp, TargetBehavior};
use graph_comms_model::{CallId, CallState, Identity, IdentitySet, ParticipantInfo};
use serde_json::{Value, json};

fn last_call_data(hit: &Received) -> Value {
    let body: Value = serde_json::from_slice(&hit.body).unwrap();
    body["value"][0]["resourceData"].clone()
}

#[tokio::test]
async fn incoming_answer_and_blind_transfer_complete_with_7015() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = established_call(&emu, &bot, &recv, "/c1").await;

    let incoming = recv.received_on("/c1/global");
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0].states(), vec![st("created", Some("incoming"))]);
    let created = incoming[0].notifications();
    let call = created.value[0].call().unwrap();
    assert_eq!(
        call.source
            .as_ref()
            .unwrap()
            .identity
            .as_ref()
            .unwrap()
            .user
            .as_ref()
            .unwrap()
            .id
            .as_deref(),
        Some("caller-1")
    );
    assert_eq!(incoming[0].call_id(), id);

    let (status, body) = bot.action(&id, "transfer", blind_transfer("target-user")).await;
    assert_eq!((status, body), (202, Value::Null));
    let states = wait_states(&recv, "/c1", 5).await;
    assert_eq!(
        states,
        vec![
            st("updated", Some("establishing")),
            st("updated", Some("established")),
            st("updated", Some("transferring")),
            st("updated", Some("transferAccepted")),
            st("deleted", Some("terminated")),
        ]
    );
    let hits = recv.received_on("/c1");
    let end = hits[4].notifications();
    let result = end.value[0].call().unwrap().result_info.clone().unwrap();
    assert_eq!((result.code, result.subcode), (Some(0), Some(7015)));
    assert_eq!(result.message.as_deref(), Some("GracefulTransferCompleted"));
    assert_eq!(emu.call_state(&id), Some(CallState::Terminated));

    for hit in incoming.iter().chain(&hits) {
        verify(&emu, &app, hit.authorization.as_deref().unwrap()).await;
        assert_eq!(hit.call_id(), id);
    }
    let (status, body) = bot.action(&id, "keepAlive", json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "itemNotFound");
    let (status, _) = bot.action(&id, "transfer", blind_transfer("x")).await;
    assert_eq!(status, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn consultative_transfer_ends_with_app_transferred_and_drops_the_replaced_call() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let a = established_call(&emu, &bot, &recv, "/a").await;

    let (status, created) = bot
        .post(
            "/communications/calls",
            json!({
                "@odata.type": "#microsoft.graph.call",
                "callbackUri": recv.url_for("/b"),
                "targets": [{ "identity": { "user": { "id": "target-c" } } }],
                "requestedModalities": ["audio"],
                "mediaConfig": { "@odata.type": "#microsoft.graph.serviceHostedMediaConfig" },
            }),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(created["state"], "establishing");
    assert_eq!(created["direction"], "outgoing");
    let b = CallId::new(created["id"].as_str().unwrap());
    emu.wait_for_state(&b, CallState::Established, WAIT).await.unwrap();

    let mut body = blind_transfer("target-c");
    body["transferTarget"]["replacesCallId"] = json!(b.as_str());
    let (status, _) = bot.action(&a, "transfer", body).await;
    assert_eq!(status, 202);
    let states = wait_states(&recv, "/a", 5).await;
    assert_eq!(
        states[2..],
        [
            st("updated", Some("transferring")),
            st("updated", Some("transferAccepted")),
            st("deleted", Some("terminated"))
        ]
    );
    let end = recv.received_on("/a")[4].notifications();
    let call = end.value[0].call().unwrap();
    assert_eq!(call.termination_reason(), Some("AppTransferred"));
    assert!(call.result_info.is_none());

    let b_states = wait_states(&recv, "/b", 3).await;
    assert_eq!(b_states.last(), Some(&st("deleted", Some("terminated"))));
    emu.wait_for_state(&b, CallState::Terminated, WAIT).await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn pstn_caller_transferred_to_a_phone_number() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let instance =
        IdentitySet::application_instance(Identity::with_id("resource-account").tenant(app.tenant_id.clone()));
    let id = emu
        .place_incoming_call(IncomingCall::from_phone(&app, recv.url_for("/global"), "+14255550100").to(instance))
        .await
        .unwrap();
    let incoming = recv.wait_for_on("/global", 1, WAIT).await;
    let created = last_call_data(&incoming[0]);
    assert_eq!(created["source"]["identity"]["phone"]["id"], "+14255550100");
    assert_eq!(
        created["targets"][0]["identity"]["applicationInstance"]["id"],
        "resource-account"
    );
    answer(&emu, &bot, &recv, "/p", &id).await;

    let body = json!({
        "transferTarget": {
            "endpointType": "default",
            "identity": { "phone": { "@odata.type": "#microsoft.graph.identity", "id": "+12345678901" } },
            "languageId": "en-us", "region": "amer"
        },
        "clientContext": "9e90d1c1-f61e-43e7-9f75-d420159aae08"
    });
    assert_eq!(bot.action(&id, "transfer", body).await.0, 202);
    let states = wait_states(&recv, "/p", 5).await;
    assert_eq!(states[4], st("deleted", Some("terminated")));
    let result = recv.received_on("/p")[4].notifications().value[0]
        .call()
        .unwrap()
        .result_info
        .clone()
        .unwrap();
    assert_eq!(result.subcode, Some(7015));
    emu.shutdown().await;
}

#[tokio::test]
async fn group_call_transfer_needs_a_transferee() {
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

    let (status, headers, body) = bot
        .send(
            "POST",
            &format!("/communications/calls/{id}/transfer"),
            Some(blind_transfer("target")),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BadRequest");
    assert_eq!(
        body["error"]["innerError"]["request-id"],
        headers["request-id"].to_str().unwrap()
    );
    assert_eq!(emu.call_state(&id), Some(CallState::Established));

    let mut body = blind_transfer("target");
    body["transferee"] = json!({
        "identity": { "user": { "id": "member-1", "tenantId": app.tenant_id.as_str() } },
        "participantId": "p-1"
    });
    assert_eq!(bot.action(&id, "transfer", body).await.0, 202);
    let states = wait_states(&recv, "/g", 5).await;
    assert_eq!(states[4], st("deleted", Some("terminated")));
    emu.shutdown().await;
}

#[tokio::test]
async fn failed_transfers_return_the_call_to_established() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    emu.script_target("decliner", TargetBehavior::Decline);
    emu.script_target("BUSY-ONE", TargetBehavior::Busy);
    emu.script_target(
        "silent",
        TargetBehavior::NoAnswer {
            after: Duration::from_millis(50),
        },
    );
    emu.script_target("consult", TargetBehavior::ConsultativeFails);
    let id = established_call(&emu, &bot, &recv, "/f").await;

    let cases = [
        ("decliner", false, 7000),
        ("busyone", false, 7000),
        ("silent", false, 7000),
        ("consult", false, 7700),
        ("decliner", true, 7700),
    ];
    for (n, (target, consultative, subcode)) in cases.into_iter().enumerate() {
        let mut body = blind_transfer(target);
        if consultative {
            body["transferTarget"]["replacesCallId"] = json!("f2e1c7a0-0000-4000-8000-000000000001");
        }
        assert_eq!(bot.action(&id, "transfer", body).await.0, 202, "{target}");
        let total = 2 + 2 * (n + 1);
        let states = wait_states(&recv, "/f", total).await;
        assert_eq!(
            states[total - 2..],
            [st("updated", Some("transferring")), st("updated", Some("established"))],
            "{target}"
        );
        let failed = &recv.received_on("/f")[total - 1];
        let raw = last_call_data(failed);
        assert_eq!(raw["resultInfo"]["subCode"], subcode, "{target}: the documented casing");
        let result = failed.notifications().value[0]
            .call()
            .unwrap()
            .result_info
            .clone()
            .unwrap();
        assert_eq!((result.code, result.subcode), (Some(500), Some(subcode)));
        assert_eq!(raw.get("replacesContext").is_some(), consultative, "{target}");
        emu.wait_for_state(&id, CallState::Established, WAIT).await.unwrap();
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn hang_up_then_keep_alive_is_404() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = established_call(&emu, &bot, &recv, "/h").await;
    assert_eq!(bot.action(&id, "keepAlive", json!({})).await.0, 200);
    let (status, _, _) = bot.send("DELETE", &format!("/communications/calls/{id}"), None).await;
    assert_eq!(status, 204);
    let states = wait_states(&recv, "/h", 4).await;
    assert_eq!(
        states[2..],
        [st("updated", Some("terminating")), st("deleted", Some("terminated"))]
    );
    let raw = last_call_data(&recv.received_on("/h")[3]);
    assert_eq!(raw["resultInfo"]["code"], 200, "numbers, as the schema's Int32");
    assert_eq!(raw["resultInfo"]["subcode"], 5001);
    let result = recv.received_on("/h")[3].notifications().value[0]
        .call()
        .unwrap()
        .result_info
        .clone()
        .unwrap();
    assert_eq!((result.code, result.subcode), (Some(200), Some(5001)));
    emu.wait_for_state(&id, CallState::Terminated, WAIT).await.unwrap();
    assert_eq!(bot.action(&id, "keepAlive", json!({})).await.0, 404);
    let (status, _, _) = bot.send("GET", &format!("/communications/calls/{id}"), None).await;
    assert_eq!(status, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn reject_and_redirect_end_incoming_calls() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let rejected = emu
        .place_incoming_call(IncomingCall::from_user(&app, recv.url_for("/r"), "u1", "U1"))
        .await
        .unwrap();
    let (status, _) = bot.action(&rejected, "reject", json!({ "reason": "busy" })).await;
    assert_eq!(status, 202);
    let states = wait_states(&recv, "/r", 2).await;
    assert_eq!(states[1], st("deleted", None));
    emu.wait_for_state(&rejected, CallState::Terminated, WAIT)
        .await
        .unwrap();

    let redirected = emu
        .place_incoming_call(IncomingCall::from_user(&app, recv.url_for("/d"), "u2", "U2"))
        .await
        .unwrap();
    let (status, _) = bot.action(&redirected, "redirect", json!({})).await;
    assert_eq!(status, 400, "targets are required");
    let body =
        json!({ "targets": [{ "identity": { "user": { "id": "other" } } }], "callbackUri": recv.url_for("/d2") });
    assert_eq!(bot.action(&redirected, "redirect", body).await.0, 202);
    let states = wait_states(&recv, "/d2", 1).await;
    assert_eq!(states[0], st("deleted", Some("terminated")));
    emu.shutdown().await;
}

#[tokio::test]
async fn play_prompt_and_media_operations() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = established_call(&emu, &bot, &recv, "/m").await;
    let (status, headers, op) = bot
        .send(
            "POST",
            &format!("/communications/calls/{id}/playPrompt"),
            Some(json!({
                "clientContext": "ctx-1",
                "prompts": [{ "@odata.type": "#microsoft.graph.mediaPrompt", "mediaInfo": { "uri": "https://cdn/x.wav", "resourceId": "r1" } }]
            })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(op["@odata.type"], "#microsoft.graph.playPromptOperation");
    assert_eq!(op["status"], "Running", "the schema's operationStatus spelling");
    assert_eq!(op["clientContext"], "ctx-1");
    let op_id = op["id"].as_str().unwrap().to_owned();
    assert!(headers["location"].to_str().unwrap().ends_with(&op_id));

    let hits = recv.wait_for_on("/m", 3, WAIT).await;
    let done = hits[2].notifications();
    let n = &done.value[0];
    assert_eq!(n.change_type.as_str(), "deleted");
    let resource = n.resource().unwrap();
    assert_eq!(resource.call_id, id);
    assert_eq!(
        resource.target,
        graph_comms_model::ResourceTarget::Operation(op_id.as_str().into())
    );
    let operation = n.operation().unwrap();
    assert_eq!(operation.status.as_ref().unwrap().as_str(), "Completed");
    assert_eq!(operation.client_context.as_deref(), Some("ctx-1"));
    assert_eq!(operation.result_info.as_ref().unwrap().code, Some(200));

    let (status, _) = bot.action(&id, "playPrompt", json!({ "prompts": [] })).await;
    assert_eq!(status, 400);
    for (action, odata_type) in [
        (
            "cancelMediaProcessing",
            "#microsoft.graph.cancelMediaProcessingOperation",
        ),
        ("mute", "#microsoft.graph.muteParticipantOperation"),
        ("unmute", "#microsoft.graph.unmuteParticipantOperation"),
    ] {
        let (status, op) = bot.action(&id, action, json!({ "clientContext": "c" })).await;
        assert_eq!((status, op["@odata.type"].as_str()), (200, Some(odata_type)));
    }
    let invite = json!({ "participants": [{ "identity": { "user": { "id": "joiner" } } }], "clientContext": "i" });
    let (status, op) = bot
        .post(&format!("/communications/calls/{id}/participants/invite"), invite)
        .await;
    assert_eq!((status, op["status"].as_str()), (200, Some("Running")));
    emu.shutdown().await;
}

#[tokio::test]
async fn idle_calls_end_with_keep_alive_timeout_on_the_emulator_clock() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = established_call(&emu, &bot, &recv, "/k").await;
    emu.advance_clock(Duration::from_secs(30 * 60));
    assert_eq!(bot.action(&id, "keepAlive", json!({})).await.0, 200);
    emu.advance_clock(Duration::from_secs(30 * 60));
    assert_eq!(
        emu.call_state(&id),
        Some(CallState::Established),
        "kept alive 30 min ago"
    );
    emu.advance_clock(Duration::from_secs(16 * 60));
    assert_eq!(emu.call_state(&id), Some(CallState::Terminated));
    assert_eq!(bot.action(&id, "keepAlive", json!({})).await.0, 404);
    let states = wait_states(&recv, "/k", 3).await;
    assert_eq!(states[2], st("deleted", Some("terminated")));
    let result = recv.received_on("/k")[2].notifications().value[0]
        .call()
        .unwrap()
        .result_info
        .clone()
        .unwrap();
    assert_eq!((result.code, result.subcode), (Some(408), Some(8537)));
    emu.shutdown().await;
}

#[tokio::test]
async fn tokens_are_checked_on_every_graph_call() {
    let emu = start().await;
    let app = emu.default_app();
    let recv = CallbackReceiver::start().await;
    let id = emu
        .place_incoming_call(IncomingCall::from_user(&app, recv.url_for("/x"), "u", "U"))
        .await
        .unwrap();
    let anonymous = reqwest::Client::new();
    let url = format!("{}/communications/calls/{id}", emu.graph_base_url());
    let response = anonymous
        .get(&url)
        .header("client-request-id", "crid-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["client-request-id"], "crid-1");
    let request_id = response.headers()["request-id"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(body["error"]["innerError"]["request-id"], request_id.as_str());
    assert_eq!(body["error"]["innerError"]["client-request-id"], "crid-1");
    assert!(body["error"]["innerError"]["date"].is_string());
    let response = anonymous.get(&url).bearer_auth("forged").send().await.unwrap();
    assert_eq!(response.status(), 401);

    let mut wrong = app.clone();
    wrong.client_secret = "nope".into();
    let response = access_token(&emu, &wrong).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000215]));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: Invalid client secret provided.")
    );

    let other = RegisteredApp::random();
    emu.register_app(other.clone());
    let intruder = Bot::new(&emu, &other).await;
    let (status, _, body) = intruder.send("GET", &format!("/communications/calls/{id}"), None).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "Forbidden");
    let owner = Bot::new(&emu, &app).await;
    let (status, _, call) = owner.send("GET", &format!("/communications/calls/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(call["state"], "incoming");

    let statuses: Vec<u16> = emu.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401, 200, 403, 200, 200]);
    assert_eq!(emu.requests()[0].client_request_id.as_deref(), Some("crid-1"));
    emu.shutdown().await;
}

#[tokio::test]
async fn state_rules_give_graph_errors() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let id = emu
        .place_incoming_call(IncomingCall::from_user(&app, recv.url_for("/s/global"), "u", "U"))
        .await
        .unwrap();
    let incoming = recv.wait_for_on("/s/global", 1, WAIT).await;
    // The id as the notification spells it: upper case without dashes.
    let spelled = incoming[0].call_id();
    assert_ne!(spelled.as_str(), id.as_str());

    let (status, body) = bot.action(&spelled, "transfer", blind_transfer("t")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("BadRequest")),
        "not established"
    );
    let (status, _) = bot
        .action(&spelled, "answer", json!({ "acceptedModalities": ["audio"] }))
        .await;
    assert_eq!(status, 400, "missing callbackUri");
    answer(&emu, &bot, &recv, "/s", &spelled).await;
    let (status, _) = bot.action(&id, "transfer", json!({ "clientContext": "x" })).await;
    assert_eq!(status, 400, "missing transferTarget");
    let (status, _) = bot
        .post(
            "/communications/calls",
            json!({ "targets": [{ "identity": { "user": { "id": "t" } } }] }),
        )
        .await;
    assert_eq!(status, 400, "create without callbackUri");
    let unknown = CallId::new("00000000-0000-0000-0000-000000000000");
    assert_eq!(bot.action(&unknown, "keepAlive", json!({})).await.0, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn notification_tokens_are_reused_and_survive_key_rotation() {
    let emu = start().await;
    let app = emu.default_app();
    let bot = Bot::new(&emu, &app).await;
    let recv = CallbackReceiver::start().await;
    let first = established_call(&emu, &bot, &recv, "/t1").await;
    let second = established_call(&emu, &bot, &recv, "/t2").await;
    let mut auths: Vec<String> = ["/t1/global", "/t1", "/t2/global", "/t2"]
        .iter()
        .flat_map(|p| recv.received_on(p))
        .map(|h| h.authorization.unwrap())
        .collect();
    auths.dedup();
    assert_eq!(auths.len(), 1, "one token per (app, tenant)");
    let old = auths[0].clone();
    let old_kid = jsonwebtoken::decode_header(old.trim_start_matches("Bearer "))
        .unwrap()
        .kid
        .unwrap();

    emu.rotate_signing_key();
    bot.action(&first, "transfer", blind_transfer("t")).await;
    let hits = recv.wait_for_on("/t1", 5, WAIT).await;
    let fresh = hits[4].authorization.clone().unwrap();
    let fresh_kid = jsonwebtoken::decode_header(fresh.trim_start_matches("Bearer "))
        .unwrap()
        .kid
        .unwrap();
    assert_ne!(fresh_kid, old_kid);
    verify(&emu, &app, &fresh).await;
    verify(&emu, &app, &old).await;

    emu.advance_clock(Duration::from_secs(2 * 3600));
    let jwks: Value = reqwest::get(format!("{}/v1/keys", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [fresh_kid.as_str()], "the old key leaves after its grace period");
    emu.wait_for_state(&second, CallState::Terminated, WAIT).await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn control_api_mirrors_the_rust_api() {
    let emu = start().await;
    let recv = CallbackReceiver::start().await;
    let http = reqwest::Client::new();
    let control = format!("{}/_emulator", emu.base_url());
    let info: Value = http
        .get(format!("{control}/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["graphBaseUrl"], emu.graph_base_url());
    let app: RegisteredApp = serde_json::from_value(info["defaultApp"].clone()).unwrap();
    assert_eq!(app, emu.default_app());

    let call = IncomingCall::from_user(&app, recv.url_for("/ctl"), "u", "U");
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
    recv.wait_for_on("/ctl", 1, WAIT).await;
    let state: Value = http
        .get(format!("{control}/calls/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["state"], "incoming");
    let sent: Vec<graph_comms_emulator::SentNotification> = http
        .get(format!("{control}/calls/{id}/notifications"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent.len(), 1);

    let target = json!({ "targetId": "ctl-target", "behavior": { "kind": "noAnswer", "afterMs": 10 } });
    assert_eq!(
        http.post(format!("{control}/targets"))
            .json(&target)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let fault = json!({ "endpoint": "getCall", "kind": { "status": 503 }, "count": 1 });
    assert_eq!(
        http.post(format!("{control}/api-faults"))
            .json(&fault)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let bot = Bot::new(&emu, &app).await;
    assert_eq!(
        bot.send("GET", &format!("/communications/calls/{id}"), None).await.0,
        503
    );
    let requests: Vec<graph_comms_emulator::RecordedRequest> = http
        .get(format!("{control}/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(requests.last().unwrap().status, 503);
    assert_eq!(
        http.post(format!("{control}/keys/rotate"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let advance = http
        .post(format!("{control}/clock/advance"))
        .json(&json!({ "ms": 3_600_000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(advance.status(), 204);
    assert_eq!(emu.call_state(&id), Some(CallState::Terminated));
    emu.shutdown().await;
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn the_binary_prints_its_urls_and_credentials() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_graph-comms-emulator"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reading = tokio::task::spawn_blocking(move || {
        let mut printed = std::collections::HashMap::new();
        for line in std::io::BufReader::new(stdout).lines().take(7) {
            let line = line.unwrap();
            let (key, value) = line.split_once(": ").unwrap();
            printed.insert(key.trim().to_owned(), value.trim().to_owned());
        }
        printed
    });
    let printed = tokio::time::timeout(WAIT, reading).await;
    let printed = match printed {
        Ok(p) => p.unwrap(),
        Err(_) => {
            child.kill().unwrap();
            panic!("the binary printed nothing");
        }
    };
    let app = RegisteredApp {
        tenant_id: printed["tenant id"].as_str().into(),
        app_id: printed["app id"].as_str().into(),
        client_secret: printed["client secret"].clone(),
    };
    let response = reqwest::Client::new()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            printed["login base url"], app.tenant_id
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app.app_id.as_str()),
            ("client_secret", app.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(response.unwrap().status(), 200);
}
