//! Durable call state: one outcome per attempt across shutdowns, restarts,
//! late notifications and two bots sharing one store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use common::{Harness, Hook, Recorder, WAIT, emulator, short_timings, to_agent};
use graph_comms_emulator::{DeliveryFaults, EmulatorConfig, Endpoint, IncomingCall, TargetBehavior};
use graph_comms_handler::model::{CallState, TransferRequest};
use graph_comms_handler::{
    Bot, CallContext, CallHandler, CallStore, HookError, InMemoryCallStore, TransferInfo, async_trait,
};
use tower::ServiceExt;

/// POSTs a notification body to a bot's router (no socket) with a signed token.
async fn post_signed(router: &axum::Router, token: &str, body: serde_json::Value) -> axum::response::Response {
    let request = Request::post("/api/calls")
        .header("authorization", token)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    router.clone().oneshot(request).await.unwrap()
}

/// A plan that transfers once, to `target`.
fn transfer_once_to(
    target: &'static str,
) -> impl Fn(&graph_comms_handler::CallSnapshot, u32) -> Option<TransferRequest> + Send + Sync + 'static {
    move |_, step| (step == 1).then(|| TransferRequest::to_user(target, None).build())
}

fn outcomes(hooks: &[Hook]) -> usize {
    hooks.iter().filter(|h| h.is_outcome()).count()
}

fn terminations(hooks: &[Hook]) -> usize {
    hooks.iter().filter(|h| matches!(h, Hook::Terminated { .. })).count()
}

/// Before: stopping a bot while a target rang lost the outcome, and the next
/// bot did not know the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_pending_attempt_fires_the_outcome_once_on_the_next_bot() {
    let first = Arc::new(Recorder::new(transfer_once_to("slow-agent")));
    // Enough redelivery attempts to span the restart.
    let config = EmulatorConfig {
        delivery_attempts: 12,
        delivery_retry_initial: Duration::from_millis(20),
        delivery_retry_max_interval: Duration::from_secs(3600),
        delivery_retry_window: Duration::from_secs(3600),
        ..EmulatorConfig::default()
    };
    let mut h = Harness::start_on(
        first.clone(),
        short_timings(),
        config,
        Arc::new(InMemoryCallStore::new()),
    )
    .await;
    h.emu.script_target(
        "slow-agent",
        TargetBehavior::NoAnswer {
            after: Duration::from_millis(1500),
        },
    );
    let call = h.call_from("caller").await;
    first
        .wait_for(&call, |hooks| hooks.contains(&Hook::Transferring(1)))
        .await;
    let pending = h.store.load(&call).await.unwrap().expect("the call is stored");
    assert!(
        pending.pending_attempt().is_some(),
        "the attempt is pending at shutdown"
    );

    let second = Arc::new(Recorder::new(|_, _| None));
    let report = h.restart(second.clone()).await;
    assert!(report.drained, "{report:?}");
    assert!(
        !first.hooks(&call).iter().any(Hook::is_outcome),
        "no outcome on the stopped bot"
    );

    let hooks = second.wait_for(&call, |hooks| outcomes(hooks) == 1).await;
    assert_eq!(
        hooks,
        [Hook::Failed {
            attempt: 1,
            reason: "returned_to_established",
            subcode: Some(7000)
        }]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(outcomes(&second.hooks(&call)), 1);
    assert_eq!(outcomes(&first.hooks(&call)), 0);
    h.stop().await;
}

/// The attempt's timeout is a deadline in the record: a bot started after a
/// shutdown finds it due in the store and decides the attempt (after asking Graph).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_attempt_still_times_out_on_the_next_bot() {
    let first = Arc::new(Recorder::new(transfer_once_to("ringing-agent")));
    // The target rings past the ring limit: the lookups at 1.5 s and 3 s find it
    // ringing, and the second fails the attempt as rung out.
    let timings = short_timings()
        .transfer_timeout(Duration::from_millis(1500))
        .ring_limit(Duration::from_secs(3))
        .sweep_interval(Duration::from_millis(100));
    let mut h = Harness::start_on(
        first.clone(),
        timings,
        EmulatorConfig::default(),
        Arc::new(InMemoryCallStore::new()),
    )
    .await;
    h.emu.script_target(
        "ringing-agent",
        TargetBehavior::NoAnswer {
            after: Duration::from_secs(60),
        },
    );
    let call = h.call_from("patient").await;
    first
        .wait_for(&call, |hooks| hooks.contains(&Hook::Transferring(1)))
        .await;
    let second = Arc::new(Recorder::new(|_, _| None));
    h.restart(second.clone()).await;
    let hooks = second.wait_for(&call, |hooks| outcomes(hooks) == 1).await;
    assert!(
        matches!(
            hooks.as_slice(),
            [Hook::Failed {
                attempt: 1,
                reason: "rang_out",
                ..
            }]
        ),
        "{hooks:?}"
    );
    assert_eq!(outcomes(&first.hooks(&call)), 0);
    assert_eq!(h.bot.metrics().timeout_lookups, 2, "the new bot asked Graph");
    h.stop().await;
}

/// Before: a success whose notifications came after the timeout was reported
/// as timed out, and a fallback then acted on a call that had already left.
///
/// Every notification is delayed 1.2 s; the emulator ends the call (7015) when
/// it sends the last one, 2.4 s after the POST, and that notification arrives
/// at 3.6 s, after the 3 s timeout. Graph, asked at the timeout, says the call
/// is gone with 7015: completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_success_after_the_timeout_is_completed_by_reconciliation() {
    let handler = Arc::new(Recorder::new(to_agent));
    let timings = short_timings().transfer_timeout(Duration::from_secs(3));
    let h = Harness::start(handler.clone(), timings).await;
    let faults = DeliveryFaults {
        delay: Duration::from_millis(1200),
        ..DeliveryFaults::default()
    };
    let call = h
        .place(IncomingCall::from_user(&h.app, &h.callback, "late", "x").faults(faults))
        .await;
    let hooks = handler.wait_terminated(&call).await;
    assert_eq!(outcomes(&hooks), 1, "{hooks:?}");
    assert!(hooks.contains(&Hook::Completed(1)), "{hooks:?}");
    assert_eq!(h.bot.metrics().timeout_lookups, 1);
    // The transfer's own end notification arrives afterwards and changes nothing.
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.bot.metrics().late_events < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the late notification was not seen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(handler.hooks(&call), hooks);
    assert_eq!(terminations(&hooks), 1);
    h.stop().await;
}

/// Before: two bots sharing one store behind a round-robin proxy reported a
/// completed transfer as failed and fired `on_call_terminated` twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bots_on_one_store_give_one_outcome_and_one_termination_per_call() {
    let bots = bots_behind_round_robin(2, Sharing::StoreOnly).await;
    let conflicts: u64 = bots.iter().map(|b| b.metrics().store_conflicts).sum();
    println!("store conflicts resolved by reloading: {conflicts}");
}

/// Three bots sharing calls with leases: each call's notifications, spread
/// over all three, are processed by one lease holder at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_bots_sharing_calls_with_leases_give_one_outcome_per_call() {
    let bots = bots_behind_round_robin(3, Sharing::Leases).await;
    let claims: u64 = bots.iter().map(|b| b.metrics().claims).sum();
    let conflicts: u64 = bots.iter().map(|b| b.metrics().store_conflicts).sum();
    let lost: u64 = bots.iter().map(|b| b.metrics().leases_lost).sum();
    println!("claims {claims}, conflicts {conflicts}, leases lost {lost}");
    assert!(claims > 0, "the bots claimed calls");
    assert_eq!(conflicts, 0, "a lease holder never races another writer");
    assert_eq!(lost, 0);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sharing {
    /// One store, compare-and-set only.
    StoreOnly,
    /// One shared store: inboxes and leases.
    Leases,
}

/// `count` bots on one in-memory store behind a round-robin proxy, 40 calls
/// with duplicate and reordered notifications: every call gets one outcome,
/// one termination, one `POST /transfer`. Returns the stopped bots.
async fn bots_behind_round_robin(count: usize, sharing: Sharing) -> Vec<Bot> {
    let (emu, app, client, notify) = emulator(EmulatorConfig::default()).await;
    let store = Arc::new(InMemoryCallStore::new());
    let handler = Arc::new(Recorder::new(to_agent));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/api/calls", listener.local_addr().unwrap());
    let bots: Vec<Bot> = (0..count)
        .map(|i| {
            let builder = Bot::builder()
                .client(client.clone())
                .notify(notify.clone())
                .handler(handler.clone())
                .callback_uri(callback.clone())
                .timings(short_timings());
            let builder = match sharing {
                Sharing::StoreOnly => builder.store(Arc::clone(&store) as Arc<dyn CallStore>),
                Sharing::Leases => builder.shared_store(Arc::clone(&store) as _, format!("bot-{i}")),
            };
            builder.build().unwrap()
        })
        .collect();
    let routers: Vec<axum::Router> = bots.iter().map(Bot::router).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let proxy = axum::Router::new().fallback(move |request: Request<Body>| {
        let router = routers[next.fetch_add(1, Ordering::Relaxed) % routers.len()].clone();
        async move { router.oneshot(request).await }
    });
    let server = tokio::spawn(async move { axum::serve(listener, proxy).await });

    let mut calls = Vec::new();
    for run in 0..40 {
        let user = if run % 4 == 3 {
            format!("c{run}-decline")
        } else {
            format!("c{run}")
        };
        let faults = DeliveryFaults {
            duplicate: run % 2 == 0,
            reorder: run % 3 == 0,
            ..DeliveryFaults::default()
        };
        let placed = IncomingCall::from_user(&app, &callback, &user, &user).faults(faults);
        calls.push(emu.place_incoming_call(placed).await.unwrap());
    }
    for call in &calls {
        let hooks = handler
            .wait_for(call, |h| terminations(h) >= 1 || outcomes(h) >= 1)
            .await;
        let _ = hooks;
    }
    // Declined calls stay established after their failure: hang them up.
    for call in &calls {
        if emu.call_state(call) == Some(CallState::Established) {
            client.hang_up(call).await.unwrap();
        }
    }
    for call in &calls {
        handler.wait_terminated(call).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for call in &calls {
        let hooks = handler.hooks(call);
        assert_eq!(outcomes(&hooks), 1, "{call}: {hooks:?}");
        assert_eq!(terminations(&hooks), 1, "{call}: {hooks:?}");
        assert_eq!(
            hooks.iter().filter(|h| **h == Hook::Incoming).count(),
            1,
            "{call}: {hooks:?}"
        );
        assert_eq!(
            hooks.iter().filter(|h| **h == Hook::Established).count(),
            1,
            "{call}: {hooks:?}"
        );
    }
    let transfers = emu
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Transfer)
        .count();
    assert_eq!(transfers, calls.len(), "one POST /transfer per call");
    for bot in &bots {
        bot.shutdown().await;
    }
    server.abort();
    emu.shutdown().await;
    bots
}

/// Keep-alive is a deadline in the record: a new bot on the same store sends
/// the next ones, and the call outlives Graph's 45-minute rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_resumes_on_a_new_bot_and_the_call_survives_45_minutes() {
    let first = Arc::new(Recorder::new(|_, _| None));
    let timings = short_timings()
        .keep_alive_interval(Duration::from_millis(150))
        .sweep_interval(Duration::from_millis(50));
    let mut h = Harness::start_on(
        first.clone(),
        timings,
        EmulatorConfig::default(),
        Arc::new(InMemoryCallStore::new()),
    )
    .await;
    let call = h.call_from("long-caller").await;
    first.wait_for(&call, |hooks| hooks.contains(&Hook::Established)).await;
    let keep_alives = |h: &Harness| {
        h.emu
            .requests()
            .iter()
            .filter(|r| r.endpoint == Endpoint::KeepAlive && r.call_id.as_ref() == Some(&call) && r.status == 200)
            .count()
    };
    let second = Arc::new(Recorder::new(|_, _| None));
    h.restart(second.clone()).await;
    let before = keep_alives(&h);
    for _ in 0..5 {
        h.emu.advance_clock(Duration::from_secs(10 * 60));
        let seen = keep_alives(&h);
        let deadline = tokio::time::Instant::now() + WAIT;
        while keep_alives(&h) <= seen {
            assert!(tokio::time::Instant::now() < deadline, "no keepAlive from the new bot");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(keep_alives(&h) >= before + 5);
    // The emulator logs a request before the bot has read its answer and counted it.
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.bot.metrics().keep_alives_sent < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(h.bot.metrics().keep_alives_sent >= 5, "the new bot sent them");
    assert_eq!(h.emu.call_state(&call), Some(CallState::Established));
    assert_eq!(terminations(&second.hooks(&call)), 0);
    h.stop().await;
}

/// Hangs in `on_transferring` for callers named `hang`.
struct Hanging {
    inner: Recorder,
}

#[async_trait]
impl CallHandler for Hanging {
    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        self.inner.on_call_established(ctx).await
    }

    async fn on_transferring(&self, ctx: &CallContext, attempt: &TransferInfo) -> Result<(), HookError> {
        self.inner.on_transferring(ctx, attempt).await?;
        if common::caller_id(&ctx.snapshot()).as_deref() == Some("hang") {
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn on_transfer_completed(&self, ctx: &CallContext, attempt: &TransferInfo) -> Result<(), HookError> {
        self.inner.on_transfer_completed(ctx, attempt).await
    }

    async fn on_transfer_failed(
        &self,
        ctx: &CallContext,
        attempt: &TransferInfo,
        failure: &graph_comms_handler::TransferFailure,
    ) -> Result<(), HookError> {
        self.inner.on_transfer_failed(ctx, attempt, failure).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_hook_times_out_and_the_transfer_still_times_out() {
    let handler = Arc::new(Hanging {
        inner: Recorder::new(|snapshot, step| {
            let target = if common::caller_id(snapshot).as_deref() == Some("hang") {
                "ringing-agent"
            } else {
                "agent-accepts"
            };
            (step == 1).then(|| TransferRequest::to_user(target, None).build())
        }),
    });
    let timings = short_timings()
        .hook_timeout(Duration::from_millis(300))
        .transfer_timeout(Duration::from_secs(1))
        .ring_limit(Duration::from_secs(2));
    let h = Harness::start(handler.clone(), timings).await;
    h.emu.script_target(
        "ringing-agent",
        TargetBehavior::NoAnswer {
            after: Duration::from_secs(30),
        },
    );
    let hung = h.call_from("hang").await;
    let other = h.call_from("other").await;
    let hooks = handler.inner.wait_for(&hung, |hooks| outcomes(hooks) == 1).await;
    assert!(
        matches!(hooks.last(), Some(Hook::Failed { reason: "rang_out", .. })),
        "{hooks:?}"
    );
    let other_hooks = handler.inner.wait_for(&other, |hooks| outcomes(hooks) == 1).await;
    assert!(other_hooks.contains(&Hook::Completed(1)), "{other_hooks:?}");
    let metrics = h.bot.metrics();
    assert_eq!(metrics.hook_timeouts, 1);
    // At 1 s the target rang; at the 2 s ring limit it still did.
    assert_eq!(metrics.timeout_lookups, 2);
    h.stop().await;
}

/// Before: every signed notification about an unknown call id created a record
/// that was never freed (30,000 forged ids: about 200 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_call_ids_are_evicted_after_the_idle_time() {
    let handler = Arc::new(Recorder::new(|_, _| None));
    let timings = short_timings()
        .idle_timeout(Duration::from_millis(500))
        .sweep_interval(Duration::from_millis(100));
    let h = Harness::start(handler.clone(), timings).await;
    // A real call, to borrow a validly signed notification token from.
    let real = h.call_from("real").await;
    handler
        .wait_for(&real, |hooks| hooks.contains(&Hook::Established))
        .await;
    let token = h.emu.notifications(&real)[0].authorization.clone();
    let router = h.bot.router();
    const FORGED: usize = 10_000;
    for batch in 0..FORGED / 100 {
        let items: Vec<serde_json::Value> = (0..100)
            .map(|i| {
                serde_json::json!({
                    "changeType": "updated",
                    "resourceUrl": format!("/communications/calls/forged{batch:03}x{i:03}"),
                    "resourceData": {"@odata.type": "#microsoft.graph.call", "state": "establishing"}
                })
            })
            .collect();
        let response = post_signed(&router, &token, serde_json::json!({ "value": items })).await;
        assert_eq!(response.status(), 202);
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let metrics = h.bot.metrics();
        if metrics.calls_evicted >= FORGED as u64 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not evicted: {metrics:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Only the real call is left (its keep-alive keeps it from going idle).
    assert!(h.store.count().await.unwrap() <= 1);
    assert!(h.bot.metrics().calls_active <= 1);
    h.stop().await;
}

/// Counts notifications, slowly, so a call's queue fills up.
#[derive(Default)]
struct SlowCounter {
    handled: AtomicUsize,
}

#[async_trait]
impl CallHandler for SlowCounter {
    async fn on_notification(
        &self,
        _ctx: &CallContext,
        _event: &graph_comms_handler::notify::NotificationEvent,
    ) -> Result<(), HookError> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_call_queue_answers_503_and_loses_nothing_acknowledged() {
    let recorder = Arc::new(Recorder::new(|_, _| None));
    // A real call through a recording bot, to borrow a signed token.
    let h = Harness::start(recorder.clone(), short_timings()).await;
    let real = h.call_from("token-donor").await;
    recorder
        .wait_for(&real, |hooks| hooks.contains(&Hook::Established))
        .await;
    let token = h.emu.notifications(&real)[0].authorization.clone();
    let slow = Arc::new(SlowCounter::default());
    let bot = Bot::builder()
        .client(h.client.clone())
        .notify(h.notify.clone())
        .handler(slow.clone())
        .max_queued_per_call(3)
        .build()
        .unwrap();
    let router = bot.router();
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..10 {
        let body = serde_json::json!({"value": [{
            "changeType": "updated",
            "resourceUrl": "/communications/calls/busy-call",
            "resourceData": {"@odata.type": "#microsoft.graph.call", "state": "establishing"}
        }]});
        let response = post_signed(&router, &token, body).await;
        match response.status().as_u16() {
            202 => accepted += 1,
            503 => {
                assert!(response.headers().contains_key("retry-after"));
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(accepted >= 3 && refused >= 1, "accepted {accepted}, refused {refused}");
    let report = bot.shutdown().await;
    assert!(report.drained);
    assert_eq!(slow.handled.load(Ordering::SeqCst), accepted, "every 202 was handled");
    assert_eq!(bot.metrics().refused_busy, refused as u64);
    h.stop().await;
}
