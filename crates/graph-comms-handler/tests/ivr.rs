//! IVR controls through the emulator: awaited operations (a prompt that
//! completes, a recording that fails), digit collection (keys up to the
//! terminator, a timeout after re-prompts, a hang-up while collecting) and
//! `on_tone` seeing each press once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, WAIT, short_timings};
use graph_comms_emulator::{EmulatorConfig, Endpoint, RecordingBehavior};
use graph_comms_handler::model::{
    CallId, OperationStatus, ParticipantId, Prompt, RecordResponseRequest, RecordingStatus, Tone, ToneInfo,
};
use graph_comms_handler::{
    CallContext, CallHandler, CollectDigits, CollectDigitsError, CollectError, HookError, OperationError, async_trait,
};
use tokio::sync::mpsc;

/// What the handler does once the call is established.
#[derive(Clone)]
enum Script {
    Collect(CollectDigits),
    Prompt,
    Record,
    /// Every other call-level action, each awaited.
    Actions,
}

/// What it found.
#[derive(Debug)]
enum Found {
    Digits(Result<String, CollectError>),
    Operation(Result<OperationStatus, OperationError>),
}

struct Ivr {
    script: Script,
    found: mpsc::UnboundedSender<Found>,
    tones: Mutex<Vec<i64>>,
}

#[async_trait]
impl CallHandler for Ivr {
    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        let found = match &self.script {
            Script::Collect(spec) => Found::Digits(ctx.collect_digits(spec).await),
            Script::Prompt => {
                let prompt = ctx
                    .play_prompt(vec![Prompt::media("https://bot.example/hello.wav")])
                    .await?;
                Found::Operation(prompt.await.map(|op| op.status.expect("a status")))
            }
            Script::Actions => {
                // A peer-to-peer caller has no participant id in the notifications.
                let caller = ctx
                    .snapshot()
                    .source
                    .and_then(|s| s.get().ok())
                    .and_then(|s| s.participant_id)
                    .unwrap_or_else(|| ParticipantId::new("caller-participant"));
                let mut statuses = Vec::new();
                statuses.push(ctx.mute().await?.await);
                statuses.push(ctx.unmute().await?.await);
                statuses.push(ctx.start_hold_music(&caller, None).await?.await);
                statuses.push(ctx.stop_hold_music(&caller).await?.await);
                statuses.push(
                    ctx.send_dtmf_tones(vec![Tone::Tone1, Tone::Pound], Some(100))
                        .await?
                        .await,
                );
                statuses.push(ctx.update_recording_status(RecordingStatus::Recording).await?.await);
                statuses.push(ctx.mute_participant(&caller).await?.await);
                let all = statuses
                    .into_iter()
                    .map(|r| r.map(|op| op.status.expect("a status")))
                    .find(|r| r != &Ok(OperationStatus::Completed))
                    .unwrap_or(Ok(OperationStatus::Completed));
                Found::Operation(all)
            }
            Script::Record => {
                let recording = ctx.record_response(RecordResponseRequest::default()).await?;
                Found::Operation(recording.await.map(|op| op.status.expect("a status")))
            }
        };
        let _ = self.found.send(found);
        Ok(())
    }

    async fn on_tone(&self, _ctx: &CallContext, tone: &ToneInfo) -> Result<(), HookError> {
        self.tones.lock().unwrap().push(tone.sequence_id.unwrap_or(-1));
        Ok(())
    }
}

async fn start(script: Script) -> (Harness, Arc<Ivr>, mpsc::UnboundedReceiver<Found>) {
    let (found, results) = mpsc::unbounded_channel();
    let ivr = Arc::new(Ivr {
        script,
        found,
        tones: Mutex::new(Vec::new()),
    });
    let harness = Harness::start_with(ivr.clone(), short_timings(), EmulatorConfig::default()).await;
    (harness, ivr, results)
}

/// Presses `tones` once the bot has subscribed to them.
async fn press(harness: &Harness, call: &CallId, tones: &[Tone]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !harness.emu.send_tones(call, tones).unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot never subscribed to tones"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next(results: &mut mpsc::UnboundedReceiver<Found>) -> Found {
    tokio::time::timeout(WAIT, results.recv())
        .await
        .expect("the handler reports in time")
        .expect("the handler is alive")
}

fn prompts_played(harness: &Harness, call: &CallId) -> usize {
    harness
        .emu
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::PlayPrompt && r.call_id.as_ref() == Some(call))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_digits_returns_the_keys_pressed_before_the_terminator_and_on_tone_sees_each_once() {
    let spec = CollectDigits::new(4)
        .unwrap()
        .prompt(vec![Prompt::media("https://bot.example/menu.wav")])
        .terminator(Tone::Pound);
    let (harness, ivr, mut results) = start(Script::Collect(spec)).await;
    let call = harness.call_from("caller").await;
    press(&harness, &call, &[Tone::Tone2, Tone::Tone7, Tone::Pound]).await;

    match next(&mut results).await {
        Found::Digits(Ok(digits)) => assert_eq!(digits, "27"),
        other => panic!("expected the digits: {other:?}"),
    }
    assert_eq!(prompts_played(&harness, &call), 1);
    // Graph repeats the last toneInfo on later call updates: each press still reaches on_tone once.
    let deadline = tokio::time::Instant::now() + WAIT;
    while ivr.tones.lock().unwrap().len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "on_tone: {:?}",
            ivr.tones.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    harness.client.hang_up(&call).await.unwrap();
    harness
        .wait_state(&call, graph_comms_handler::model::CallState::Terminated)
        .await;
    assert_eq!(*ivr.tones.lock().unwrap(), vec![1, 2, 3]);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_digits_times_out_after_its_reprompts_when_nothing_is_pressed() {
    let spec = CollectDigits::new(1)
        .unwrap()
        .prompt(vec![Prompt::media("https://bot.example/menu.wav")])
        .first_digit_timeout(Duration::from_millis(300))
        .reprompts(1);
    let (harness, _ivr, mut results) = start(Script::Collect(spec)).await;
    let call = harness.call_from("silent-caller").await;

    match next(&mut results).await {
        Found::Digits(Err(CollectError::Timeout)) => {}
        other => panic!("expected a timeout: {other:?}"),
    }
    assert_eq!(prompts_played(&harness, &call), 2, "the prompt, then one re-prompt");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_digits_reports_the_caller_hanging_up_while_collecting() {
    let spec = CollectDigits::new(3)
        .unwrap()
        .first_digit_timeout(Duration::from_secs(10));
    let (harness, _ivr, mut results) = start(Script::Collect(spec)).await;
    let call = harness.call_from("leaving-caller").await;
    press(&harness, &call, &[Tone::Tone5]).await;
    harness.emu.caller_hangs_up(&call).unwrap();

    match next(&mut results).await {
        Found::Digits(Err(CollectError::HungUp)) => {}
        other => panic!("expected a hang-up: {other:?}"),
    }
    harness.stop().await;
}

#[test]
fn a_collection_of_zero_digits_is_refused_when_built() {
    assert_eq!(CollectDigits::new(0), Err(CollectDigitsError::NoDigits));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awaited_prompt_resolves_when_graph_says_it_completed() {
    let (harness, _ivr, mut results) = start(Script::Prompt).await;
    harness.call_from("listener").await;
    match next(&mut results).await {
        Found::Operation(Ok(OperationStatus::Completed)) => {}
        other => panic!("expected a completed prompt: {other:?}"),
    }
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awaited_recording_that_graph_fails_resolves_as_failed() {
    let (harness, _ivr, mut results) = start(Script::Record).await;
    // Scripted before the bot can ask: the call is placed, then its recording fails.
    let call = harness.call_from("mumbler").await;
    harness.emu.script_recording(&call, RecordingBehavior::Fail);
    match next(&mut results).await {
        Found::Operation(Err(OperationError::Failed(operation))) => {
            assert_eq!(operation.status, Some(OperationStatus::Failed));
        }
        other => panic!("expected a failed recording: {other:?}"),
    }
    harness.stop().await;
}

/// Two bots share calls through one store and take notifications in turn, so
/// the presses reach both; the one collecting (it holds the call) reads those
/// the other journaled from the call's inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_digits_sees_presses_another_instance_received() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Body;
    use axum::http::Request;
    use graph_comms_emulator::IncomingCall;
    use graph_comms_handler::{Bot, InMemoryCallStore, SharedCallStore};
    use graph_comms_testkit::{LocalGraph, bot_listener};
    use tower::ServiceExt as _;

    let local = LocalGraph::start(EmulatorConfig::default()).await.unwrap();
    let store = Arc::new(InMemoryCallStore::new());
    let spec = CollectDigits::new(3)
        .unwrap()
        .first_digit_timeout(Duration::from_secs(10));
    let (found, mut results) = mpsc::unbounded_channel();
    let ivr = Arc::new(Ivr {
        script: Script::Collect(spec),
        found,
        tones: Mutex::new(Vec::new()),
    });
    let (listener, callback) = bot_listener().await.unwrap();
    let bots: Vec<Bot> = (0..2)
        .map(|i| {
            Bot::builder()
                .client(local.client.clone())
                .notify(local.notify.clone())
                .handler(ivr.clone())
                .callback_uri(callback.clone())
                .timings(short_timings())
                .shared_store(Arc::clone(&store) as Arc<dyn SharedCallStore>, format!("bot-{i}"))
                .build()
                .unwrap()
        })
        .collect();
    let routers: Vec<axum::Router> = bots.iter().map(Bot::router).collect();
    let turn = Arc::new(AtomicUsize::new(0));
    let alternate = axum::Router::new().fallback(move |request: Request<Body>| {
        let router = routers[turn.fetch_add(1, Ordering::Relaxed) % routers.len()].clone();
        async move { router.oneshot(request).await }
    });
    let server = tokio::spawn(async move { axum::serve(listener, alternate).await });

    let call = local
        .emulator
        .place_incoming_call(IncomingCall::from_user(&local.app, &callback, "caller", "Caller"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    for tone in [Tone::Tone2, Tone::Tone7, Tone::Tone1] {
        while !local.emulator.send_tones(&call, std::slice::from_ref(&tone)).unwrap() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the bot never subscribed to tones"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    match next(&mut results).await {
        Found::Digits(Ok(digits)) => assert_eq!(digits, "271"),
        other => panic!("expected the digits: {other:?}"),
    }
    for bot in bots {
        bot.shutdown().await;
    }
    server.abort();
    local.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_call_action_on_the_context_is_awaited_to_its_end() {
    let (harness, _ivr, mut results) = start(Script::Actions).await;
    harness.call_from("holder").await;
    match next(&mut results).await {
        Found::Operation(Ok(OperationStatus::Completed)) => {}
        other => panic!("expected every action completed: {other:?}"),
    }
    harness.stop().await;
}
