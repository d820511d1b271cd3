//! One event through the call machine: commit the record, then carry out its
//! steps (hooks, keep-alive, lookups) in order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use graph_comms_model::{CallId, TenantId};
use graph_comms_notify::NotificationEvent;

use super::Runtime;
use super::queue::CallEvent;
use super::state::Missing;
use crate::context::CallContext;
use crate::report::{HookName, RuntimeFailure};
use graph_comms_core::event::{EventKind, event_kind};
use graph_comms_core::lifecycle::{CallInput, KeepAliveResult, Step};
use graph_comms_core::record::CallRecord;
use graph_comms_core::stepping::step;
use graph_comms_core::transfer_machine::CallLookup;

impl Runtime {
    /// What Graph says about the call now (`GET /communications/calls/{id}`).
    pub(super) async fn look_up(&self, call_id: &CallId, tenant: &TenantId) -> CallLookup {
        match self.client_for(tenant).get_call(call_id).await {
            Ok(response) => CallLookup::Found {
                state: response.value.state.clone(),
                result_info: response.value.result_info.clone(),
                termination_reason: response.value.termination_reason().map(str::to_owned),
            },
            Err(error) if error.is_not_found() => CallLookup::NotFound,
            Err(error) => CallLookup::Failed(crate::transfer_handle::summarize(&error)),
        }
    }

    pub(super) async fn process(self: &Arc<Self>, call_id: &CallId, event: CallEvent) {
        match event {
            CallEvent::Notification(event) => self.on_notification(*event).await,
            CallEvent::Input(id, input) => {
                self.apply(call_id, CallInput::Attempt { id, input: *input }).await;
            }
            CallEvent::Fire(info, effects) => {
                let ctx = self.context(call_id, &TenantId::from(""), None);
                self.fire_effects(&ctx, &info, effects).await;
            }
            CallEvent::Wake => {
                if !self.is_shutting_down() {
                    self.apply(call_id, CallInput::Wake).await;
                }
            }
            CallEvent::Consultation(consultation) => {
                let (consultation, event) = *consultation;
                self.consultation_event(call_id, &consultation, event).await;
            }
        }
    }

    /// Fires the consultation hook on the call the consultation was placed for.
    pub(super) async fn consultation_event(
        self: &Arc<Self>,
        call_id: &CallId,
        consultation: &CallId,
        event: graph_comms_core::decision::ConsultationEvent,
    ) {
        // From the store when not cached: an ended call's record leaves the
        // cache, and the consultation's end often comes after the call's own.
        let record = match self.with_store_retries(|| self.current(call_id)).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                tracing::debug!(call_id = %call_id, consultation = %consultation, "consultation event for a call no longer kept: dropped");
                return;
            }
            Err(error) => {
                self.store_failed(call_id, error);
                return;
            }
        };
        let tenant = record.snapshot.tenant_id.clone();
        let ctx = self.context(call_id, &tenant, Some(record));
        if let Some(id) = consulted_attempt(&ctx, consultation) {
            // A consultation `consult` placed: its events drive the attempt, not the hooks.
            match event {
                graph_comms_core::decision::ConsultationEvent::Established => {
                    self.consultation_answered(call_id, id).await
                }
                graph_comms_core::decision::ConsultationEvent::Ended { end } => {
                    let input = graph_comms_core::transfer_machine::AttemptInput::ConsultationEnded {
                        result_info: end.result_info,
                    };
                    self.apply(call_id, CallInput::Attempt { id, input }).await;
                }
            }
            return;
        }
        match event {
            graph_comms_core::decision::ConsultationEvent::Established => {
                let hook = self.handler.on_consultation_established(&ctx, consultation);
                self.run_hook(&ctx, HookName::ConsultationEstablished, hook).await;
            }
            graph_comms_core::decision::ConsultationEvent::Ended { end } => {
                let hook = self.handler.on_consultation_ended(&ctx, consultation, &end);
                self.run_hook(&ctx, HookName::ConsultationEnded, hook).await;
            }
        }
    }

    /// Sends what happened to a consultation call to the call it was placed for.
    pub(crate) async fn forward_consultation(
        self: &Arc<Self>,
        parent: &CallId,
        consultation: &CallId,
        event: graph_comms_core::decision::ConsultationEvent,
    ) {
        tracing::debug!(call_id = %parent, consultation = %consultation, ?event, "consultation event");
        match &self.sharing {
            Some(sharing) => {
                let item = graph_comms_core::shared_store::InboxItem::Consultation {
                    consultation: consultation.clone(),
                    event,
                };
                // In the parent's inbox, for whichever instance holds it; a wake-up claims it if free.
                if self.hand_over(sharing, parent, item).await {
                    self.route(parent.clone(), CallEvent::Wake);
                }
            }
            None => self.route(
                parent.clone(),
                CallEvent::Consultation(Box::new((consultation.clone(), event))),
            ),
        }
    }

    pub(super) async fn on_notification(self: &Arc<Self>, event: NotificationEvent) {
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        let kind = event_kind(&event.notification, &event.resource);
        let consultation_for = event
            .delivery
            .query_param(super::consult::CONSULTATION_FOR)
            .map(CallId::from);
        let input = if kind.is_call() {
            CallInput::Notification {
                kind: &kind,
                call: event.notification.call(),
                message: event.delivery.key(),
                consultation_for: consultation_for.as_ref(),
            }
        } else {
            CallInput::Activity
        };
        let missing = if kind.is_call() && !kind.is_terminal() {
            Missing::Create
        } else {
            Missing::Skip
        };
        tracing::debug!(
            call_id = %event.call_id,
            sequence = event.sequence,
            change = %event.notification.change_type,
            event = kind.name(),
            "notification"
        );
        let committed = self
            .commit(&event.call_id, &event.tenant_id, missing, input.clone())
            .await;
        let (steps, record) = match committed {
            Some((steps, record)) => (steps, Some(record)),
            None => (Vec::new(), None),
        };
        let tracked = record.as_ref().is_some_and(|r| !r.is_ended() || steps_end_call(&steps));
        let ctx = self.context(&event.call_id, &event.tenant_id, record);
        self.run_hook(&ctx, HookName::Notification, self.handler.on_notification(&ctx, &event))
            .await;
        if tracked
            && kind == EventKind::OperationFinished
            && let Some(operation) = event.notification.operation()
        {
            let hook = self.handler.on_operation_completed(&ctx, operation);
            self.run_hook(&ctx, HookName::OperationCompleted, hook).await;
        }
        self.run_steps(&ctx, steps, Some(event.received_at)).await;
    }

    /// Feeds a non-notification input to a known call's record, commits, and
    /// carries out the steps (the record already knows the call's tenant).
    pub(super) async fn apply(self: &Arc<Self>, call_id: &CallId, input: CallInput<'_>) {
        let unknown_tenant = TenantId::from("");
        if let Some((steps, record)) = self.commit(call_id, &unknown_tenant, Missing::Skip, input).await {
            let ctx = self.context(call_id, &unknown_tenant, Some(record));
            self.run_steps(&ctx, steps, None).await;
        }
    }

    /// Steps the call machine on the call's record and commits the result.
    async fn commit(
        &self,
        call_id: &CallId,
        tenant: &TenantId,
        missing: Missing,
        input: CallInput<'_>,
    ) -> Option<(Vec<Step>, Arc<CallRecord>)> {
        let (timings, outbox) = (self.machine_timings, self.is_shared());
        let result = self
            .update(call_id, tenant, missing, |record| {
                let steps = step(record, input.clone(), graph_comms_core::wall::now(), &timings);
                // Committed with the change, so another instance can run them if this one stops.
                if outbox {
                    record.outbox.extend(steps.iter().filter(|s| s.runs_hooks()).cloned());
                }
                steps
            })
            .await;
        match result {
            Ok(committed) => committed,
            Err(error) => {
                self.store_failed(call_id, error);
                None
            }
        }
    }

    /// A context for hooks: the call's record if known, else a detached one
    /// (actions go to Graph; transfers are refused).
    pub(super) fn context(
        self: &Arc<Self>,
        call_id: &CallId,
        tenant: &TenantId,
        record: Option<Arc<CallRecord>>,
    ) -> CallContext {
        let record = record.or_else(|| self.cached(call_id)).unwrap_or_else(|| {
            let mut record = CallRecord::new(graph_comms_core::record::CallSnapshot::new(
                call_id.clone(),
                tenant.clone(),
            ));
            record.lifecycle.ended = true;
            Arc::new(record)
        });
        CallContext::new(Arc::clone(self), record)
    }

    /// Carries out steps in order; I/O steps feed their results back to the
    /// machine, whose further steps join the queue.
    pub(super) async fn run_steps(self: &Arc<Self>, ctx: &CallContext, steps: Vec<Step>, received: Option<Instant>) {
        let mut queue: VecDeque<Step> = steps.into();
        // Once a step's hook failed, it and the steps after it stay in the outbox.
        let mut undelivered = false;
        while let Some(next) = queue.pop_front() {
            let hooks = next.runs_hooks();
            // Only this step's hooks may ask to run again.
            self.held.take_retry(ctx.call_id());
            match next {
                Step::Incoming(call) => self.handle_incoming(ctx, &call, received).await,
                Step::Established => match ctx.record().links.consultation_for.clone() {
                    Some(parent) => {
                        let event = graph_comms_core::decision::ConsultationEvent::Established;
                        self.forward_consultation(&parent, ctx.call_id(), event).await;
                    }
                    None => {
                        let hook = self.handler.on_call_established(ctx);
                        self.run_hook(ctx, HookName::CallEstablished, hook).await;
                    }
                },
                Step::Tone(tone) => {
                    let hook = self.handler.on_tone(ctx, &tone);
                    self.run_hook(ctx, HookName::Tone, hook).await;
                }
                Step::Attempt(info, effects) => self.fire_effects(ctx, &info, effects).await,
                Step::Terminated(end) => {
                    self.counters.calls_ended.fetch_add(1, Ordering::Relaxed);
                    match ctx.record().links.consultation_for.clone() {
                        Some(parent) => {
                            let event = graph_comms_core::decision::ConsultationEvent::Ended { end };
                            self.forward_consultation(&parent, ctx.call_id(), event).await;
                        }
                        None => {
                            let hook = self.handler.on_call_terminated(ctx, &end);
                            self.run_hook(ctx, HookName::CallTerminated, hook).await;
                        }
                    }
                }
                Step::SendKeepAlive => {
                    let result = match ctx.client().keep_alive(ctx.call_id()).await {
                        Ok(_) => {
                            self.counters.keep_alives.fetch_add(1, Ordering::Relaxed);
                            KeepAliveResult::Sent
                        }
                        Err(error) if error.is_not_found() => KeepAliveResult::NotFound,
                        Err(error) => {
                            self.counters.keep_alive_failures.fetch_add(1, Ordering::Relaxed);
                            let failure = RuntimeFailure::Graph {
                                action: "keepAlive",
                                error,
                            };
                            self.errors.runtime_failed(ctx.call_id(), &failure);
                            KeepAliveResult::Failed
                        }
                    };
                    queue.extend(self.feed_back(ctx, CallInput::KeepAlive(result)).await);
                }
                Step::LookUp(id) => {
                    let lookup = self.look_up(ctx.call_id(), ctx.tenant_id()).await;
                    self.counters.timeout_lookups.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(call_id = %ctx.call_id(), attempt = %id, ?lookup, "transfer timed out; asked Graph");
                    queue.extend(self.feed_back(ctx, CallInput::Lookup { id, lookup }).await);
                }
                Step::CheckFailure(id) => {
                    let lookup = self.look_up(ctx.call_id(), ctx.tenant_id()).await;
                    self.counters.failure_checks.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(call_id = %ctx.call_id(), attempt = %id, ?lookup, "a failure an earlier attempt could have caused; asked Graph");
                    queue.extend(self.feed_back(ctx, CallInput::FailureLookup { id, lookup }).await);
                }
                Step::Duplicate => {
                    self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(call_id = %ctx.call_id(), "notification delivered again: ignored");
                }
                Step::Evict => self.evict(ctx.call_id(), ctx.record().version).await,
                Step::Late => {
                    self.counters.late_events.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(call_id = %ctx.call_id(), "event after the outcome or the call's end: ignored");
                }
            }
            // A hook that asked to run again (RetryLater) stays in the outbox, with the steps after it.
            undelivered |= hooks && self.held.take_retry(ctx.call_id());
            if hooks && self.is_shared() && !undelivered {
                // Outbox order: steps are carried out in the order they were committed.
                self.held.delivered(ctx.call_id(), 1);
            }
        }
    }

    async fn feed_back(&self, ctx: &CallContext, input: CallInput<'_>) -> Vec<Step> {
        self.commit(ctx.call_id(), ctx.tenant_id(), Missing::Skip, input)
            .await
            .map(|(steps, _)| steps)
            .unwrap_or_default()
    }
}

fn steps_end_call(steps: &[Step]) -> bool {
    steps.iter().any(|s| matches!(s, Step::Terminated(_)))
}

impl Runtime {
    /// Commits a setting changed from a hook's context; such inputs yield no steps.
    pub(crate) async fn input(&self, ctx: &CallContext, input: CallInput<'_>) {
        let _ = self.commit(ctx.call_id(), ctx.tenant_id(), Missing::Skip, input).await;
    }

    /// Stores the handler's per-call data with the record.
    pub(crate) async fn set_data(
        &self,
        ctx: &CallContext,
        value: serde_json::Value,
    ) -> Result<(), crate::context::DataError> {
        // Under a lease the change rides on the next write (at the latest the
        // release at the end of the call's current events): no round trip.
        if let Some(current) = self.cached(ctx.call_id())
            && self.held.holds(ctx.call_id())
        {
            let mut record = CallRecord::clone(&current);
            record.data = Some(value.clone());
            let record = Arc::new(record);
            if self.cache_deferred(&record) {
                ctx.committed(record);
                return Ok(());
            }
        }
        let committed = self
            .update(ctx.call_id(), ctx.tenant_id(), Missing::Skip, |record| {
                record.data = Some(value.clone());
                true
            })
            .await?;
        match committed {
            Some((true, record)) => {
                ctx.committed(record);
                Ok(())
            }
            _ => Err(crate::context::DataError::CallGone),
        }
    }
}

/// The call's latest attempt, when it was started by `consult` with this consultation call.
fn consulted_attempt(ctx: &CallContext, consultation: &CallId) -> Option<graph_comms_core::attempt::AttemptId> {
    let record = ctx.record();
    let attempt = record.attempt.as_ref()?;
    (attempt.machine.started_with_consultation()
        && attempt.info.request.transfer_target.replaces_call_id.as_ref() == Some(consultation))
    .then_some(attempt.info.id)
}
