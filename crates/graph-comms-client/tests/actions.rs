//! Every call action against the emulator over real HTTP: it succeeds, and the
//! emulator received the body the action is meant to send.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Setup, WAIT};
use graph_comms_emulator::Endpoint;
use graph_comms_model::{
    AnswerRequest, Call, CallId, CallState, ClientContextRequest, Identity, IdentitySet, InvitationParticipantInfo,
    InviteParticipantsRequest, MediaConfig, Modality, OperationKind, OperationStatus, PlayPromptRequest, Prompt,
    RedirectRequest, RejectReason, RejectRequest, TransferRequest,
};
use serde_json::json;

fn last_body(setup: &Setup, endpoint: Endpoint) -> serde_json::Value {
    let requests = setup.requests_to(endpoint);
    let last = requests.last().unwrap_or_else(|| panic!("no {endpoint:?} request"));
    last.body.clone().unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn answer_transfer_and_media_actions_send_their_bodies() {
    let setup = Setup::start().await;
    let client = setup.client();

    let call = setup.incoming_call().await;
    let answered = client
        .answer(&call, &AnswerRequest::audio(setup.callback_uri.clone()))
        .await
        .unwrap();
    assert_eq!(answered.status, 202);
    assert!(answered.request_id.is_some(), "Graph's request-id header is kept");
    let body = last_body(&setup, Endpoint::Answer);
    assert_eq!(body["callbackUri"], json!(setup.callback_uri));
    assert_eq!(body["acceptedModalities"], json!(["audio"]));
    assert_eq!(
        body["mediaConfig"]["@odata.type"],
        json!("#microsoft.graph.serviceHostedMediaConfig")
    );
    setup
        .emulator
        .wait_for_state(&call, CallState::Established, WAIT)
        .await
        .unwrap();

    let fetched = client.get_call(&call).await.unwrap();
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.value.id.as_ref(), Some(&call));
    assert_eq!(fetched.value.state, Some(CallState::Established));

    assert_eq!(client.keep_alive(&call).await.unwrap().status, 200);

    let prompt = PlayPromptRequest {
        prompts: vec![Prompt::media("https://bot.example.com/hold.wav")],
        client_context: Some("hold-music".into()),
        ..PlayPromptRequest::default()
    };
    let played = client.play_prompt(&call, &prompt).await.unwrap();
    assert_eq!(played.value.kind(), OperationKind::PlayPrompt);
    assert_eq!(played.value.status, Some(OperationStatus::Running));
    assert_eq!(played.value.client_context.as_deref(), Some("hold-music"));
    let body = last_body(&setup, Endpoint::PlayPrompt);
    assert_eq!(
        body["prompts"][0]["mediaInfo"]["uri"],
        json!("https://bot.example.com/hold.wav")
    );
    assert_eq!(body["clientContext"], json!("hold-music"));

    let context = ClientContextRequest {
        client_context: Some("ctx-1".into()),
        ..ClientContextRequest::default()
    };
    let cancelled = client.cancel_media_processing(&call, &context).await.unwrap();
    assert_eq!(cancelled.value.kind(), OperationKind::CancelMediaProcessing);
    assert_eq!(
        last_body(&setup, Endpoint::CancelMediaProcessing)["clientContext"],
        json!("ctx-1")
    );

    let muted = client.mute(&call, &context).await.unwrap();
    assert_eq!(muted.value.kind(), OperationKind::MuteParticipant);
    assert_eq!(last_body(&setup, Endpoint::Mute)["clientContext"], json!("ctx-1"));
    let unmuted = client.unmute(&call, &context).await.unwrap();
    assert_eq!(unmuted.value.kind(), OperationKind::UnmuteParticipant);
    assert_eq!(last_body(&setup, Endpoint::Unmute)["clientContext"], json!("ctx-1"));

    let invite = InviteParticipantsRequest {
        participants: vec![InvitationParticipantInfo::new(IdentitySet::user(Identity::with_id(
            "invitee-id",
        )))],
        client_context: Some("invite-1".into()),
        ..InviteParticipantsRequest::default()
    };
    let invited = client.invite_participants(&call, &invite).await.unwrap();
    assert_eq!(invited.value.kind(), OperationKind::InviteParticipants);
    assert_eq!(
        last_body(&setup, Endpoint::Invite)["participants"][0]["identity"]["user"]["id"],
        json!("invitee-id")
    );

    let transfer = TransferRequest::to_user("target-user-id", Some("target-tenant".into()))
        .display_name("Target")
        .client_context("transfer-1")
        .build();
    let accepted = client.transfer(&call, &transfer).await.unwrap();
    assert_eq!(accepted.status, 202);
    let body = last_body(&setup, Endpoint::Transfer);
    assert_eq!(
        body["transferTarget"]["identity"]["user"]["id"],
        json!("target-user-id")
    );
    assert_eq!(
        body["transferTarget"]["identity"]["user"]["tenantId"],
        json!("target-tenant")
    );
    assert_eq!(body["transferTarget"]["endpointType"], json!("default"));
    assert_eq!(body["clientContext"], json!("transfer-1"));
    setup
        .emulator
        .wait_for_state(&call, CallState::Terminated, WAIT)
        .await
        .unwrap();

    setup.shutdown().await;
}

#[tokio::test]
async fn create_call_reject_redirect_hang_up_and_raw() {
    let setup = Setup::start().await;
    let client = setup.client();

    let outgoing = Call {
        odata_type: Some("#microsoft.graph.call".into()),
        callback_uri: Some(setup.callback_uri.clone()),
        targets: Some(vec![InvitationParticipantInfo::new(IdentitySet::user(
            Identity::with_id("callee-id").display_name("Callee"),
        ))]),
        requested_modalities: Some(vec![Modality::Audio]),
        media_config: Some(MediaConfig::service_hosted()),
        ..Call::default()
    };
    let created = client.create_call(&outgoing).await.unwrap();
    assert_eq!(created.status, 201);
    let created_id = created.value.id.clone().expect("created call has an id");
    assert_eq!(created.value.state, Some(CallState::Establishing));
    let body = last_body(&setup, Endpoint::CreateCall);
    assert_eq!(body["targets"][0]["identity"]["user"]["id"], json!("callee-id"));
    assert_eq!(body["callbackUri"], json!(setup.callback_uri));
    setup
        .emulator
        .wait_for_state(&created_id, CallState::Established, WAIT)
        .await
        .unwrap();

    let hung_up = client.hang_up(&created_id).await.unwrap();
    assert_eq!(hung_up.status, 204);
    assert_eq!(setup.requests_to(Endpoint::HangUp).last().unwrap().method, "DELETE");
    setup
        .emulator
        .wait_for_state(&created_id, CallState::Terminated, WAIT)
        .await
        .unwrap();

    let to_reject = setup.incoming_call().await;
    let reject = RejectRequest {
        reason: Some(RejectReason::Busy),
        ..RejectRequest::default()
    };
    assert_eq!(client.reject(&to_reject, &reject).await.unwrap().status, 202);
    assert_eq!(last_body(&setup, Endpoint::Reject)["reason"], json!("busy"));

    let to_redirect = setup.incoming_call().await;
    let redirect = RedirectRequest {
        targets: vec![InvitationParticipantInfo::new(IdentitySet::user(Identity::with_id(
            "voicemail-id",
        )))],
        timeout: Some(20),
        ..RedirectRequest::default()
    };
    assert_eq!(client.redirect(&to_redirect, &redirect).await.unwrap().status, 202);
    let body = last_body(&setup, Endpoint::Redirect);
    assert_eq!(body["targets"][0]["identity"]["user"]["id"], json!("voicemail-id"));
    assert_eq!(body["timeout"], json!(20));

    let raw = client
        .send_raw(
            http::Method::GET,
            &format!("/communications/calls/{to_redirect}"),
            None,
            true,
        )
        .await
        .unwrap();
    let value = raw.value.expect("a call body");
    assert_eq!(value["id"], json!(to_redirect.as_str()));

    // Every logical request had its own client-request-id.
    let graph_requests: Vec<_> = setup
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.endpoint != Endpoint::Token)
        .collect();
    let mut ids: Vec<_> = graph_requests
        .iter()
        .map(|r| r.client_request_id.clone().expect("sent"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), graph_requests.len());

    setup.shutdown().await;
}

#[tokio::test]
async fn graph_errors_keep_code_and_request_ids() {
    let setup = Setup::start().await;
    let client = setup.client();

    // Transfer before the call is established: 400 from Graph.
    let call = setup.incoming_call().await;
    let err = client
        .transfer(&call, &TransferRequest::to_user("target-user-id", None).build())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.graph_code().is_some_and(|c| !c.is_empty()), "{err:?}");
    assert!(err.request_id().is_some_and(|id| !id.is_empty()), "{err:?}");
    assert!(!err.is_outcome_unknown());
    let sent = setup.requests_to(Endpoint::Transfer);
    assert_eq!(sent.len(), 1, "a 400 is not retried");
    assert_eq!(sent[0].client_request_id.as_deref(), err.client_request_id());
    assert!(err.to_string().contains("400"));

    // An unknown call: 404.
    let err = client
        .get_call(&CallId::new("00000000-0000-0000-0000-000000000000"))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(setup.requests_to(Endpoint::GetCall).len(), 1, "a 404 is not retried");

    setup.shutdown().await;
}
