//! Shared end-to-end harness: the emulator, a bot served on 127.0.0.1:0, and a
//! handler that records every hook it sees.
#![allow(dead_code, unreachable_pub)]

pub mod outage;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph_comms_emulator::{Emulator, EmulatorConfig, IncomingCall, RegisteredApp};
use graph_comms_handler::client::GraphClient;
use graph_comms_handler::model::{Call, CallDirection, CallId, CallState, TransferRequest};
use graph_comms_handler::notify::NotifyConfig;
use graph_comms_handler::{
    AnswerOptions, Bot, CallContext, CallEnd, CallHandler, CallSnapshot, CallStore, HookError, InMemoryCallStore,
    IncomingDecision, Timings, TransferError, TransferFailure, TransferInfo, async_trait,
};
use graph_comms_testkit::{LocalGraph, ServedBot, bot_listener};

/// Upper bound on any wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// One hook call, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Hook {
    Incoming,
    Established,
    Transferring(u32),
    Accepted {
        attempt: u32,
        inferred: bool,
    },
    Completed(u32),
    Failed {
        attempt: u32,
        reason: &'static str,
        subcode: Option<i32>,
    },
    TransferRefused(String),
    Terminated {
        subcode: Option<i32>,
    },
}

impl Hook {
    pub fn is_outcome(&self) -> bool {
        matches!(self, Hook::Completed(_) | Hook::Failed { .. })
    }
}

/// Decides the transfer for step `n` (1-based; a refused request also counts) of a call; `None` stops.
pub type Plan = dyn Fn(&CallSnapshot, u32) -> Option<TransferRequest> + Send + Sync;

/// Records hooks per call and transfers according to its plan.
pub struct Recorder {
    pub log: Mutex<Vec<(CallId, Hook)>>,
    pub plan: Box<Plan>,
    /// Panic in on_call_established for callers with this user id.
    pub panic_for: Option<String>,
    /// Return an error from every on_transferring for callers with this user id.
    pub error_for: Option<String>,
    /// Pause in on_transfer_failed before starting the next attempt.
    pub retry_delay: Option<Duration>,
    /// Answer without automatic keep-alive for callers with this user id.
    pub no_keep_alive_for: Option<String>,
    steps: Mutex<std::collections::HashMap<CallId, u32>>,
}

impl Recorder {
    pub fn new(plan: impl Fn(&CallSnapshot, u32) -> Option<TransferRequest> + Send + Sync + 'static) -> Self {
        Self {
            log: Mutex::new(Vec::new()),
            plan: Box::new(plan),
            panic_for: None,
            error_for: None,
            no_keep_alive_for: None,
            retry_delay: None,
            steps: Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn push(&self, ctx: &CallContext, hook: Hook) {
        self.log.lock().unwrap().push((ctx.call_id().clone(), hook));
    }

    /// The hooks recorded for one call, in order.
    pub fn hooks(&self, call: &CallId) -> Vec<Hook> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| id == call)
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// Waits until `done` holds for the call's hooks; returns them.
    pub async fn wait_for(&self, call: &CallId, done: impl Fn(&[Hook]) -> bool) -> Vec<Hook> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let hooks = self.hooks(call);
            if done(&hooks) {
                return hooks;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out; hooks so far: {hooks:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the call to end (on_call_terminated).
    pub async fn wait_terminated(&self, call: &CallId) -> Vec<Hook> {
        self.wait_for(call, |h| h.iter().any(|h| matches!(h, Hook::Terminated { .. })))
            .await
    }

    async fn start_next(&self, ctx: &CallContext) {
        let snapshot = ctx.snapshot();
        if snapshot.direction == Some(CallDirection::Outgoing) {
            return;
        }
        for _ in 0..5 {
            let step = {
                let mut steps = self.steps.lock().unwrap();
                let step = steps.entry(ctx.call_id().clone()).or_insert(0);
                *step += 1;
                *step
            };
            let Some(request) = (self.plan)(&snapshot, step) else {
                return;
            };
            match ctx.transfer(request).await {
                Ok(_) => return,
                Err(error) => self.push(ctx, Hook::TransferRefused(refusal(&error))),
            }
        }
    }
}

fn refusal(error: &TransferError) -> String {
    match error {
        TransferError::GroupCallWithoutTransferee => "group_without_transferee".into(),
        TransferError::NotEstablished { .. } => "not_established".into(),
        TransferError::TransferPending { .. } => "pending".into(),
        other => other.to_string(),
    }
}

/// The caller's user id (or phone number), from the snapshot.
pub fn caller_id(snapshot: &CallSnapshot) -> Option<String> {
    let identity = snapshot.source.as_ref()?.get().ok()?.identity?;
    identity.user.or(identity.phone)?.id
}

#[async_trait]
impl CallHandler for Recorder {
    async fn on_incoming_call(
        &self,
        ctx: &CallContext,
        _call: &graph_comms_handler::model::Call,
    ) -> Result<graph_comms_handler::IncomingDecision, HookError> {
        self.push(ctx, Hook::Incoming);
        let keep_alive = self.no_keep_alive_for.is_none() || caller_id(&ctx.snapshot()) != self.no_keep_alive_for;
        let options = graph_comms_handler::AnswerOptions::audio().keep_alive(keep_alive);
        Ok(graph_comms_handler::IncomingDecision::Answer(options))
    }

    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        self.push(ctx, Hook::Established);
        if self.panic_for.is_some() && caller_id(&ctx.snapshot()) == self.panic_for {
            panic!("test hook panics on purpose");
        }
        self.start_next(ctx).await;
        Ok(())
    }

    async fn on_transferring(&self, ctx: &CallContext, attempt: &TransferInfo) -> Result<(), HookError> {
        self.push(ctx, Hook::Transferring(attempt.number));
        if self.error_for.is_some() && caller_id(&ctx.snapshot()) == self.error_for {
            return Err("test hook fails on purpose".into());
        }
        Ok(())
    }

    async fn on_transfer_accepted(
        &self,
        ctx: &CallContext,
        attempt: &TransferInfo,
        inferred: bool,
    ) -> Result<(), HookError> {
        self.push(
            ctx,
            Hook::Accepted {
                attempt: attempt.number,
                inferred,
            },
        );
        Ok(())
    }

    async fn on_transfer_completed(&self, ctx: &CallContext, attempt: &TransferInfo) -> Result<(), HookError> {
        self.push(ctx, Hook::Completed(attempt.number));
        Ok(())
    }

    async fn on_transfer_failed(
        &self,
        ctx: &CallContext,
        attempt: &TransferInfo,
        failure: &TransferFailure,
    ) -> Result<(), HookError> {
        self.push(
            ctx,
            Hook::Failed {
                attempt: attempt.number,
                reason: failure.label(),
                subcode: failure.subcode(),
            },
        );
        if let Some(delay) = self.retry_delay {
            tokio::time::sleep(delay).await;
        }
        self.start_next(ctx).await;
        Ok(())
    }

    async fn on_call_terminated(&self, ctx: &CallContext, end: &CallEnd) -> Result<(), HookError> {
        self.push(
            ctx,
            Hook::Terminated {
                subcode: end.result_info.as_ref().and_then(|r| r.subcode),
            },
        );
        Ok(())
    }
}

/// The emulator, a bot serving its router, and the test's handler.
pub struct Harness {
    pub emu: Emulator,
    pub app: RegisteredApp,
    pub bot: Bot,
    pub callback: String,
    pub client: GraphClient,
    pub notify: NotifyConfig,
    pub timings: Timings,
    pub store: Arc<dyn CallStore>,
    pub addr: std::net::SocketAddr,
    served: Option<ServedBot>,
}

pub fn short_timings() -> Timings {
    Timings::default()
        .transfer_timeout(Duration::from_secs(3))
        .unknown_outcome_timeout(Duration::from_secs(1))
        .shutdown_deadline(Duration::from_secs(10))
        .worker_idle_timeout(Duration::from_millis(200))
}

/// The emulator, a client for its default app and the notify settings that trust it.
pub async fn emulator(config: EmulatorConfig) -> (Emulator, RegisteredApp, GraphClient, NotifyConfig) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let local = LocalGraph::start(config).await.expect("the emulator starts");
    (local.emulator, local.app, local.client, local.notify)
}

impl Harness {
    pub async fn start(handler: Arc<dyn CallHandler>, timings: Timings) -> Self {
        Self::start_with(handler, timings, EmulatorConfig::default()).await
    }

    pub async fn start_with(handler: Arc<dyn CallHandler>, timings: Timings, config: EmulatorConfig) -> Self {
        Self::start_on(handler, timings, config, Arc::new(InMemoryCallStore::new())).await
    }

    /// A harness whose bot keeps its calls in `store`.
    pub async fn start_on(
        handler: Arc<dyn CallHandler>,
        timings: Timings,
        config: EmulatorConfig,
        store: Arc<dyn CallStore>,
    ) -> Self {
        let (emu, app, client, notify) = emulator(config).await;
        let (listener, callback) = bot_listener().await.expect("a loopback port");
        let addr = listener.local_addr().expect("addr");
        let mut harness = Self {
            bot: build_bot(
                &client,
                &notify,
                &callback,
                handler,
                timings.clone(),
                Arc::clone(&store),
            ),
            emu,
            app,
            callback,
            client,
            notify,
            timings,
            store,
            addr,
            served: None,
        };
        harness.serve(listener);
        harness
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        self.served = Some(ServedBot::serve(self.bot.clone(), listener).expect("served"));
    }

    /// Another bot on the same emulator, client and store (not served).
    pub fn another_bot(&self, handler: Arc<dyn CallHandler>) -> Bot {
        build_bot(
            &self.client,
            &self.notify,
            &self.callback,
            handler,
            self.timings.clone(),
            Arc::clone(&self.store),
        )
    }

    /// Stops the bot gracefully, as a deploy does, and starts a new one with
    /// `handler` on the same address and store. Returns the old bot's report.
    pub async fn restart(&mut self, handler: Arc<dyn CallHandler>) -> graph_comms_handler::ShutdownReport {
        let report = self.stop_bot().await;
        self.bot = self.another_bot(handler);
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("rebind the same port");
        self.serve(listener);
        report
    }

    async fn stop_bot(&mut self) -> graph_comms_handler::ShutdownReport {
        match self.served.take() {
            Some(served) => tokio::time::timeout(WAIT, served.stop())
                .await
                .expect("server stops in time")
                .expect("server ran"),
            None => self.bot.shutdown().await,
        }
    }

    /// Places a call from a Teams user to the bot.
    pub async fn call_from(&self, user: &str) -> CallId {
        self.place(IncomingCall::from_user(&self.app, &self.callback, user, user))
            .await
    }

    pub async fn place(&self, call: IncomingCall) -> CallId {
        self.emu.place_incoming_call(call).await.expect("call placed")
    }

    pub async fn wait_state(&self, call: &CallId, state: CallState) {
        self.emu
            .wait_for_state(call, state, WAIT)
            .await
            .expect("emulator state");
    }

    /// Stops the server gracefully and the emulator.
    pub async fn stop(mut self) -> graph_comms_handler::ShutdownReport {
        let report = self.stop_bot().await;
        self.emu.clone().shutdown().await;
        report
    }
}

pub fn build_bot(
    client: &GraphClient,
    notify: &NotifyConfig,
    callback: &str,
    handler: Arc<dyn CallHandler>,
    timings: Timings,
    store: Arc<dyn CallStore>,
) -> Bot {
    Bot::builder()
        .client(client.clone())
        .notify(notify.clone())
        .handler(handler)
        .callback_uri(callback)
        .timings(timings)
        .store(store)
        .build()
        .expect("bot builds")
}

/// Asserts the per-attempt ordering rules on one call's hooks.
pub fn assert_attempt_order(hooks: &[Hook]) {
    let attempts: std::collections::BTreeSet<u32> = hooks
        .iter()
        .filter_map(|h| match h {
            Hook::Transferring(n) | Hook::Completed(n) => Some(*n),
            Hook::Accepted { attempt, .. } | Hook::Failed { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    for n in attempts {
        let of = |pred: &dyn Fn(&Hook) -> bool| {
            hooks
                .iter()
                .enumerate()
                .filter(|(_, h)| pred(h))
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        let outcomes = of(&|h| {
            matches!(h, Hook::Completed(a) if *a == n) || matches!(h, Hook::Failed { attempt, .. } if *attempt == n)
        });
        let accepted = of(&|h| matches!(h, Hook::Accepted { attempt, .. } if *attempt == n));
        let transferring = of(&|h| matches!(h, Hook::Transferring(a) if *a == n));
        assert_eq!(outcomes.len(), 1, "attempt {n}: {hooks:?}");
        assert!(accepted.len() <= 1, "attempt {n}: {hooks:?}");
        assert!(transferring.len() <= 1, "attempt {n}: {hooks:?}");
        if let Some(a) = accepted.first() {
            assert!(*a < outcomes[0], "accepted after the outcome: {hooks:?}");
        }
        if let Some(t) = transferring.first() {
            assert!(*t < outcomes[0], "transferring after the outcome: {hooks:?}");
        }
    }
}

/// One transfer per call, at the first step: callers whose id ends in
/// `-decline` go to `agent-declines`, everyone else to `agent-accepts`.
pub fn to_agent(snapshot: &CallSnapshot, step: u32) -> Option<TransferRequest> {
    let caller = caller_id(snapshot)?;
    if step != 1 {
        return None;
    }
    let target = if caller.ends_with("-decline") {
        "agent-declines"
    } else {
        "agent-accepts"
    };
    Some(TransferRequest::to_user(target, None).build())
}

/// Short notes of what each call's hooks saw; tests wait for a note by prefix.
#[derive(Default)]
pub struct Notes(Mutex<Vec<(CallId, String)>>);

impl Notes {
    pub fn note(&self, call: &CallId, what: impl Into<String>) {
        self.0.lock().unwrap().push((call.clone(), what.into()));
    }

    /// One call's notes, in order.
    pub fn seen(&self, call: &CallId) -> Vec<String> {
        let notes = self.0.lock().unwrap();
        notes
            .iter()
            .filter(|(c, _)| c == call)
            .map(|(_, w)| w.clone())
            .collect()
    }

    pub fn all(&self) -> Vec<(CallId, String)> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until one of the call's notes starts with `what`; returns its notes.
    pub async fn wait_for(&self, call: &CallId, what: &str) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let seen = self.seen(call);
            if seen.iter().any(|w| w.starts_with(what)) {
                return seen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {what:?} for {call}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The bot's audio call to the user `target`, in the tenant of `ctx`'s call:
/// a consultation call for it.
pub fn consultation_call(ctx: &CallContext, callback: &str, target: &str) -> graph_comms_handler::model::Call {
    use graph_comms_handler::model::{Call, Identity, IdentitySet, InvitationParticipantInfo, MediaConfig, Modality};
    Call {
        odata_type: Some("#microsoft.graph.call".into()),
        callback_uri: Some(callback.to_owned()),
        targets: Some(vec![InvitationParticipantInfo::new(IdentitySet::user(
            Identity::with_id(target),
        ))]),
        requested_modalities: Some(vec![Modality::Audio]),
        media_config: Some(MediaConfig::service_hosted()),
        tenant_id: Some(ctx.tenant_id().clone()),
        ..Call::default()
    }
}

/// Answers, then consults `target` once established; logs every hook per call.
pub struct Consults {
    pub target: &'static str,
    pub callback: Mutex<String>,
    pub log: Notes,
}

impl Consults {
    pub fn new(target: &'static str) -> Arc<Self> {
        Arc::new(Self {
            target,
            callback: Mutex::default(),
            log: Notes::default(),
        })
    }
}

#[async_trait]
impl CallHandler for Consults {
    async fn on_incoming_call(&self, ctx: &CallContext, _call: &Call) -> Result<IncomingDecision, HookError> {
        self.log.note(ctx.call_id(), "incoming");
        Ok(IncomingDecision::Answer(AnswerOptions::audio()))
    }

    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        self.log.note(ctx.call_id(), "established");
        let consultation = consultation_call(ctx, &self.callback.lock().unwrap(), self.target);
        let transfer = TransferRequest::to_user(self.target, None).build();
        match ctx.consult(&consultation, transfer).await {
            Ok(_) => {
                let consultation = ctx.consultation().map_or_else(String::new, |c| c.to_string());
                self.log.note(ctx.call_id(), format!("consulting {consultation}"));
            }
            Err(e) => self.log.note(ctx.call_id(), format!("consult refused: {e}")),
        }
        Ok(())
    }

    async fn on_consultation_established(&self, ctx: &CallContext, _: &CallId) -> Result<(), HookError> {
        self.log.note(ctx.call_id(), "consultation hook");
        Ok(())
    }

    async fn on_consultation_ended(&self, ctx: &CallContext, _: &CallId, _: &CallEnd) -> Result<(), HookError> {
        self.log.note(ctx.call_id(), "consultation hook");
        Ok(())
    }

    async fn on_transfer_accepted(&self, ctx: &CallContext, _: &TransferInfo, _: bool) -> Result<(), HookError> {
        self.log.note(ctx.call_id(), "accepted");
        Ok(())
    }

    async fn on_transfer_completed(&self, ctx: &CallContext, info: &TransferInfo) -> Result<(), HookError> {
        let replaces = info
            .request
            .transfer_target
            .replaces_call_id
            .as_ref()
            .map_or_else(String::new, ToString::to_string);
        self.log.note(ctx.call_id(), format!("completed replacing {replaces}"));
        Ok(())
    }

    async fn on_transfer_failed(
        &self,
        ctx: &CallContext,
        _: &TransferInfo,
        failure: &TransferFailure,
    ) -> Result<(), HookError> {
        match failure.subcode() {
            Some(subcode) => self
                .log
                .note(ctx.call_id(), format!("failed {} {subcode}", failure.label())),
            None => self.log.note(ctx.call_id(), format!("failed {}", failure.label())),
        }
        Ok(())
    }

    async fn on_call_terminated(&self, ctx: &CallContext, _: &CallEnd) -> Result<(), HookError> {
        self.log.note(ctx.call_id(), "terminated");
        Ok(())
    }
}

/// The consultation call `consult` linked, from the `consulting` note.
pub fn linked_consultation(seen: &[String]) -> CallId {
    seen.iter()
        .find_map(|w| w.strip_prefix("consulting "))
        .map(CallId::from)
        .expect("the consultation call is linked")
}

/// The outcome notes (`completed ...`, `failed ...`) among `seen`.
pub fn outcomes(seen: &[String]) -> usize {
    seen.iter()
        .filter(|w| w.starts_with("completed") || w.starts_with("failed"))
        .count()
}
