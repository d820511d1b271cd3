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
    // Inviting escalates a P2P call to a meeting, which cannot be transferred
    // (8523): invite on a call of its own.
    let other = setup.established_call(&client).await;
    let invited = client.invite_participants(&other, &invite).await.unwrap();
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

#[tokio::test]
async fn every_other_v1_call_action_is_typed() {
    use graph_comms_emulator::{ApiFault, FaultKind, IncomingCall};
    use graph_comms_model::{
        ChangeScreenSharingRoleRequest, ParticipantId, ParticipantInfo, RecordResponseRequest, RecordingStatus,
        ScreenSharingRole, SendDtmfTonesRequest, StartHoldMusicRequest, Tone, UpdateRecordingStatusRequest,
    };

    let setup = Setup::start().await;
    let client = setup.client();
    let call = setup.established_call(&client).await;
    let context = ClientContextRequest {
        client_context: Some("ctx-2".into()),
        ..ClientContextRequest::default()
    };

    let record = RecordResponseRequest {
        prompts: Some(vec![Prompt::media("https://bot.example.com/beep.wav")]),
        max_record_duration_in_seconds: Some(10),
        stop_tones: Some(vec!["#".into()]),
        client_context: Some("rec".into()),
        ..RecordResponseRequest::default()
    };
    let recording = client.record_response(&call, &record).await.unwrap();
    assert_eq!(recording.value.kind(), OperationKind::Record);
    assert_eq!(recording.value.status, Some(OperationStatus::Running));
    assert_eq!(last_body(&setup, Endpoint::RecordResponse)["stopTones"], json!(["#"]));

    let subscribed = client.subscribe_to_tone(&call, &context).await.unwrap();
    assert_eq!(subscribed.value.kind(), OperationKind::SubscribeToTone);
    assert_eq!(subscribed.value.status, Some(OperationStatus::Completed));

    let dtmf = SendDtmfTonesRequest {
        tones: vec![Tone::Tone1, Tone::Pound],
        delay_between_tones_ms: Some(50),
        client_context: None,
        extra: Default::default(),
    };
    let sent = client.send_dtmf_tones(&call, &dtmf).await.unwrap();
    assert_eq!(sent.value.kind(), OperationKind::SendDtmfTones);
    assert_eq!(
        last_body(&setup, Endpoint::SendDtmfTones)["tones"],
        json!(["tone1", "pound"])
    );

    let status = UpdateRecordingStatusRequest {
        status: RecordingStatus::Recording,
        client_context: None,
        extra: Default::default(),
    };
    let updated = client.update_recording_status(&call, &status).await.unwrap();
    assert_eq!(updated.value.kind(), OperationKind::UpdateRecordingStatus);
    assert_eq!(
        last_body(&setup, Endpoint::UpdateRecordingStatus)["status"],
        json!("recording")
    );

    let role = ChangeScreenSharingRoleRequest {
        role: ScreenSharingRole::Viewer,
        extra: Default::default(),
    };
    assert_eq!(
        client.change_screen_sharing_role(&call, &role).await.unwrap().status,
        202
    );
    assert_eq!(
        last_body(&setup, Endpoint::ChangeScreenSharingRole)["role"],
        json!("viewer")
    );

    let gallery = client.add_large_gallery_view(&call, &context).await.unwrap();
    assert_eq!(gallery.value.kind(), OperationKind::AddLargeGalleryView);

    // Participant actions, on a group call.
    let app = setup.emulator.default_app();
    let member = ParticipantInfo::new(IdentitySet::user(Identity::with_id("member-2"))).participant_id("p-2");
    let group_call =
        IncomingCall::from_user(&app, setup.callback_uri.clone(), "member-1", "Member").group(vec![member]);
    let group = setup.emulator.place_incoming_call(group_call).await.unwrap();
    setup
        .emulator
        .wait_for_state(&group, CallState::Incoming, WAIT)
        .await
        .unwrap();
    client
        .answer(&group, &AnswerRequest::audio(setup.callback_uri.clone()))
        .await
        .unwrap();
    setup
        .emulator
        .wait_for_state(&group, CallState::Established, WAIT)
        .await
        .unwrap();
    let p2 = ParticipantId::new("p-2");
    let muted = client.mute_participant(&group, &p2, &context).await.unwrap();
    assert_eq!(muted.value.kind(), OperationKind::MuteParticipant);
    let hold = StartHoldMusicRequest {
        custom_prompt: Some(Prompt::media("https://bot.example.com/hold.wav")),
        ..StartHoldMusicRequest::default()
    };
    let held = client.start_hold_music(&group, &p2, &hold).await.unwrap();
    assert_eq!(held.value.kind(), OperationKind::StartHoldMusic);
    assert_eq!(
        last_body(&setup, Endpoint::StartHoldMusic)["customPrompt"]["mediaInfo"]["uri"],
        json!("https://bot.example.com/hold.wav")
    );
    let resumed = client.stop_hold_music(&group, &p2, &context).await.unwrap();
    assert_eq!(resumed.value.kind(), OperationKind::StopHoldMusic);
    assert_eq!(client.delete_participant(&group, &p2).await.unwrap().status, 204);
    assert_eq!(setup.requests_to(Endpoint::DeleteParticipant)[0].method, "DELETE");
    let gone = client
        .mute_participant(&group, &ParticipantId::new("nobody"), &context)
        .await
        .unwrap_err();
    assert!(gone.is_not_found(), "{gone:?}");

    // Idempotency: a 500 is retried for subscribeToTone, never for sendDtmfTones.
    setup.emulator.inject_api_fault(ApiFault {
        endpoint: Endpoint::SubscribeToTone,
        kind: FaultKind::Status(500),
        count: 1,
    });
    assert!(client.subscribe_to_tone(&call, &context).await.is_ok());
    setup.emulator.inject_api_fault(ApiFault {
        endpoint: Endpoint::SendDtmfTones,
        kind: FaultKind::Status(500),
        count: 1,
    });
    let before = setup.requests_to(Endpoint::SendDtmfTones).len();
    let err = client.send_dtmf_tones(&call, &dtmf).await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert_eq!(
        setup.requests_to(Endpoint::SendDtmfTones).len(),
        before + 1,
        "not re-sent"
    );

    setup.shutdown().await;
}

#[tokio::test]
async fn meeting_mode_transfer_error_carries_its_cause() {
    let setup = Setup::start().await;
    let client = setup.client();
    let call = setup.established_call(&client).await;
    setup.emulator.escalate_to_meeting(&call).unwrap();
    let err = client
        .transfer(&call, &TransferRequest::to_user("target-user-id", None).build())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(
        err.failure_cause(),
        Some(graph_comms_model::FailureCause::TransferInMeetingMode)
    );
    assert!(err.hint().unwrap().contains("meeting"));
    assert!(err.to_string().contains("hint:"));
    setup.shutdown().await;
}

#[tokio::test]
async fn outgoing_calls_from_the_builder() {
    use graph_comms_model::{CreateCallBuilder, PhoneNumber};

    let setup = Setup::start().await;
    let client = setup.client();
    let app = setup.emulator.default_app();
    let number = PhoneNumber::parse("+14255550100").unwrap();
    let pstn = CreateCallBuilder::to_phone(setup.callback_uri.clone(), &number, "instance-1", app.tenant_id.clone())
        .source_display_name("Reception")
        .build();
    let created = client.create_call(&pstn).await.unwrap();
    assert_eq!(created.status, 201);
    let body = last_body(&setup, Endpoint::CreateCall);
    assert_eq!(
        body["source"]["identity"]["applicationInstance"]["tenantId"],
        json!(app.tenant_id.as_str())
    );
    assert_eq!(body["targets"][0]["identity"]["phone"]["id"], json!("+14255550100"));

    // An application instance of another tenant: Graph's 7505.
    let foreign =
        CreateCallBuilder::to_phone(setup.callback_uri.clone(), &number, "instance-2", "other-tenant".into()).build();
    let err = client.create_call(&foreign).await.unwrap_err();
    assert_eq!(
        err.failure_cause(),
        Some(graph_comms_model::FailureCause::TenantMismatch)
    );
    assert!(!err.is_outcome_unknown());

    let user = CreateCallBuilder::to_user(setup.callback_uri.clone(), "callee-id", None).build();
    let created = client.create_call(&user).await.unwrap();
    setup
        .emulator
        .wait_for_state(created.value.id.as_ref().unwrap(), CallState::Established, WAIT)
        .await
        .unwrap();
    setup.shutdown().await;
}
