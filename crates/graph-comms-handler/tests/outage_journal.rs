//! A shared store that stops answering: the notifications an instance takes
//! meanwhile wait in its outage journal (answered 202) and are appended to
//! their calls when the store returns, so a call that rings through the
//! outage is answered even when Graph stops delivering again early.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::outage::Outage;
use common::{Hook, Recorder, WAIT, emulator, short_timings};
use graph_comms_emulator::{Emulator, EmulatorConfig, IncomingCall, RegisteredApp};
use graph_comms_handler::{Bot, SharedCallStore};
use graph_comms_testkit::{ServedBot, bot_listener};

/// How long the store is down.
const OUTAGE: Duration = Duration::from_secs(2);

/// Graph as these tests see it: a refused notification is delivered again for
/// a moment only, far shorter than the outage.
fn briefly_retrying() -> EmulatorConfig {
    EmulatorConfig {
        delivery_retry_initial: Duration::from_millis(50),
        delivery_retry_window: Duration::from_millis(300),
        ..EmulatorConfig::default()
    }
}

struct Outaged {
    emu: Emulator,
    app: RegisteredApp,
    store: Arc<Outage>,
    handler: Arc<Recorder>,
    served: ServedBot,
    callback: String,
}

impl Outaged {
    /// A bot sharing calls through a store that goes down for [`OUTAGE`] now.
    async fn start(journal_capacity: usize) -> Self {
        let (emu, app, client, notify) = emulator(briefly_retrying()).await;
        let store = Arc::new(Outage::whole(OUTAGE));
        let handler = Arc::new(Recorder::new(|_, _| None));
        let (listener, callback) = bot_listener().await.unwrap();
        let bot = Bot::builder()
            .client(client)
            .notify(notify)
            .handler(handler.clone())
            .callback_uri(callback.clone())
            .timings(short_timings())
            .shared_store(Arc::clone(&store) as Arc<dyn SharedCallStore>, "instance")
            .outage_journal_capacity(journal_capacity)
            .build()
            .unwrap();
        let served = ServedBot::serve(bot, listener).unwrap();
        store.begin();
        Self {
            emu,
            app,
            store,
            handler,
            served,
            callback,
        }
    }

    async fn ring(&self, caller: &str) -> graph_comms_handler::model::CallId {
        self.emu
            .place_incoming_call(IncomingCall::from_user(&self.app, &self.callback, caller, caller))
            .await
            .unwrap()
    }

    async fn wait_until(&self, done: impl Fn(&graph_comms_handler::BotMetrics) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.bot().metrics()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn bot(&self) -> &Bot {
        &self.served.bot
    }

    async fn stop(self) {
        self.served.stop().await;
        self.emu.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_rings_while_the_store_is_down_is_answered_once_it_returns() {
    let outaged = Outaged::start(100).await;
    let call = outaged.ring("caller").await;

    let hooks = outaged
        .handler
        .wait_for(&call, |h| h.contains(&Hook::Established))
        .await;
    assert!(hooks.contains(&Hook::Established), "{hooks:?}");
    assert!(!outaged.store.is_down(), "the call was answered only after the outage");
    let metrics = outaged.bot().metrics();
    assert!(metrics.outage_journaled >= 1, "{metrics:?}");
    assert_eq!(metrics.outage_replayed, metrics.outage_journaled, "{metrics:?}");
    assert_eq!(metrics.outage_journal_items, 0, "{metrics:?}");
    assert_eq!(metrics.journal_failures, 0, "nothing was refused: {metrics:?}");
    assert_eq!(
        hooks.iter().filter(|h| **h == Hook::Established).count(),
        1,
        "handled once: {hooks:?}"
    );
    outaged.stop().await;
}

/// The control: without the journal the webhook refuses (503), and Graph,
/// retrying only briefly, gives the notification up while the store is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_journal_off_a_call_that_rings_through_the_outage_is_never_answered() {
    let outaged = Outaged::start(0).await;
    let call = outaged.ring("caller").await;

    let until = Instant::now() + OUTAGE + Duration::from_secs(2);
    while Instant::now() < until {
        assert!(
            !outaged.handler.hooks(&call).contains(&Hook::Established),
            "answered although every delivery was refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = outaged.bot().metrics();
    assert!(metrics.journal_failures >= 1, "{metrics:?}");
    assert_eq!(metrics.outage_journaled, 0, "{metrics:?}");
    outaged.stop().await;
}

/// A full journal refuses (503) and takes the instance out of readiness while
/// the store is down; what it took is still answered afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_refuses_and_turns_readiness_off_until_the_store_returns() {
    let outaged = Outaged::start(1).await;
    let first = outaged.ring("first").await;
    // Delivered asynchronously: the second call rings once the first is taken.
    outaged.wait_until(|m| m.outage_journaled >= 1).await;
    let _second = outaged.ring("second").await;
    outaged.wait_until(|m| m.journal_failures >= 1).await;
    assert!(
        outaged.store.is_down(),
        "the test outlived the outage; make OUTAGE longer"
    );
    assert!(
        outaged.bot().metrics().journal_failures >= 1,
        "{:?}",
        outaged.bot().metrics()
    );
    assert!(!outaged.bot().is_ready(), "ready with a full journal and no store");

    let hooks = outaged
        .handler
        .wait_for(&first, |h| h.contains(&Hook::Established))
        .await;
    assert!(hooks.contains(&Hook::Established), "{hooks:?}");
    assert!(outaged.bot().is_ready(), "ready again once the store answers");
    outaged.stop().await;
}
