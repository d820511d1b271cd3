//! Answers and transfers calls with `graph-comms-client` against the local
//! Graph emulator: a blind transfer, then a consultative one.
//!
//! The emulator runs in-process, and a recording callback receiver from the
//! workspace's test kit (no bot) collects the notifications Graph would send
//! the bot, which this prints. Run it with
//! `cargo run -p examples --example client_transfer`.

use std::time::Duration;

use anyhow::{Context, anyhow};
use graph_comms_client::{GraphClient, GraphClientError};
use graph_comms_emulator::{Emulator, EmulatorConfig, IncomingCall};
use graph_comms_model::{
    AnswerRequest, Call, CallId, CallState, ChangeType, CommsNotifications, Identity, IdentitySet,
    InvitationParticipantInfo, MediaConfig, Modality, TransferRequest,
};
use graph_comms_testkit::receiver::{CallbackReceiver, Received};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let emulator = Emulator::start(EmulatorConfig::default()).await?;
    let receiver = CallbackReceiver::start().await;
    let callback_uri = receiver.url();
    let mut printed = 0;
    let app = emulator.default_app();
    println!("emulator at {}, callbacks to {callback_uri}", emulator.base_url());

    let client = GraphClient::builder()
        .credentials(app.tenant_id.clone(), app.app_id.clone(), app.client_secret.clone())
        .graph_base_url(emulator.graph_base_url())
        .login_base_url(emulator.login_base_url())
        .scenario_id("client-transfer-example")
        .build()?;

    // Blind transfer: answer an incoming call, then hand it to a user.
    let call = answered_call(&emulator, &client, &callback_uri, "caller-1").await?;
    let blind = TransferRequest::to_user("heidi-user-id", None)
        .display_name("Heidi")
        .build();
    let accepted = client.transfer(&call, &blind).await?;
    println!(
        "blind transfer of {call}: HTTP {}, request-id {}",
        accepted.status,
        accepted.request_id.as_deref().unwrap_or("-")
    );
    emulator.wait_for_state(&call, CallState::Terminated, WAIT).await?;
    print_notifications(&receiver, &mut printed, &call).await?;

    // Consultative transfer: call the target first, then replace that call.
    let caller_call = answered_call(&emulator, &client, &callback_uri, "caller-2").await?;
    let consultation = Call {
        odata_type: Some("#microsoft.graph.call".into()),
        callback_uri: Some(callback_uri.clone()),
        targets: Some(vec![InvitationParticipantInfo::new(IdentitySet::user(
            Identity::with_id("heidi-user-id").display_name("Heidi"),
        ))]),
        requested_modalities: Some(vec![Modality::Audio]),
        media_config: Some(MediaConfig::service_hosted()),
        ..Call::default()
    };
    let created = client.create_call(&consultation).await?;
    let consultation_id = created.value.id.context("created call has no id")?;
    emulator
        .wait_for_state(&consultation_id, CallState::Established, WAIT)
        .await?;
    println!("consultation call {consultation_id} established");
    let consultative = TransferRequest::to_user("heidi-user-id", None)
        .replaces_call(consultation_id.clone())
        .build();
    match client.transfer(&caller_call, &consultative).await {
        Ok(accepted) => println!("consultative transfer of {caller_call}: HTTP {}", accepted.status),
        // Graph may have acted: the notifications tell, never a second POST.
        Err(err @ GraphClientError::OutcomeUnknown { .. }) => println!("waiting for notifications: {err}"),
        Err(err) => return Err(err.into()),
    }
    emulator
        .wait_for_state(&caller_call, CallState::Terminated, WAIT)
        .await?;
    print_notifications(&receiver, &mut printed, &caller_call).await?;

    // A Graph error keeps its code and request id.
    let err = client
        .transfer(&caller_call, &blind)
        .await
        .err()
        .context("transfer of an ended call")?;
    println!(
        "transfer of the ended call: {} {} (request-id {})",
        err.status().unwrap_or_default(),
        err.graph_code().unwrap_or("-"),
        err.request_id().unwrap_or("-")
    );

    println!("requests the emulator received:");
    for request in emulator.requests() {
        println!("  {} {} -> {}", request.method, request.path, request.status);
    }
    emulator.shutdown().await;
    Ok(())
}

/// Places an incoming call and answers it; returns once it is established.
async fn answered_call(
    emulator: &Emulator,
    client: &GraphClient,
    callback_uri: &str,
    caller: &str,
) -> anyhow::Result<CallId> {
    let app = emulator.default_app();
    let call = emulator
        .place_incoming_call(IncomingCall::from_user(&app, callback_uri, caller, "A caller"))
        .await?;
    client.answer(&call, &AnswerRequest::audio(callback_uri)).await?;
    emulator.wait_for_state(&call, CallState::Established, WAIT).await?;
    println!("answered {call}");
    Ok(call)
}

/// Whether `post` carries `call`'s end: its `deleted` call notification, the last one Graph sends.
fn ends(post: &Received, call: &CallId) -> bool {
    CommsNotifications::from_slice(&post.body).is_ok_and(|batch| {
        batch.value.iter().any(|item| {
            item.change_type == ChangeType::Deleted
                && item.call().is_some()
                && item.resource().is_ok_and(|url| url.call_id == *call)
        })
    })
}

/// Waits until `call`'s end arrived (deliveries are asynchronous), then
/// prints the notifications not printed yet, one line each.
async fn print_notifications(receiver: &CallbackReceiver, printed: &mut usize, call: &CallId) -> anyhow::Result<()> {
    let received = receiver
        .wait_until(WAIT, |posts| posts.iter().any(|post| ends(post, call)))
        .await
        .map_err(|posts| anyhow!("the end of {call} did not arrive; {} notifications did", posts.len()))?;
    for post in &received[*printed..] {
        for item in CommsNotifications::from_slice(&post.body)?.value {
            let call = item.call();
            let state = call
                .and_then(|c| c.state.as_ref())
                .map_or("-".into(), ToString::to_string);
            let result = call
                .and_then(|c| c.result_info.as_ref())
                .map(|r| format!("{}/{}", r.code.unwrap_or_default(), r.subcode.unwrap_or_default()))
                .unwrap_or_default();
            println!(
                "  notification {:<7} {:<58} {:<16} {} {}",
                item.change_type.to_string(),
                item.resource_path().unwrap_or("?"),
                state,
                result,
                call.and_then(Call::termination_reason).unwrap_or(""),
            );
        }
    }
    *printed = received.len();
    Ok(())
}
