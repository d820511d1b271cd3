//! The per-call runtime: a dispatcher, one ordered queue and task per active
//! call, a single timer task, and the glue from events to hooks.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures::FutureExt;
use graph_comms_client::{GraphClient, GraphClientError};
use graph_comms_model::{Call, CallId, TenantId};
use graph_comms_notify::{EventReceiver, NotificationEvent};
use tokio::sync::{mpsc, watch};

use crate::attempt::{AttemptId, TransferInfo};
use crate::bot::Timings;
use crate::classify::{CallFlags, EventKind, Planned, classify, plan};
use crate::context::CallContext;
use crate::handler::RuntimeFailure;
use crate::handler::{
    CallEnd, CallHandler, EndCause, ErrorHandler, HookError, HookFailure, HookName, IncomingDecision,
};
use crate::machine::{AttemptEffect, AttemptInput};
use crate::metrics::Counters;
use crate::outcome::{TransferFailure, TransferOutcome};
use crate::store::{CallRecord, CallSnapshot, CallStore};

/// Locks a std mutex, ignoring poisoning: every critical section here leaves the
/// data consistent, and hooks never run under a lock.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long ended call ids are remembered, so late duplicates do not revive them.
const TOMBSTONE_TTL: Duration = Duration::from_secs(600);

/// One live call's record, shared by its worker and its contexts.
///
/// The record sits in an `Arc` it shares with the store's last write-through:
/// writing through clones the `Arc`, and the next change copies the record once
/// (copy on write) instead of keeping two full copies per call.
#[derive(Debug)]
pub(crate) struct CallCell {
    record: Mutex<Arc<CallRecord>>,
    /// False for the throwaway cells of unknown calls.
    pub(crate) live: bool,
}

impl CallCell {
    pub(crate) fn new(record: CallRecord, live: bool) -> Self {
        Self {
            record: Mutex::new(Arc::new(record)),
            live,
        }
    }

    pub(crate) fn record(&self) -> RecordGuard<'_> {
        RecordGuard(lock(&self.record))
    }
}

/// A locked call record: reads are free; the first write copies it if the store still shares it.
pub(crate) struct RecordGuard<'a>(MutexGuard<'a, Arc<CallRecord>>);

impl RecordGuard<'_> {
    /// The record as it is now, to write through without copying it.
    pub(crate) fn share(&self) -> Arc<CallRecord> {
        Arc::clone(&self.0)
    }
}

impl std::ops::Deref for RecordGuard<'_> {
    type Target = CallRecord;

    fn deref(&self) -> &CallRecord {
        &self.0
    }
}

impl std::ops::DerefMut for RecordGuard<'_> {
    fn deref_mut(&mut self) -> &mut CallRecord {
        Arc::make_mut(&mut self.0)
    }
}

/// What a call's worker processes, in order.
#[derive(Debug)]
pub(crate) enum CallEvent {
    Notification(Box<NotificationEvent>),
    /// Effects decided outside the worker (POST result, superseded attempt).
    Effects(Box<TransferInfo>, Vec<AttemptEffect>),
    Timer(TimerKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKind {
    AttemptTimeout(AttemptId),
    UnknownOutcome(AttemptId),
    KeepAlive(u64),
}

#[derive(Debug)]
pub(crate) struct TimerRequest {
    due: tokio::time::Instant,
    call_id: CallId,
    kind: TimerKind,
}

/// Ended call ids, kept for a while.
#[derive(Debug, Default)]
struct Tombstones {
    ids: HashSet<CallId>,
    order: VecDeque<(Instant, CallId)>,
}

impl Tombstones {
    fn insert(&mut self, id: CallId) {
        let now = Instant::now();
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < TOMBSTONE_TTL {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        if self.ids.insert(id.clone()) {
            self.order.push_back((now, id));
        }
    }
}

/// What happens after a call event's record update, run without the lock.
enum Step {
    Incoming(Box<Call>, Instant),
    Established,
    ScheduleKeepAlive(u64),
    Attempt(Box<TransferInfo>, Vec<AttemptEffect>),
    Terminated(CallEnd),
}

pub(crate) struct Shared {
    pub(crate) client: GraphClient,
    pub(crate) handler: Arc<dyn CallHandler>,
    pub(crate) store: Arc<dyn CallStore>,
    pub(crate) errors: Arc<dyn ErrorHandler>,
    pub(crate) timings: Timings,
    pub(crate) callback_uri: Option<String>,
    pub(crate) allow_concurrent_transfers: bool,
    pub(crate) counters: Counters,
    workers: Mutex<HashMap<CallId, mpsc::UnboundedSender<CallEvent>>>,
    live: Mutex<HashMap<CallId, Arc<CallCell>>>,
    waiters: Mutex<HashMap<AttemptId, watch::Sender<Option<TransferOutcome>>>>,
    tombstones: Mutex<Tombstones>,
    timers: mpsc::UnboundedSender<TimerRequest>,
    shutting_down: AtomicBool,
    in_flight: AtomicUsize,
    versions: AtomicU64,
}

pub(crate) struct SharedParts {
    pub(crate) client: GraphClient,
    pub(crate) handler: Arc<dyn CallHandler>,
    pub(crate) store: Arc<dyn CallStore>,
    pub(crate) errors: Arc<dyn ErrorHandler>,
    pub(crate) timings: Timings,
    pub(crate) callback_uri: Option<String>,
    pub(crate) allow_concurrent_transfers: bool,
}

impl Shared {
    /// Builds the runtime and spawns its timer task (needs a tokio runtime).
    pub(crate) fn start(parts: SharedParts) -> Arc<Self> {
        let (timers, timer_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Self {
            client: parts.client,
            handler: parts.handler,
            store: parts.store,
            errors: parts.errors,
            timings: parts.timings,
            callback_uri: parts.callback_uri,
            allow_concurrent_transfers: parts.allow_concurrent_transfers,
            counters: Counters::default(),
            workers: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            tombstones: Mutex::new(Tombstones::default()),
            timers,
            shutting_down: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            versions: AtomicU64::new(1),
        });
        tokio::spawn(timer_loop(Arc::downgrade(&shared), timer_rx));
        shared
    }

    /// Reads the endpoint's events until it is closed and drained.
    pub(crate) async fn dispatch(self: Arc<Self>, mut events: EventReceiver) {
        while let Some(event) = events.recv().await {
            let call_id = event.call_id.clone();
            self.route(call_id, CallEvent::Notification(Box::new(event)));
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Events queued or being handled.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn live_calls(&self) -> usize {
        lock(&self.live).len()
    }

    pub(crate) fn active_workers(&self) -> usize {
        lock(&self.workers).len()
    }

    /// Gives every attempt still waiting the `Abandoned` outcome.
    pub(crate) fn abandon_pending(&self) {
        let waiters: Vec<_> = lock(&self.waiters).drain().collect();
        for (_, sender) in waiters {
            sender.send_if_modified(|slot| {
                if slot.is_none() {
                    *slot = Some(TransferOutcome::Failed(TransferFailure::Abandoned));
                    true
                } else {
                    false
                }
            });
        }
    }

    pub(crate) fn next_version(&self) -> u64 {
        self.versions.fetch_add(1, Ordering::Relaxed)
    }

    /// Puts an event on its call's queue, starting the call's worker if needed.
    pub(crate) fn route(self: &Arc<Self>, call_id: CallId, event: CallEvent) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let mut workers = lock(&self.workers);
        let event = match workers.get(&call_id) {
            Some(sender) => match sender.send(event) {
                Ok(()) => return,
                Err(mpsc::error::SendError(event)) => event,
            },
            None => event,
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        // The receiver is alive, so this cannot fail.
        let _ = sender.send(event);
        workers.insert(call_id.clone(), sender);
        drop(workers);
        tokio::spawn(Arc::clone(self).worker(call_id, receiver));
    }

    /// A call's worker: handles its events one by one and exits once its queue
    /// stays empty for the idle timeout (or right away once the call ended).
    async fn worker(self: Arc<Self>, call_id: CallId, mut queue: mpsc::UnboundedReceiver<CallEvent>) {
        let idle = self.timings.worker_idle_timeout;
        loop {
            let next = if self.is_live(&call_id) {
                tokio::time::timeout(idle, queue.recv()).await.ok().flatten()
            } else {
                queue.try_recv().ok()
            };
            let event = match next {
                Some(event) => event,
                None => {
                    // Senders send under this lock, so an empty queue here stays empty.
                    let mut workers = lock(&self.workers);
                    match queue.try_recv() {
                        Ok(event) => event,
                        Err(_) => {
                            workers.remove(&call_id);
                            return;
                        }
                    }
                }
            };
            self.process(&call_id, event).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn is_live(&self, call_id: &CallId) -> bool {
        lock(&self.live).contains_key(call_id)
    }

    pub(crate) fn schedule(&self, call_id: &CallId, after: Duration, kind: TimerKind) {
        let request = TimerRequest {
            due: tokio::time::Instant::now() + after,
            call_id: call_id.clone(),
            kind,
        };
        // Fails only when the timer task is gone (shutdown); nothing to do then.
        let _ = self.timers.send(request);
    }

    pub(crate) fn register_waiter(&self, id: AttemptId) -> watch::Receiver<Option<TransferOutcome>> {
        let (sender, receiver) = watch::channel(None);
        lock(&self.waiters).insert(id, sender);
        receiver
    }

    fn resolve_waiter(&self, id: AttemptId, outcome: TransferOutcome) {
        if let Some(sender) = lock(&self.waiters).remove(&id) {
            sender.send_replace(Some(outcome));
        }
    }

    /// Writes a record through to the store.
    pub(crate) async fn save(&self, record: Arc<CallRecord>) {
        if lock(&self.tombstones).ids.contains(&record.snapshot.call_id) {
            return;
        }
        let call_id = record.snapshot.call_id.clone();
        if let Err(error) = self.store.save_shared(record).await {
            self.errors.runtime_failed(&call_id, &RuntimeFailure::Store(error));
        }
    }

    /// The live cell of a call, loading it from the store or creating it when allowed.
    async fn cell_for(&self, call_id: &CallId, tenant: &TenantId, create: bool) -> Option<Arc<CallCell>> {
        if let Some(cell) = lock(&self.live).get(call_id) {
            return Some(Arc::clone(cell));
        }
        if lock(&self.tombstones).ids.contains(call_id) {
            return None;
        }
        let loaded = match self.store.load(call_id).await {
            Ok(record) => record,
            Err(error) => {
                self.errors.runtime_failed(call_id, &RuntimeFailure::Store(error));
                None
            }
        };
        let record = match loaded {
            Some(record) if !record.ended => record,
            Some(_) => return None,
            None if create => {
                self.counters.calls_seen.fetch_add(1, Ordering::Relaxed);
                CallRecord::new(CallSnapshot::new(call_id.clone(), tenant.clone()))
            }
            None => return None,
        };
        let cell = Arc::new(CallCell::new(record, true));
        Some(Arc::clone(lock(&self.live).entry(call_id.clone()).or_insert(cell)))
    }

    async fn process(self: &Arc<Self>, call_id: &CallId, event: CallEvent) {
        match event {
            CallEvent::Notification(event) => self.on_event(*event).await,
            CallEvent::Effects(info, effects) => {
                let cell = lock(&self.live).get(call_id).cloned();
                let ctx = match cell {
                    Some(cell) => CallContext::new(Arc::clone(self), cell),
                    None => self.detached_context(call_id, &TenantId::from("")),
                };
                self.fire_effects(&ctx, &info, effects).await;
            }
            CallEvent::Timer(kind) => self.on_timer(call_id, kind).await,
        }
    }

    /// A context for a call the bot does not track (actions go to Graph; transfers refuse).
    fn detached_context(self: &Arc<Self>, call_id: &CallId, tenant: &TenantId) -> CallContext {
        let mut record = CallRecord::new(CallSnapshot::new(call_id.clone(), tenant.clone()));
        record.ended = true;
        let cell = Arc::new(CallCell::new(record, false));
        CallContext::new(Arc::clone(self), cell)
    }

    async fn on_event(self: &Arc<Self>, event: NotificationEvent) {
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        let kind = classify(&event.notification, &event.resource).kind;
        let cell = self
            .cell_for(&event.call_id, &event.tenant_id, kind.is_call() && !kind.is_terminal())
            .await;
        let ctx = match &cell {
            Some(cell) => CallContext::new(Arc::clone(self), Arc::clone(cell)),
            None => self.detached_context(&event.call_id, &event.tenant_id),
        };
        self.run_hook(&ctx, HookName::Notification, self.handler.on_notification(&ctx, &event))
            .await;
        if cell.is_none() {
            return;
        }
        if !kind.is_call() {
            if let (EventKind::OperationFinished, Some(operation)) = (&kind, event.notification.operation()) {
                let hook = self.handler.on_operation_completed(&ctx, operation);
                self.run_hook(&ctx, HookName::OperationCompleted, hook).await;
            }
            return;
        }
        let (steps, record) = self.apply_call_event(&ctx, &event, &kind);
        if let Some(record) = record {
            self.save(record).await;
        }
        self.run_steps(&ctx, steps).await;
    }

    /// Updates the record for a call notification and says which hooks follow.
    fn apply_call_event(
        &self,
        ctx: &CallContext,
        event: &NotificationEvent,
        kind: &EventKind,
    ) -> (Vec<Step>, Option<Arc<CallRecord>>) {
        let mut steps = Vec::new();
        let mut guard = ctx.cell().record();
        if guard.ended {
            return (steps, None);
        }
        let record = &mut *guard;
        // A notification received before the latest attempt started belongs to an
        // earlier attempt (or none) and must not move this one.
        let stale = record
            .attempt
            .as_ref()
            .is_some_and(|a| event.received_at < a.info.started_at);
        let call = event.notification.call();
        tracing::debug!(
            call_id = %event.call_id,
            sequence = event.sequence,
            change = %event.notification.change_type,
            event = kind.name(),
            stale,
            "call notification"
        );
        if let Some(call) = call.filter(|_| !stale) {
            record.snapshot.apply(call);
        }
        let mut flags = CallFlags {
            incoming_handled: record.incoming_handled,
            established_fired: record.established_fired,
        };
        let planned = plan(kind, &mut flags, record.attempt.as_mut().map(|a| &mut a.machine), stale);
        record.incoming_handled = flags.incoming_handled;
        record.established_fired = flags.established_fired;
        for step in planned {
            match step {
                Planned::Incoming => {
                    if let Some(call) = call {
                        steps.push(Step::Incoming(Box::new(call.clone()), event.received_at));
                    }
                }
                Planned::Attempt(effects) => {
                    if let Some(attempt) = &record.attempt {
                        steps.push(Step::Attempt(Box::new(attempt.info.clone()), effects));
                    }
                }
                Planned::Established => {
                    record.snapshot.established_at = Some(Instant::now());
                    steps.push(Step::Established);
                    if record.keep_alive {
                        record.keep_alive_generation += 1;
                        steps.push(Step::ScheduleKeepAlive(record.keep_alive_generation));
                    }
                }
                Planned::Terminated => {
                    record.ended = true;
                    let (result_info, termination_reason) = match kind {
                        EventKind::CallTerminated {
                            result_info,
                            termination_reason,
                        } => (result_info.clone(), termination_reason.clone()),
                        _ => (None, None),
                    };
                    steps.push(Step::Terminated(CallEnd {
                        result_info,
                        termination_reason,
                        cause: EndCause::Notification,
                    }));
                }
            }
        }
        record.version = self.next_version();
        let ended = record.ended;
        let to_save = (!ended).then(|| guard.share());
        (steps, to_save)
    }

    async fn run_steps(self: &Arc<Self>, ctx: &CallContext, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Incoming(call, received_at) => self.handle_incoming(ctx, &call, received_at).await,
                Step::Established => {
                    let hook = self.handler.on_call_established(ctx);
                    self.run_hook(ctx, HookName::CallEstablished, hook).await;
                }
                Step::ScheduleKeepAlive(generation) => {
                    self.schedule(
                        ctx.call_id(),
                        self.timings.keep_alive_interval,
                        TimerKind::KeepAlive(generation),
                    );
                }
                Step::Attempt(info, effects) => self.fire_effects(ctx, &info, effects).await,
                Step::Terminated(end) => self.terminate(ctx, end).await,
            }
        }
    }

    async fn handle_incoming(self: &Arc<Self>, ctx: &CallContext, call: &Call, received_at: Instant) {
        let deadline = self.timings.incoming_decision_deadline;
        let decision = self
            .run_hook(ctx, HookName::IncomingCall, self.handler.on_incoming_call(ctx, call))
            .await;
        let result = match decision {
            Some(IncomingDecision::Answer(options)) => ctx.answer(options).await.map_err(|e| ("answer", e)),
            Some(IncomingDecision::Reject(reason)) => ctx.reject(reason).await.map_err(|e| ("reject", e)),
            Some(IncomingDecision::Redirect(targets)) => ctx.redirect(targets).await.map_err(|e| ("redirect", e)),
            Some(IncomingDecision::Ignore) | None => Ok(()),
        };
        let elapsed = received_at.elapsed();
        if elapsed > deadline {
            self.counters.late_incoming_decisions.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                call_id = %ctx.call_id(),
                ?elapsed,
                ?deadline,
                "incoming call decision not made in time; Graph may already have dropped the call"
            );
        }
        if let Err((action, error)) = result {
            self.errors
                .runtime_failed(ctx.call_id(), &RuntimeFailure::Graph { action, error });
        }
    }

    /// Runs the hooks for attempt effects, in order, and settles the attempt's handle.
    pub(crate) async fn fire_effects(&self, ctx: &CallContext, info: &TransferInfo, effects: Vec<AttemptEffect>) {
        for effect in effects {
            let name = effect.hook();
            match effect {
                AttemptEffect::Transferring => {
                    let hook = self.handler.on_transferring(ctx, info);
                    self.run_hook(ctx, name, hook).await;
                }
                AttemptEffect::Accepted { inferred } => {
                    let hook = self.handler.on_transfer_accepted(ctx, info, inferred);
                    self.run_hook(ctx, name, hook).await;
                }
                AttemptEffect::Completed => {
                    self.counters.transfer_completed();
                    tracing::info!(call_id = %info.call_id, attempt = %info.id, "transfer completed");
                    let hook = self.handler.on_transfer_completed(ctx, info);
                    self.run_hook(ctx, name, hook).await;
                    self.resolve_waiter(info.id, TransferOutcome::Completed);
                }
                AttemptEffect::Failed(failure) => {
                    self.counters.transfer_failed(failure.label());
                    tracing::info!(call_id = %info.call_id, attempt = %info.id, %failure, "transfer failed");
                    let hook = self.handler.on_transfer_failed(ctx, info, &failure);
                    self.run_hook(ctx, name, hook).await;
                    self.resolve_waiter(info.id, TransferOutcome::Failed(failure));
                }
            }
        }
    }

    async fn terminate(&self, ctx: &CallContext, end: CallEnd) {
        let call_id = ctx.call_id().clone();
        self.counters.calls_ended.fetch_add(1, Ordering::Relaxed);
        let hook = self.handler.on_call_terminated(ctx, &end);
        self.run_hook(ctx, HookName::CallTerminated, hook).await;
        lock(&self.tombstones).insert(call_id.clone());
        lock(&self.live).remove(&call_id);
        if let Err(error) = self.store.remove(&call_id).await {
            self.errors.runtime_failed(&call_id, &RuntimeFailure::Store(error));
        }
    }

    async fn on_timer(self: &Arc<Self>, call_id: &CallId, kind: TimerKind) {
        let Some(cell) = lock(&self.live).get(call_id).cloned() else {
            return;
        };
        let ctx = CallContext::new(Arc::clone(self), cell);
        match kind {
            TimerKind::AttemptTimeout(id) | TimerKind::UnknownOutcome(id) => {
                let input = match kind {
                    TimerKind::AttemptTimeout(_) => AttemptInput::TimedOut,
                    _ => AttemptInput::UnknownOutcomeExpired,
                };
                let step = {
                    let mut record = ctx.cell().record();
                    record.attempt.as_mut().filter(|a| a.info.id == id).and_then(|attempt| {
                        let effects = attempt.machine.handle(input);
                        (!effects.is_empty()).then(|| (attempt.info.clone(), effects))
                    })
                };
                if let Some((info, effects)) = step {
                    self.fire_effects(&ctx, &info, effects).await;
                }
            }
            TimerKind::KeepAlive(generation) => self.keep_alive(&ctx, generation).await,
        }
    }

    async fn keep_alive(self: &Arc<Self>, ctx: &CallContext, generation: u64) {
        let due = {
            let record = ctx.cell().record();
            !record.ended && record.keep_alive && record.keep_alive_generation == generation
        };
        if !due {
            return;
        }
        match self.client.keep_alive(ctx.call_id()).await {
            Ok(_) => {
                self.counters.keep_alives.fetch_add(1, Ordering::Relaxed);
                self.schedule(
                    ctx.call_id(),
                    self.timings.keep_alive_interval,
                    TimerKind::KeepAlive(generation),
                );
            }
            Err(error) if error.is_not_found() => {
                let mut steps = Vec::new();
                {
                    let mut record = ctx.cell().record();
                    if record.ended {
                        return;
                    }
                    record.ended = true;
                    if let Some(attempt) = record.attempt.as_mut() {
                        let effects = attempt.machine.handle(AttemptInput::CallGone { result_info: None });
                        if !effects.is_empty() {
                            steps.push(Step::Attempt(Box::new(attempt.info.clone()), effects));
                        }
                    }
                }
                steps.push(Step::Terminated(CallEnd {
                    result_info: None,
                    termination_reason: None,
                    cause: EndCause::KeepAliveNotFound,
                }));
                self.run_steps(ctx, steps).await;
            }
            Err(error) => {
                self.errors.runtime_failed(
                    ctx.call_id(),
                    &RuntimeFailure::Graph {
                        action: "keepAlive",
                        error,
                    },
                );
                self.schedule(
                    ctx.call_id(),
                    self.timings.keep_alive_retry,
                    TimerKind::KeepAlive(generation),
                );
            }
        }
    }

    /// Runs a hook, turning errors and panics into reports to the error handler.
    pub(crate) async fn run_hook<T>(
        &self,
        ctx: &CallContext,
        hook: HookName,
        future: impl Future<Output = Result<T, HookError>>,
    ) -> Option<T> {
        let failure = match AssertUnwindSafe(future).catch_unwind().await {
            Ok(Ok(value)) => return Some(value),
            Ok(Err(error)) => {
                self.counters.hook_errors.fetch_add(1, Ordering::Relaxed);
                HookFailure::Error(error)
            }
            Err(panic) => {
                self.counters.hook_panics.fetch_add(1, Ordering::Relaxed);
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_owned());
                HookFailure::Panicked(message)
            }
        };
        let report = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.errors.hook_failed(ctx.call_id(), hook, &failure);
        }));
        if report.is_err() {
            tracing::error!(call_id = %ctx.call_id(), %hook, "the error handler panicked while reporting: {failure}");
        }
        None
    }
}

/// Classifies a failed `POST /transfer`: was it certainly not acted on?
pub(crate) fn post_failure_input(error: &GraphClientError) -> Option<AttemptInput> {
    match error {
        GraphClientError::OutcomeUnknown { .. }
        | GraphClientError::Timeout { .. }
        | GraphClientError::Network { .. } => Some(AttemptInput::PostOutcomeUnknown),
        // A 2xx whose body did not parse: Graph accepted it.
        GraphClientError::Decode { .. } => None,
        other => Some(AttemptInput::PostRejected(
            crate::outcome::ClientErrorSummary::from_error(other),
        )),
    }
}

/// The single timer task: a heap of due times; fired timers go through their
/// call's queue so they are ordered with its notifications.
async fn timer_loop(shared: Weak<Shared>, mut requests: mpsc::UnboundedReceiver<TimerRequest>) {
    let mut heap: BinaryHeap<Reverse<(tokio::time::Instant, u64)>> = BinaryHeap::new();
    let mut entries: HashMap<u64, (CallId, TimerKind)> = HashMap::new();
    let mut sequence = 0u64;
    loop {
        let next_due = heap.peek().map(|Reverse((due, _))| *due);
        let sleep = async {
            match next_due {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            request = requests.recv() => match request {
                Some(request) => {
                    sequence += 1;
                    heap.push(Reverse((request.due, sequence)));
                    entries.insert(sequence, (request.call_id, request.kind));
                }
                None => return,
            },
            () = sleep => {
                let Some(shared) = shared.upgrade() else { return };
                let now = tokio::time::Instant::now();
                while let Some(Reverse((due, id))) = heap.peek().copied() {
                    if due > now {
                        break;
                    }
                    heap.pop();
                    if let Some((call_id, kind)) = entries.remove(&id)
                        && shared.is_live(&call_id)
                    {
                        shared.route(call_id, CallEvent::Timer(kind));
                    }
                }
            }
        }
    }
}
