//! What an instance sharing calls does when a holder's work is cut short: a
//! holder that stopped between committing a transfer attempt and recording
//! that its `POST /transfer` was sent (its state is written to the shared
//! store by hand; a bot on that store must finish the attempt with one outcome
//! and never send its POST a second time), and a holder whose store became
//! unavailable while it handled a notification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::outage::Outage;
use common::{Hook, Recorder, emulator, short_timings};
use graph_comms_core::stepping::{start_attempt, start_consulting_attempt};
use graph_comms_emulator::{Emulator, EmulatorConfig, Endpoint, IncomingCall, TargetBehavior};
use graph_comms_handler::model::{
    Call, CallId, CallState, Identity, IdentitySet, InvitationParticipantInfo, MediaConfig, Modality, TransferRequest,
};
use graph_comms_handler::{AttemptId, Bot, CallStore, InMemoryCallStore, SharedCallStore};
use graph_comms_testkit::{ServedBot, bot_listener};

const LEASE: Duration = Duration::from_millis(600);

struct Survivor {
    emu: Emulator,
    client: graph_comms_client::GraphClient,
    store: Arc<InMemoryCallStore>,
    handler: Arc<Recorder>,
    served: ServedBot,
    callback: String,
    call: CallId,
}

/// A bot named `instance` sharing calls through `store`, served on loopback;
/// and its callback URL.
async fn serve_shared(
    store: Arc<dyn SharedCallStore>,
    handler: Arc<dyn graph_comms_handler::CallHandler>,
    client: graph_comms_client::GraphClient,
    notify: graph_comms_handler::notify::NotifyConfig,
    instance: &str,
) -> (ServedBot, String) {
    let (listener, callback) = bot_listener().await.unwrap();
    let bot = Bot::builder()
        .client(client)
        .notify(notify)
        .handler(handler)
        .callback_uri(callback.clone())
        .timings(short_timings().lease_ttl(LEASE))
        .shared_store(store, instance)
        .build()
        .unwrap();
    (ServedBot::serve(bot, listener).unwrap(), callback)
}

/// A bot sharing calls through an in-memory store, and one established call it holds.
async fn survivor_with_call() -> Survivor {
    let (emu, app, client, notify) = emulator(EmulatorConfig::default()).await;
    let store = Arc::new(InMemoryCallStore::new());
    let handler = Arc::new(Recorder::new(|_, _| None));
    let shared = Arc::clone(&store) as Arc<dyn SharedCallStore>;
    let (served, callback) = serve_shared(shared, handler.clone(), client.clone(), notify, "survivor").await;
    let call = emu
        .place_incoming_call(IncomingCall::from_user(&app, &callback, "caller", "Caller"))
        .await
        .unwrap();
    handler.wait_for(&call, |h| h.contains(&Hook::Established)).await;
    emu.wait_for_state(&call, CallState::Established, Duration::from_secs(10))
        .await
        .unwrap();
    Survivor {
        emu,
        client,
        store,
        handler,
        served,
        callback,
        call,
    }
}

impl Survivor {
    /// Writes what an instance that stopped right after deciding a transfer
    /// to `target` left: the attempt, its POST not recorded as sent, decided
    /// longer ago than half a lease.
    async fn commit_unsent_attempt(&self, target: &str) -> TransferRequest {
        let mut record = (*self.store.load(&self.call).await.unwrap().unwrap()).clone();
        let request = TransferRequest::to_user(target, None).build();
        let decided = SystemTime::now() - LEASE;
        start_attempt(
            &mut record,
            AttemptId::new(),
            request.clone(),
            false,
            decided,
            &short_timings().machine(),
        )
        .unwrap();
        record.attempt.as_mut().unwrap().sending = true;
        assert!(record.awaits_holder());
        record.version += 1;
        self.store.save(Arc::new(record)).await.unwrap();
        request
    }

    /// Writes what an instance that stopped right after recording a
    /// consultative attempt left: the consultation call placed (and answered
    /// by `target`) and named in the call's record, but its own record not
    /// linked to the call, so its answer went nowhere.
    async fn commit_unlinked_consultation(&self, target: &str) -> CallId {
        let tenant = self
            .store
            .load(&self.call)
            .await
            .unwrap()
            .unwrap()
            .snapshot
            .tenant_id
            .clone();
        let consultation_call = Call {
            odata_type: Some("#microsoft.graph.call".into()),
            callback_uri: Some(self.callback.clone()),
            targets: Some(vec![InvitationParticipantInfo::new(IdentitySet::user(
                Identity::with_id(target),
            ))]),
            requested_modalities: Some(vec![Modality::Audio]),
            media_config: Some(MediaConfig::service_hosted()),
            tenant_id: Some(tenant),
            ..Call::default()
        };
        let consultation = self
            .client
            .create_call(&consultation_call)
            .await
            .unwrap()
            .value
            .id
            .unwrap();
        self.emu
            .wait_for_state(&consultation, CallState::Established, Duration::from_secs(10))
            .await
            .unwrap();
        // The survivor handled its answer as a call of its own.
        let deadline = tokio::time::Instant::now() + common::WAIT;
        while !self
            .store
            .load(&consultation)
            .await
            .unwrap()
            .is_some_and(|r| r.lifecycle.established_fired)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the consultation's answer was handled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut record = (*self.store.load(&self.call).await.unwrap().unwrap()).clone();
        let request = TransferRequest::to_user(target, None)
            .replaces_call(consultation.clone())
            .build();
        start_consulting_attempt(
            &mut record,
            AttemptId::new(),
            request,
            false,
            SystemTime::now(),
            &short_timings().machine(),
        )
        .unwrap();
        record.links.consultation = Some(consultation.clone());
        record.attempt.as_mut().unwrap().linking = true;
        assert!(record.awaits_holder());
        record.version += 1;
        self.store.save(Arc::new(record)).await.unwrap();
        consultation
    }

    fn posts(&self) -> usize {
        let requests = self.emu.requests();
        let to_call = |r: &&graph_comms_emulator::RecordedRequest| r.call_id.as_ref() == Some(&self.call);
        requests
            .iter()
            .filter(to_call)
            .filter(|r| r.endpoint == Endpoint::Transfer)
            .count()
    }

    async fn outcome(&self) -> Vec<Hook> {
        self.handler
            .wait_for(&self.call, |h| h.iter().any(Hook::is_outcome))
            .await
    }

    async fn stop(self) {
        self.served.stop().await;
        self.emu.shutdown().await;
    }
}

/// Before: an instance killed between committing an attempt and sending its
/// POST left the attempt pending until its transfer timeout. Now the orphan
/// sweep finds the call at once (no notification needed), Graph says the call
/// is still established, and the attempt fails as unconfirmed without a POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_decided_but_never_sent_fails_unconfirmed_after_takeover_without_a_post() {
    let survivor = survivor_with_call().await;
    survivor.emu.script_target("never-called", TargetBehavior::Accept);
    survivor.commit_unsent_attempt("never-called").await;

    let hooks = survivor.outcome().await;
    assert!(
        hooks.iter().any(|h| matches!(
            h,
            Hook::Failed {
                reason: "unconfirmed",
                ..
            }
        )),
        "{hooks:?}"
    );
    assert_eq!(
        survivor.posts(),
        0,
        "a POST the stopped instance may have sent is never sent again"
    );
    let stored = survivor.store.load(&survivor.call).await.unwrap().unwrap();
    assert!(!stored.awaits_holder(), "the check is recorded: {stored:?}");
    assert_eq!(survivor.served.bot.metrics().unsent_checks, 1);
    survivor.stop().await;
}

/// Before: the instance taking over sent the POST again when Graph said
/// `established`, and a POST that the stopped instance had sent (and Graph had
/// already declined) was sent twice. Now a sent POST's notifications decide,
/// and the attempt's outcome is the decline, with one POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_sent_but_not_recorded_by_an_instance_that_stopped_is_not_sent_again() {
    let survivor = survivor_with_call().await;
    survivor.emu.script_target("declines", TargetBehavior::Decline);
    let request = survivor.commit_unsent_attempt("declines").await;
    // The stopped instance's POST, sent before it stopped.
    survivor.client.transfer(&survivor.call, &request).await.unwrap();

    let hooks = survivor.outcome().await;
    assert!(
        hooks.iter().any(|h| matches!(
            h,
            Hook::Failed {
                reason: "returned_to_established",
                subcode: Some(7000),
                ..
            }
        )),
        "{hooks:?}"
    );
    // A late check must not decide a second outcome or send anything.
    tokio::time::sleep(LEASE * 2).await;
    let outcomes = survivor
        .handler
        .hooks(&survivor.call)
        .into_iter()
        .filter(Hook::is_outcome)
        .count();
    assert_eq!(outcomes, 1, "{:?}", survivor.handler.hooks(&survivor.call));
    assert_eq!(survivor.posts(), 1);
    survivor.stop().await;
}

/// A POST the stopped instance sent while the target still rings: the
/// attempt's own notifications decide (and a check, if one runs first, finds
/// the call `transferring`), so the ringing target's failure is the outcome
/// and nothing is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_sent_while_the_target_rings_is_left_to_its_notifications_after_takeover() {
    let survivor = survivor_with_call().await;
    let ring = Duration::from_millis(1_500);
    survivor
        .emu
        .script_target("rings-then-declines", TargetBehavior::NoAnswer { after: ring });
    let request = survivor.commit_unsent_attempt("rings-then-declines").await;
    survivor.client.transfer(&survivor.call, &request).await.unwrap();

    let hooks = survivor.outcome().await;
    assert!(
        hooks.iter().any(|h| matches!(
            h,
            Hook::Failed {
                reason: "returned_to_established",
                ..
            }
        )),
        "the ringing target's own failure decides, not the check: {hooks:?}"
    );
    assert_eq!(survivor.posts(), 1);
    survivor.stop().await;
}

/// Before: an instance killed after recording a consultative attempt but
/// before linking the consultation call to it left the consultation's answer
/// with nobody to send the transfer; the attempt timed out and the caller was
/// never transferred. Now the attempt is marked `linking` until the link is
/// written, the orphan sweep takes the call over, and the new holder links
/// the consultation, finds it answered and sends the one transfer replacing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consultation_answered_before_its_link_was_written_still_sends_the_transfer_after_takeover() {
    let survivor = survivor_with_call().await;
    survivor.emu.script_target("consultee", TargetBehavior::Accept);
    let consultation = survivor.commit_unlinked_consultation("consultee").await;

    let hooks = survivor.outcome().await;
    assert!(hooks.iter().any(|h| matches!(h, Hook::Completed(_))), "{hooks:?}");
    let transfers: Vec<_> = survivor
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::Transfer && r.call_id.as_ref() == Some(&survivor.call))
        .collect();
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    let replaces = transfers[0]
        .body
        .as_ref()
        .and_then(|b| b.pointer("/transferTarget/replacesCallId")?.as_str().map(CallId::from));
    assert_eq!(replaces, Some(consultation.clone()));
    let linked = survivor.store.load(&consultation).await.unwrap().unwrap();
    assert_eq!(linked.links.consultation_for.as_ref(), Some(&survivor.call));
    assert_eq!(survivor.served.bot.metrics().consultation_relinks, 1);
    survivor.stop().await;
}

/// Before: the holder counted a notification as handled before committing
/// its change; when the store stayed unavailable past the retries, the change
/// was given up but the release still dropped the notification from the
/// inbox, so the call never became established (`on_call_established` never
/// ran, no transfer, the call hung). Now the notification stays in the inbox
/// and the call is claimed again once the store is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_whose_change_could_not_be_written_is_handled_again_not_dropped() {
    // Longer than the holder's retries (a lease), shorter than the test's wait.
    established_through_an_outage(Outage::on_writes(LEASE * 2, |r| r.lifecycle.established_fired)).await;
}

/// A call placed on a bot whose store fails as `store` does becomes
/// established, the outage having met the established call's write.
async fn established_through_an_outage(store: Outage) {
    let (emu, app, client, notify) = emulator(EmulatorConfig::default()).await;
    let store = Arc::new(store);
    let handler = Arc::new(Recorder::new(|_, _| None));
    let shared = Arc::clone(&store) as Arc<dyn SharedCallStore>;
    let (served, callback) = serve_shared(shared, handler.clone(), client, notify, "holder").await;
    let call = emu
        .place_incoming_call(IncomingCall::from_user(&app, &callback, "caller", "Caller"))
        .await
        .unwrap();

    let hooks = handler.wait_for(&call, |h| h.contains(&Hook::Established)).await;
    assert!(hooks.contains(&Hook::Established), "{hooks:?}");
    assert!(
        store.began(),
        "the outage happened while the established call was written"
    );
    let stored = store.load(&call).await.unwrap().unwrap();
    assert!(stored.lifecycle.established_fired, "{stored:?}");
    served.stop().await;
    emu.shutdown().await;
}

/// Before: an instance whose write failed left the call's items to the
/// orphan sweep, which finds calls through an index; on a Redis Cluster whose
/// index node was down that index entry was never written, and the call hung
/// (its transfer failed, but `on_transfer_failed` never ran and the caller
/// was never hung up). Now the instance comes back to the call itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_write_failed_is_resumed_by_its_instance_when_the_orphan_index_misses_it() {
    established_through_an_outage(
        Outage::on_writes(LEASE * 2, |r| r.lifecycle.established_fired).without_orphan_index(),
    )
    .await;
}

/// Counts `on_transfer_failed` runs and asks to run again on the first.
struct RetriesOnce {
    runs: std::sync::Mutex<Vec<bool>>,
}

#[async_trait::async_trait]
impl graph_comms_handler::CallHandler for RetriesOnce {
    async fn on_call_established(
        &self,
        ctx: &graph_comms_handler::CallContext,
    ) -> Result<(), graph_comms_handler::HookError> {
        ctx.transfer(TransferRequest::to_user("declines", None).build()).await?;
        Ok(())
    }

    async fn on_transfer_failed(
        &self,
        _ctx: &graph_comms_handler::CallContext,
        attempt: &graph_comms_handler::TransferInfo,
        _failure: &graph_comms_handler::TransferFailure,
    ) -> Result<(), graph_comms_handler::HookError> {
        let first = {
            let mut runs = self.runs.lock().unwrap();
            runs.push(attempt.redelivered);
            runs.len() == 1
        };
        if first {
            return Err(graph_comms_handler::RetryLater::new("the CRM is down").into());
        }
        Ok(())
    }
}

/// With a shared store, any hook of an outbox step (here `on_transfer_failed`)
/// that returns `RetryLater` runs again, flagged as a redelivery, and only
/// until it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_hook_that_asks_to_retry_later_runs_again_as_a_redelivery() {
    let (emu, app, client, notify) = emulator(EmulatorConfig::default()).await;
    emu.script_target("declines", TargetBehavior::Decline);
    let store = Arc::new(InMemoryCallStore::new());
    let handler = Arc::new(RetriesOnce {
        runs: std::sync::Mutex::new(Vec::new()),
    });
    let shared = Arc::clone(&store) as Arc<dyn SharedCallStore>;
    let (served, callback) = serve_shared(shared, handler.clone(), client, notify, "only").await;
    emu.place_incoming_call(IncomingCall::from_user(&app, &callback, "caller", "Caller"))
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + common::WAIT;
    while handler.runs.lock().unwrap().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "runs: {:?}",
            handler.runs.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Settled: no third run once it succeeded.
    tokio::time::sleep(LEASE * 3).await;
    assert_eq!(*handler.runs.lock().unwrap(), vec![false, true]);
    served.stop().await;
    emu.shutdown().await;
}

/// Before: when the write linking the consultation call failed (the store
/// was unavailable past the retries, as after a pause longer than a lease),
/// `consult` returned an error although the attempt was recorded. The bot
/// moved on to its next target while that attempt stayed pending: two
/// attempts for one transfer, and the call stalled. Now `consult` returns the
/// recorded attempt, and the call's next holder links the consultation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consultation_whose_link_could_not_be_written_is_linked_by_the_next_holder() {
    let (emu, app, client, notify) = emulator(EmulatorConfig::default()).await;
    emu.script_target("consultee", TargetBehavior::Accept);
    // Longer than a writer's retries (a lease), shorter than the consultation's ringing time.
    let store = Arc::new(Outage::on_writes(LEASE * 2, |r| r.links.consultation_for.is_some()));
    let handler = common::Consults::new("consultee");
    let shared = Arc::clone(&store) as Arc<dyn SharedCallStore>;
    let (served, callback) = serve_shared(shared, handler.clone(), client, notify, "holder").await;
    *handler.callback.lock().unwrap() = callback.clone();
    let call = emu
        .place_incoming_call(IncomingCall::from_user(&app, &callback, "caller", "Caller"))
        .await
        .unwrap();

    let seen = handler.log.wait_for(&call, "completed").await;
    // `consult` returned the attempt, and the transfer replaced its consultation.
    let consultation = common::linked_consultation(&seen);
    assert!(
        seen.contains(&format!("completed replacing {consultation}")),
        "{seen:?}"
    );
    assert!(store.began(), "the link's write met the outage");
    tokio::time::sleep(LEASE * 2).await;
    let seen = handler.log.seen(&call);
    assert_eq!(common::outcomes(&seen), 1, "{seen:?}");
    assert!(!seen.iter().any(|w| w.starts_with("consult refused")), "{seen:?}");
    let transfers = emu
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Transfer && r.call_id.as_ref() == Some(&call))
        .count();
    assert_eq!(transfers, 1);
    assert!(served.bot.metrics().consultation_relinks >= 1);
    served.stop().await;
    emu.shutdown().await;
}
