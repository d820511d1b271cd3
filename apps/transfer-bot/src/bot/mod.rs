//! The receptionist: answers, optionally plays a hold prompt, then walks the
//! routed target list until a transfer completes; apologises and hangs up when
//! no target takes the call.
//!
//! A call's plan lives in the call's record (`CallContext::data`), so any
//! instance sharing the store carries it on (`bot/plan.rs`). A consultative
//! target is one attempt of the framework's (`CallContext::consult`,
//! `bot/consult.rs`): it places the consultation call, transfers into it when it
//! answers, and its failure reaches `on_transfer_failed` like a blind one's.
//! Progress goes out as [`BotEvent`]s; the auto attendant's policy is [`crate::menu`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use graph_comms_handler::model::{Call, CallId, ParticipantInfo, Prompt, TransferRequest};
use graph_comms_handler::{
    AnswerOptions, CallContext, CallEnd, CallHandler, CollectError, HangUpError, HookError, IncomingDecision,
    RetryLater, TransferError, TransferFailure, TransferInfo, async_trait,
};
use tokio::sync::mpsc::UnboundedSender;

mod consult;
mod events;
mod plan;

pub use events::{BotEvent, BotEventKind};
pub use plan::CallOutcome;
use plan::{Phase, Plan, plan, update_plan};

use crate::menu::Menu;
use crate::metrics::Metrics;
use crate::routing::{RoutingPolicy, Target, TransferMode, called_ids};

/// What the receptionist needs besides the routing policy.
#[derive(Debug, Clone)]
pub struct ReceptionistSettings {
    /// Played after answering, while the first target is tried.
    pub hold_prompt_uri: Option<String>,
    /// Played before hanging up when no target took the call.
    pub apology_prompt_uri: Option<String>,
    /// The bot's public callback URL, used as `callbackUri` of consultation calls.
    pub callback_uri: String,
    /// Hang up this long after starting the apology even if its completion never arrives.
    pub apology_timeout: Duration,
    /// The auto attendant, if configured.
    pub menu: Option<Menu>,
    /// The bot's resource account with a number: the source of consultation calls to numbers.
    pub application_instance_id: Option<String>,
}

/// The reason a transfer did not start because the call store failed: the
/// call is left as it is, for the instance that takes it over.
const STORE_FAILED: &str = "the call store is unavailable";

/// Why a target's attempt did not start, for the log and the next target;
/// [`STORE_FAILED`] when the store failed: not the target's fault, this instance
/// cannot write the call now and the instance that takes it over runs the step again.
fn not_started(error: TransferError) -> String {
    match error {
        TransferError::Store(e) => {
            tracing::warn!(error = %e, "call store failed; leaving the call to the instance that takes it over");
            STORE_FAILED.to_owned()
        }
        other => other.to_string(),
    }
}

/// The bot's [`CallHandler`]: a receptionist driven by a [`RoutingPolicy`].
pub struct Receptionist {
    policy: RoutingPolicy,
    settings: ReceptionistSettings,
    metrics: Arc<Metrics>,
    events: Option<UnboundedSender<BotEvent>>,
}

impl fmt::Debug for Receptionist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receptionist")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn end_code(end: &CallEnd) -> String {
    match &end.result_info {
        Some(r) => format!(
            "{}/{}",
            r.code.map_or_else(|| "-".into(), |c| c.to_string()),
            r.subcode.map_or_else(|| "-".into(), |c| c.to_string())
        ),
        None => end.termination_reason.clone().unwrap_or_else(|| "no resultInfo".into()),
    }
}

impl Receptionist {
    /// A receptionist for this policy.
    pub fn new(policy: RoutingPolicy, settings: ReceptionistSettings, metrics: Arc<Metrics>) -> Self {
        Self {
            policy,
            settings,
            metrics,
            events: None,
        }
    }

    /// Also reports every step to `events` (the demo's progress output).
    #[must_use]
    pub fn with_events(mut self, events: UnboundedSender<BotEvent>) -> Self {
        self.events = Some(events);
        self
    }

    fn emit(&self, call_id: &CallId, kind: BotEventKind) {
        if let Some(events) = &self.events {
            let _ = events.send(BotEvent {
                call_id: call_id.clone(),
                kind,
            });
        }
    }

    /// Moves the call to its next target, or to the apology when none is left.
    async fn advance(&self, ctx: &CallContext) {
        loop {
            let step = update_plan(ctx, |plan| {
                if matches!(plan.phase, Phase::Apologising | Phase::HangingUp) {
                    return None;
                }
                match plan.targets.get(plan.next).cloned() {
                    Some(target) => {
                        plan.next += 1;
                        plan.tried.push(target.to_string());
                        plan.current = Some(target.clone());
                        // A consultative target's attempt covers its consultation call.
                        plan.phase = Phase::Transferring;
                        Some(Some((target, plan.transferee.clone())))
                    }
                    None => {
                        plan.phase = Phase::Apologising;
                        plan.current = None;
                        Some(None)
                    }
                }
            })
            .await
            .flatten();
            let Some(step) = step else { return };
            let Some((target, transferee)) = step else {
                self.apologise(ctx).await;
                return;
            };
            let started = match target.mode {
                TransferMode::Blind => self.start_transfer(ctx, &target, transferee).await,
                TransferMode::Consultative => self.start_consultation(ctx, &target, transferee).await,
            };
            match started {
                Ok(()) => return,
                Err(reason) if reason == STORE_FAILED => return,
                Err(reason) => self.record_failure(ctx.call_id(), &target, "not_started", &reason),
            }
        }
    }

    fn record_failure(&self, call_id: &CallId, target: &Target, label: &'static str, reason: &str) {
        tracing::info!(target = %target, reason, "transfer attempt failed; trying the next target");
        self.metrics.target_skipped(label);
        self.emit(
            call_id,
            BotEventKind::TransferFailed {
                target: target.to_string(),
                reason: reason.to_owned(),
            },
        );
    }

    async fn start_transfer(
        &self,
        ctx: &CallContext,
        target: &Target,
        transferee: Option<ParticipantInfo>,
    ) -> Result<(), String> {
        tracing::info!(target = %target, mode = target.mode.as_str(), "transferring");
        self.emit(
            ctx.call_id(),
            BotEventKind::TransferStarted {
                target: target.to_string(),
                mode: target.mode,
            },
        );
        match ctx.transfer(Self::request(target, transferee)).await {
            Ok(_) => {}
            Err(e) => return Err(not_started(e)),
        }
        self.metrics.transfer_started(target.mode.as_str());
        Ok(())
    }

    /// The transfer request for `target` (the framework adds `replacesCallId` for a consultation).
    fn request(target: &Target, transferee: Option<ParticipantInfo>) -> TransferRequest {
        let mut request = target.transfer_request();
        if let Some(transferee) = transferee {
            request = request.transferee(transferee);
        }
        request.build()
    }

    /// An error when the current target did not start because the call store
    /// failed: the framework keeps the hook to run it again.
    fn check_started(&self, ctx: &CallContext) -> Result<(), HookError> {
        let stalled = plan(ctx).is_some_and(|p| {
            matches!(p.phase, Phase::Transferring | Phase::Consulting(_))
                && p.current.is_some()
                && ctx.pending_attempt().is_none()
        });
        if stalled {
            return Err(RetryLater::new(STORE_FAILED).into());
        }
        Ok(())
    }

    /// Carries on with a call whose `on_call_established` ran before on an
    /// instance that stopped: an attempt under way (a consultation included) goes
    /// on; a target whose attempt did not start is tried again.
    async fn resume(&self, ctx: &CallContext, plan: &Plan) {
        let started = ctx.pending_attempt().is_some();
        let stalled = matches!(plan.phase, Phase::Transferring | Phase::Consulting(_));
        if started || !stalled || plan.current.is_none() {
            return;
        }
        tracing::info!("resuming the call: its current target did not start");
        update_plan(ctx, |plan| {
            plan.next = plan.next.saturating_sub(1);
            plan.tried.pop();
            plan.phase = Phase::Ringing;
        })
        .await;
        self.advance(ctx).await;
    }

    async fn apologise(&self, ctx: &CallContext) {
        self.emit(ctx.call_id(), BotEventKind::Apologising);
        tracing::info!("no target took the call; apologising");
        let Some(uri) = self.settings.apology_prompt_uri.clone() else {
            self.hang_up(ctx).await;
            return;
        };
        match ctx.play_prompt(vec![Prompt::media(uri)]).await {
            // Awaited here, in the call's order: the hang-up follows the apology's end.
            Ok(prompt) => {
                if let Err(e) = prompt.timeout(self.settings.apology_timeout).await {
                    tracing::info!(reason = %e, "the apology did not complete; hanging up");
                }
                self.hang_up(ctx).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "apology prompt failed; hanging up");
                self.hang_up(ctx).await;
            }
        }
    }

    /// Plays the menu and takes the caller's choice into the plan; `false`
    /// when the caller hung up meanwhile.
    async fn run_menu(&self, ctx: &CallContext, menu: &Menu) -> bool {
        let collected = match menu.collection() {
            Ok(spec) => ctx.collect_digits(&spec).await,
            Err(e) => {
                tracing::warn!(error = %e, "menu collection refused; sending the caller to the operator");
                Err(CollectError::Timeout)
            }
        };
        let pressed = match collected {
            Ok(digits) => digits.chars().next(),
            Err(CollectError::HungUp) => {
                tracing::info!("the caller hung up in the menu");
                return false;
            }
            Err(CollectError::Timeout) => None,
            Err(e) => {
                tracing::warn!(error = %e, "menu failed; sending the caller to the operator");
                None
            }
        };
        let choice = menu.choose(pressed);
        tracing::info!(choice = %choice, "menu choice");
        self.emit(
            ctx.call_id(),
            BotEventKind::MenuChoice {
                choice: choice.to_string(),
            },
        );
        update_plan(ctx, |plan| {
            plan.targets = menu.targets(&choice, std::mem::take(&mut plan.targets));
            plan.menu_pending = false;
            plan.choice = Some(choice.clone());
        })
        .await;
        true
    }

    async fn hang_up(&self, ctx: &CallContext) {
        update_plan(ctx, |plan| plan.phase = Phase::HangingUp).await;
        self.emit(ctx.call_id(), BotEventKind::HangingUp);
        match ctx.hang_up().await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            // Never drop a caller mid-transfer: that attempt's outcome hook decides again.
            Err(e @ HangUpError::TransferInFlight { .. }) => tracing::info!(error = %e, "not hanging up"),
            Err(e) => tracing::warn!(error = %e, "hang-up failed"),
        }
    }

    fn current_target(ctx: &CallContext) -> String {
        plan(ctx)
            .and_then(|p| p.current)
            .map_or_else(|| "?".into(), |t| t.to_string())
    }
}

#[async_trait]
impl CallHandler for Receptionist {
    async fn on_incoming_call(&self, ctx: &CallContext, call: &Call) -> Result<IncomingDecision, HookError> {
        let targets = self.policy.targets_for(call).to_vec();
        async {
            tracing::info!(targets = targets.len(), "incoming call; answering");
            self.emit(ctx.call_id(), BotEventKind::Incoming { targets: targets.len() });
            let is_group = ctx.is_group() || call.chat_info.as_ref().is_some_and(|c| c.thread_id.is_some());
            // Out of a group call, the caller is the one who moves.
            let transferee = is_group.then(|| call.source.clone()).flatten();
            let called = called_ids(call);
            let menu_pending = self.settings.menu.as_ref().is_some_and(|menu| {
                menu.match_called_id.is_none() || called.iter().any(|id| menu.applies_to(Some(id)))
            });
            let plan = Plan {
                targets,
                next: 0,
                tried: Vec::new(),
                current: None,
                consultation: None,
                transferee,
                phase: Phase::Ringing,
                outcome: None,
                menu_pending,
                choice: None,
            };
            // A run again after a takeover keeps the plan the first run made.
            if self::plan(ctx).is_none()
                && let Err(e) = ctx.set_data(&plan).await
            {
                tracing::warn!(error = %e, "could not store the call plan");
            }
        }
        .await;
        Ok(IncomingDecision::Answer(AnswerOptions::audio()))
    }

    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        let call_id = ctx.call_id();
        let Some(plan) = plan(ctx) else {
            // Not an inbound call of this receptionist.
            return Ok(());
        };
        if plan.phase != Phase::Ringing {
            // This hook already ran (it runs again after a takeover): carry on from the plan.
            self.resume(ctx, &plan).await;
            return self.check_started(ctx);
        }
        async {
            self.emit(call_id, BotEventKind::Established);
            if plan.menu_pending
                && let Some(menu) = self.settings.menu.as_ref()
                && !self.run_menu(ctx, menu).await
            {
                return;
            }
            if let Some(uri) = self.settings.hold_prompt_uri.clone()
                && let Err(e) = ctx.play_prompt(vec![Prompt::media(uri)]).await
            {
                tracing::warn!(error = %e, "hold prompt failed; transferring anyway");
            }
            self.advance(ctx).await;
        }
        .await;
        self.check_started(ctx)
    }

    async fn on_transfer_accepted(
        &self,
        ctx: &CallContext,
        attempt: &TransferInfo,
        inferred: bool,
    ) -> Result<(), HookError> {
        let target = Self::current_target(ctx);
        tracing::info!(attempt = %attempt.id, target = %target, inferred, redelivered = attempt.redelivered, "transfer accepted");
        self.emit(ctx.call_id(), BotEventKind::TransferAccepted { target });
        Ok(())
    }

    async fn on_transfer_completed(&self, ctx: &CallContext, attempt: &TransferInfo) -> Result<(), HookError> {
        let target = Self::current_target(ctx);
        // `call_id` as a field too: `demo --instances` reads completions from the JSON logs.
        tracing::info!(call_id = %ctx.call_id(), attempt = %attempt.id, target = %target, redelivered = attempt.redelivered, "transfer completed");
        let outcome = CallOutcome::Transferred { target: target.clone() };
        update_plan(ctx, |plan| plan.outcome = Some(outcome)).await;
        self.emit(ctx.call_id(), BotEventKind::TransferCompleted { target });
        Ok(())
    }

    async fn on_transfer_failed(
        &self,
        ctx: &CallContext,
        attempt: &TransferInfo,
        failure: &TransferFailure,
    ) -> Result<(), HookError> {
        let call_id = ctx.call_id();
        async {
            let plan = plan(ctx);
            let current = plan.as_ref().and_then(|p| p.current.as_ref());
            if current.is_some_and(|target| !target.is_target_of(&attempt.request)) {
                // An earlier target's hook run again after a takeover: the plan has moved on.
                tracing::info!(attempt = %attempt.id, redelivered = attempt.redelivered, "transfer failed (an earlier attempt)");
                return;
            }
            let target = plan.as_ref().and_then(|p| p.current.clone());
            let label = target.as_ref().map_or_else(|| "?".into(), ToString::to_string);
            let hint = failure.hint().unwrap_or_default();
            tracing::info!(attempt = %attempt.id, target = %label, reason = %failure, hint, redelivered = attempt.redelivered, "transfer failed");
            let mut reason = failure.to_string();
            if let Some(hint) = failure.hint().filter(|hint| !reason.contains(hint)) {
                reason = format!("{reason} (hint: {hint})");
            }
            self.emit(call_id, BotEventKind::TransferFailed { target: label, reason });
            // When the call itself is gone there is nothing left to transfer.
            if !matches!(failure, TransferFailure::CallEnded { .. } | TransferFailure::Abandoned) {
                self.advance(ctx).await;
            }
        }
        .await;
        Ok(())
    }

    async fn on_call_terminated(&self, ctx: &CallContext, end: &CallEnd) -> Result<(), HookError> {
        let call_id = ctx.call_id();
        let Some(plan) = plan(ctx) else {
            return Ok(());
        };
        let outcome = plan.outcome.unwrap_or_else(|| match plan.phase {
            Phase::Apologising | Phase::HangingUp => CallOutcome::Apologised,
            _ => CallOutcome::Dropped { reason: end_code(end) },
        });
        // Machine-readable too: the cluster demo reads it from the instances' JSON logs.
        let outcome_json = serde_json::to_string(&outcome).unwrap_or_default();
        tracing::info!(
            call_id = %call_id,
            outcome = %outcome,
            outcome_json,
            path = plan.tried.join(" -> "),
            tried = plan.tried.len(),
            "call finished"
        );
        self.metrics.call_ended(outcome.label());
        self.emit(
            call_id,
            BotEventKind::Finished {
                outcome,
                tried: plan.tried,
            },
        );
        Ok(())
    }
}
