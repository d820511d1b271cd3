//! One bot serving several customer tenants: every request on a call carries
//! a token of the call's tenant, and a tenant not allowed never reaches a hook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Hook, Recorder, WAIT, build_bot, emulator, short_timings};
use graph_comms_emulator::{EmulatorConfig, Endpoint, IncomingCall, RegisteredApp};
use graph_comms_handler::InMemoryCallStore;
use graph_comms_handler::model::{CallId, CallState, TenantId, TransferRequest};
use graph_comms_handler::notify::RejectReason;
use graph_comms_testkit::local::client_builder;
use graph_comms_testkit::{ServedBot, bot_listener};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenants_call_is_handled_with_its_own_token_and_a_refused_tenant_reaches_no_hook() {
    let (emu, home, _, mut notify) = emulator(EmulatorConfig::default()).await;
    // The app consented in a second tenant with its own secret there, and in a
    // third where its home secret works (one secret for every tenant).
    let own_secret = emu.add_tenant();
    let mut home_secret = emu.add_tenant();
    home_secret.client_secret = home.client_secret.clone();
    emu.register_app(home_secret.clone());
    let refused = emu.add_tenant();

    let client = client_builder(&emu, &home)
        .tenant_credentials(
            own_secret.tenant_id.clone(),
            own_secret.app_id.clone(),
            own_secret.client_secret.clone(),
        )
        .build()
        .unwrap();
    notify.allowed_tenants = Some(vec![
        home.tenant_id.clone(),
        own_secret.tenant_id.clone(),
        home_secret.tenant_id.clone(),
    ]);
    let handler = Arc::new(Recorder::new(|_, step| {
        (step == 1).then(|| TransferRequest::to_user("agent-accepts", None).build())
    }));
    let (listener, callback) = bot_listener().await.unwrap();
    let bot = build_bot(
        &client,
        &notify,
        &callback,
        handler.clone(),
        short_timings(),
        Arc::new(InMemoryCallStore::new()),
    );
    let served = ServedBot::serve(bot.clone(), listener).unwrap();

    let place = |app: &RegisteredApp| {
        let call = IncomingCall::from_user(app, &callback, "caller", "Caller");
        let emu = emu.clone();
        async move { emu.place_incoming_call(call).await.unwrap() }
    };
    let calls: Vec<(CallId, TenantId)> = vec![
        (place(&home).await, home.tenant_id.clone()),
        (place(&own_secret).await, own_secret.tenant_id.clone()),
        (place(&home_secret).await, home_secret.tenant_id.clone()),
    ];
    let refused_call = place(&refused).await;

    for (call, tenant) in &calls {
        let hooks = handler.wait_terminated(call).await;
        assert!(hooks.contains(&Hook::Completed(1)), "tenant {tenant}: {hooks:?}");
        // Answer, transfer and whatever else: all with the call's tenant's token.
        let requests: Vec<_> = emu
            .requests()
            .into_iter()
            .filter(|r| r.call_id.as_ref() == Some(call))
            .collect();
        assert!(
            requests.iter().any(|r| r.endpoint == Endpoint::Transfer),
            "{requests:?}"
        );
        for request in &requests {
            assert_eq!(request.tenant_id.as_ref(), Some(tenant), "{request:?}");
            assert!(request.status < 400, "{request:?}");
        }
    }
    // Tokens were requested in each call's tenant, never another one.
    let token_tenants: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::Token)
        .filter_map(|r| r.tenant_id)
        .collect();
    for (_, tenant) in &calls {
        assert!(token_tenants.contains(tenant), "{token_tenants:?}");
    }
    assert!(!token_tenants.contains(&refused.tenant_id), "{token_tenants:?}");

    // The refused tenant's notifications get 401, are counted, and start nothing.
    emu.wait_for_state(&refused_call, CallState::Incoming, WAIT)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while bot.notify_endpoint().metrics().rejected(RejectReason::TenantNotAllowed) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refused tenant was not counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let sent = emu.notifications(&refused_call);
    assert!(sent.iter().all(|n| n.response_status == Some(401)), "{sent:?}");
    assert!(handler.hooks(&refused_call).is_empty());
    assert!(
        emu.requests().iter().all(|r| r.call_id.as_ref() != Some(&refused_call)),
        "the bot acted on a refused tenant's call"
    );
    served.stop().await;
    emu.shutdown().await;
}
