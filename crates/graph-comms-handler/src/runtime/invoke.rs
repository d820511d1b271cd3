//! Running hooks: under the hook timeout, with errors and panics reported to
//! the error handler, never taking the call's queue or the server down.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::FutureExt;
use graph_comms_model::Call;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::Runtime;
use crate::context::CallContext;
use crate::hooks::HookError;
use crate::report::{HookFailure, HookName, RuntimeFailure};
use graph_comms_core::attempt::{TransferInfo, TransferOutcome};
use graph_comms_core::decision::IncomingDecision;
use graph_comms_core::transfer_machine::AttemptEffect;

impl Runtime {
    /// Runs a hook, turning errors, panics and overruns into reports to the error handler.
    pub(crate) async fn run_hook<T>(
        &self,
        ctx: &CallContext,
        hook: HookName,
        future: impl Future<Output = Result<T, HookError>>,
    ) -> Option<T> {
        let limit = self.timings.hook_timeout;
        // The Graph requests and transfers a hook makes are children of its span.
        let span = tracing::info_span!("hook", hook = %hook, hook.outcome = Empty);
        let run = AssertUnwindSafe(future.instrument(span.clone())).catch_unwind();
        let result = tokio::time::timeout(limit, run).await;
        span.record(
            "hook.outcome",
            match &result {
                Ok(Ok(Ok(_))) => "ok",
                Ok(Ok(Err(_))) => "error",
                Ok(Err(_)) => "panicked",
                Err(_) => "timed_out",
            },
        );
        drop(span);
        let failure = match result {
            Ok(Ok(Ok(value))) => return Some(value),
            Ok(Ok(Err(error))) => {
                self.counters.hook_errors.fetch_add(1, Ordering::Relaxed);
                if error.is::<crate::hooks::RetryLater>() {
                    // Under a lease its outbox step stays for another run; without one it is only reported.
                    self.held.request_retry(ctx.call_id());
                }
                HookFailure::Error(error)
            }
            Ok(Err(panic)) => {
                self.counters.hook_panics.fetch_add(1, Ordering::Relaxed);
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_owned());
                HookFailure::Panicked(message)
            }
            Err(_) => {
                self.counters.hook_timeouts.fetch_add(1, Ordering::Relaxed);
                HookFailure::TimedOut(limit)
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

    /// Runs the hooks for attempt effects, in order, and settles the attempt's handle.
    pub(crate) async fn fire_effects(&self, ctx: &CallContext, info: &TransferInfo, effects: Vec<AttemptEffect>) {
        let redelivered;
        let info = if ctx.is_redelivery() && !info.redelivered {
            let mut again = info.clone();
            again.redelivered = true;
            redelivered = again;
            &redelivered
        } else {
            info
        };
        for effect in effects {
            let name = HookName::of_effect(&effect);
            match effect {
                AttemptEffect::Transferring => {
                    let hook = self.handler.on_transferring(ctx, info);
                    self.run_hook(ctx, name, hook).await;
                }
                AttemptEffect::Accepted { inferred } => {
                    self.counters.transfers_accepted.fetch_add(1, Ordering::Relaxed);
                    let hook = self.handler.on_transfer_accepted(ctx, info, inferred);
                    self.run_hook(ctx, name, hook).await;
                }
                AttemptEffect::Completed => {
                    self.counters.transfer_completed();
                    tracing::info!(call_id = %info.call_id, attempt = %info.id, redelivered = info.redelivered, "transfer completed");
                    let span = super::transfer::outcome_span(info);
                    span.record("transfer.outcome", "completed");
                    let hook = self.handler.on_transfer_completed(ctx, info);
                    self.run_hook(ctx, name, hook).instrument(span).await;
                    self.resolve_waiter(info.id, TransferOutcome::Completed);
                }
                AttemptEffect::Failed(failure) => {
                    let span = super::transfer::outcome_span(info);
                    span.record("transfer.outcome", "failed");
                    span.record("transfer.cause", failure.label());
                    self.transfer_failed(ctx, info, name, failure).instrument(span).await;
                }
            }
        }
    }

    /// An attempt's failure: logged, its consultation hung up, its hook run, its handle settled.
    async fn transfer_failed(
        &self,
        ctx: &CallContext,
        info: &TransferInfo,
        name: HookName,
        failure: crate::TransferFailure,
    ) {
        self.counters.transfer_failed(failure.label());
        let hint = failure.hint().unwrap_or_default();
        tracing::info!(
            call_id = %info.call_id,
            attempt = %info.id,
            redelivered = info.redelivered,
            reason = failure.label(),
            %failure,
            hint,
            "transfer failed"
        );
        if !matches!(failure, crate::TransferFailure::ConsultationEnded { .. })
            && let Some(consultation) = self.consultation_to_hang_up(ctx, info)
        {
            // Nothing will be transferred to it.
            self.hang_up_consultation(ctx, &consultation).await;
        }
        let hook = self.handler.on_transfer_failed(ctx, info, &failure);
        self.run_hook(ctx, name, hook).await;
        self.resolve_waiter(info.id, TransferOutcome::Failed(failure));
    }

    /// Asks the handler about an incoming call and carries out its decision.
    pub(super) async fn handle_incoming(self: &Arc<Self>, ctx: &CallContext, call: &Call, received: Option<Instant>) {
        let deadline = self.timings.incoming_decision_deadline;
        let decision = self
            .run_hook(ctx, HookName::IncomingCall, self.handler.on_incoming_call(ctx, call))
            .await;
        let result = match decision {
            Some(IncomingDecision::Answer(options)) => ctx
                .answer(options)
                .instrument(tracing::info_span!("answer"))
                .await
                .map_err(|e| ("answer", e)),
            Some(IncomingDecision::Reject(reason)) => ctx.reject(reason).await.map_err(|e| ("reject", e)),
            Some(IncomingDecision::Redirect(targets)) => ctx.redirect(targets).await.map_err(|e| ("redirect", e)),
            Some(IncomingDecision::Ignore) | None => Ok(()),
        };
        let elapsed = received.map(|at| at.elapsed()).unwrap_or_default();
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
}
