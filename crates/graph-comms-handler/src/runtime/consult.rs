//! Consultation calls: placed for a call, linked to it in both records, their
//! establishment and end delivered to that call; and transfers that start with
//! one ([`CallContext::consult`]), driven by those events.

use std::sync::Arc;

use std::sync::atomic::Ordering;

use graph_comms_model::{Call, CallId, CallState, TenantId, TransferRequest};
use tracing::Instrument as _;

use super::Runtime;
use super::queue::CallEvent;
use super::state::{Missing, Writer};
use crate::context::{CallContext, ConsultError, ConsultationError};
use crate::transfer_handle::TransferAttempt;
use graph_comms_core::attempt::{AttemptId, TransferError};
use graph_comms_core::decision::{CallEnd, ConsultationEvent, EndCause};
use graph_comms_core::error::StoreError;
use graph_comms_core::lifecycle::CallInput;
use graph_comms_core::record::CallRecord;
use graph_comms_core::stepping::start_consulting_attempt;
use graph_comms_core::transfer_machine::AttemptInput;

/// The query parameter of a consultation call's `callbackUri` that names the
/// call it was placed for: Graph itself then says, on every notification of
/// the consultation call, where it belongs, before any link is written.
pub(super) const CONSULTATION_FOR: &str = "consultationFor";

/// `call` with its `callbackUri` (else the bot's) naming `parent` in its query.
fn addressed_to(call: &Call, bot_callback: Option<&str>, parent: &CallId) -> Call {
    let mut call = call.clone();
    if let Some(uri) = call.callback_uri.as_deref().or(bot_callback) {
        let separator = if uri.contains('?') { '&' } else { '?' };
        let encoded: String = parent
            .as_str()
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect();
        call.callback_uri = Some(format!("{uri}{separator}{CONSULTATION_FOR}={encoded}"));
    }
    call
}

/// What the consultation call's record showed when it was linked.
enum Seen {
    /// Something to deliver now.
    Event(ConsultationEvent),
    /// Notifications were seen; the next ones are delivered through the link.
    Progress,
    /// No notification kept yet: it may have ended before the bot knew it.
    Nothing,
}

impl Runtime {
    /// See [`CallContext::place_consultation`].
    pub(crate) async fn place_consultation(
        self: &Arc<Self>,
        ctx: &CallContext,
        call: &Call,
    ) -> Result<CallId, ConsultationError> {
        let call = addressed_to(call, self.callback_uri.as_deref(), ctx.call_id());
        let created = ctx.client().create_call(&call).await?;
        let consultation = created.value.id.ok_or(ConsultationError::NoId)?;
        self.link_consultation(ctx, consultation).await
    }

    /// Links a placed consultation call to `ctx`'s call in both records and
    /// forwards what it went through before the link existed.
    async fn link_consultation(
        self: &Arc<Self>,
        ctx: &CallContext,
        consultation: CallId,
    ) -> Result<CallId, ConsultationError> {
        let link_failed = |error| ConsultationError::Link {
            consultation: consultation.clone(),
            error,
        };
        let linked = consultation.clone();
        self.update(ctx.call_id(), ctx.tenant_id(), Missing::Skip, |record| {
            record.links.consultation = Some(linked.clone());
        })
        .await
        .map_err(link_failed)?;
        self.link_to_parent(ctx, &consultation).await.map_err(link_failed)?;
        Ok(consultation)
    }

    /// Marks the consultation call's record as placed for `ctx`'s call, and
    /// forwards to that call what the consultation went through before.
    pub(super) async fn link_to_parent(
        self: &Arc<Self>,
        ctx: &CallContext,
        consultation: &CallId,
    ) -> Result<(), StoreError> {
        let parent = ctx.call_id().clone();
        // Its notifications may have come first: what it went through is forwarded here.
        let link = |record: &mut graph_comms_core::record::CallRecord| {
            let addressed = record.links.consultation_for.as_ref() == Some(&parent);
            record.links.consultation_for = Some(parent.clone());
            if addressed {
                // Its callback URL named the parent: every step went there already.
                Seen::Progress
            } else if record.is_ended() {
                let end = CallEnd::new(
                    record.snapshot.result_info.as_deref().cloned(),
                    None,
                    EndCause::Notification,
                );
                Seen::Event(ConsultationEvent::Ended { end })
            } else if record.lifecycle.established_fired {
                Seen::Event(ConsultationEvent::Established)
            } else if record.snapshot.state.is_none() {
                Seen::Nothing
            } else {
                Seen::Progress
            }
        };
        let seen = self
            .update_as(consultation, ctx.tenant_id(), Missing::Create, Writer::Outsider, link)
            .await?;
        match seen.map(|(seen, _)| seen) {
            Some(Seen::Event(event)) => self.forward_consultation(&parent, consultation, event).await,
            // Nothing kept yet: the end of a call the bot did not know is not kept,
            // and its notifications may be delayed; Graph says where it is. A
            // later notification saying the same is delivered again, which the
            // handler tells by its own state.
            Some(Seen::Nothing) => {
                let event = match ctx.client().get_call(consultation).await {
                    Err(error) if error.is_not_found() => Some(ConsultationEvent::Ended {
                        end: CallEnd::new(None, None, EndCause::LookedUp),
                    }),
                    Ok(found) => match found.value.state {
                        Some(CallState::Terminated) => Some(ConsultationEvent::Ended {
                            end: CallEnd::new(found.value.result_info, None, EndCause::LookedUp),
                        }),
                        Some(CallState::Established) => Some(ConsultationEvent::Established),
                        _ => None,
                    },
                    Err(_) => None,
                };
                if let Some(event) = event {
                    self.forward_consultation(&parent, consultation, event).await;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Runtime {
    /// See [`CallContext::consult`].
    pub(crate) async fn consult(
        self: &Arc<Self>,
        ctx: &CallContext,
        consultation_call: &Call,
        request: TransferRequest,
    ) -> Result<TransferAttempt, ConsultError> {
        let span = super::transfer::consultative_span(&request);
        let result = self
            .consult_in_span(ctx, consultation_call, request)
            .instrument(span.clone())
            .await;
        let (outcome, cause) = match &result {
            Ok(_) => ("consulting", None),
            Err(ConsultError::Transfer(error)) => ("not_started", Some(error.label())),
            Err(ConsultError::Consultation(_)) => ("not_started", Some("consultation_failed")),
        };
        span.record("transfer.outcome", outcome);
        if let Some(cause) = cause {
            span.record("transfer.cause", cause);
        }
        result
    }

    async fn consult_in_span(
        self: &Arc<Self>,
        ctx: &CallContext,
        consultation_call: &Call,
        mut request: TransferRequest,
    ) -> Result<TransferAttempt, ConsultError> {
        if self.is_shutting_down() {
            return Err(TransferError::ShuttingDown.into());
        }
        // The guards first, so a refused attempt places no call.
        let mut probe = CallRecord::clone(&ctx.record());
        start_consulting_attempt(
            &mut probe,
            AttemptId::new(),
            request.clone(),
            self.allow_concurrent_transfers,
            graph_comms_core::wall::now(),
            &self.machine_timings,
        )?;
        let consultation_call = addressed_to(consultation_call, self.callback_uri.as_deref(), ctx.call_id());
        let created = ctx
            .client()
            .create_call(&consultation_call)
            .await
            .map_err(ConsultationError::from)?;
        let consultation = created.value.id.ok_or(ConsultationError::NoId)?;
        request.transfer_target.replaces_call_id = Some(consultation.clone());
        let call_id = ctx.call_id();
        let (allow, timings, shared) = (self.allow_concurrent_transfers, self.machine_timings, self.is_shared());
        let id = AttemptId::new();
        // The attempt and this call's side of the link in one write: an
        // instance that stops before the consultation's side is written leaves
        // `linking` set, and the instance taking the call over links it.
        let committed = self
            .update(call_id, ctx.tenant_id(), Missing::Skip, |record| {
                let started = start_consulting_attempt(
                    record,
                    id,
                    request.clone(),
                    allow,
                    graph_comms_core::wall::now(),
                    &timings,
                );
                if started.is_ok() {
                    record.links.consultation = Some(consultation.clone());
                    if let Some(attempt) = record.attempt.as_mut().filter(|a| a.info.id == id) {
                        attempt.linking = shared;
                    }
                }
                started
            })
            .await;
        let started = match committed {
            Ok(Some((Ok(started), _))) => Ok(started),
            Ok(Some((Err(error), _))) => Err(error),
            Ok(None) => Err(TransferError::CallGone),
            Err(error) => Err(TransferError::Store(error)),
        };
        let (info, superseded) = match started {
            Ok(started) => started,
            Err(error) => {
                // Nothing will transfer to it: the consultation call is not left ringing.
                self.hang_up_consultation(ctx, &consultation).await;
                return Err(error.into());
            }
        };
        tracing::Span::current().record("transfer.attempt", tracing::field::display(info.id));
        let receiver = self.register_waiter(info.id);
        self.counters.transfers_started.fetch_add(1, Ordering::Relaxed);
        tracing::info!(call_id = %call_id, attempt = %info.id, kind = ?info.kind, consultation = %consultation, "transfer started");
        if let Some((old, effects)) = superseded {
            self.route(call_id.clone(), CallEvent::Fire(Box::new(old), effects));
        }
        // Its answer or end now reaches the attempt (see `consultation_event`).
        match self.link_to_parent(ctx, &consultation).await {
            Ok(()) if shared => self.note_linked(call_id, ctx.tenant_id(), info.id).await,
            Ok(()) => {}
            // The attempt is committed: it has its outcome later, like any other.
            Err(error) => {
                tracing::warn!(call_id = %call_id, consultation = %consultation, %error, "could not link the consultation call; the call's next holder links it");
            }
        }
        Ok(TransferAttempt::new(info, receiver))
    }

    /// The consultation of this call's attempt answered: commits the answer
    /// (marked as being sent, with a shared store) and sends the `POST /transfer`.
    pub(super) async fn consultation_answered(self: &Arc<Self>, call_id: &CallId, id: AttemptId) {
        let (shared, timings) = (self.is_shared(), self.machine_timings);
        let unknown_tenant = TenantId::from("");
        let committed = self
            .update(call_id, &unknown_tenant, Missing::Skip, |record| {
                let consulting = record
                    .attempt
                    .as_ref()
                    .is_some_and(|a| a.info.id == id && a.machine.is_consulting());
                if !consulting {
                    return None;
                }
                let input = CallInput::Attempt {
                    id,
                    input: AttemptInput::ConsultationAnswered,
                };
                graph_comms_core::stepping::step(record, input, graph_comms_core::wall::now(), &timings);
                let attempt = record.attempt.as_mut()?;
                // Until sent: an instance taking the call over asks Graph instead of sending it.
                attempt.sending = shared;
                Some((attempt.info.request.clone(), record.snapshot.tenant_id.clone()))
            })
            .await;
        match committed {
            Ok(Some((Some((request, tenant)), _))) => {
                let span = super::transfer::consultative_span(&request);
                span.record("transfer.attempt", tracing::field::display(id));
                self.post_transfer(call_id, &tenant, id, &request, std::time::Instant::now())
                    .instrument(span)
                    .await;
            }
            Ok(_) => {}
            Err(error) => self.store_failed(call_id, error),
        }
    }

    /// The consultation call of an attempt `consult` started, once that attempt failed.
    pub(super) fn consultation_to_hang_up(&self, ctx: &CallContext, info: &crate::TransferInfo) -> Option<CallId> {
        let record = ctx.record();
        let attempt = record.attempt.as_ref().filter(|a| a.info.id == info.id)?;
        attempt
            .machine
            .started_with_consultation()
            .then(|| info.request.transfer_target.replaces_call_id.clone())
            .flatten()
    }

    /// Hangs up a consultation call nothing will transfer to (already gone is fine).
    pub(super) async fn hang_up_consultation(&self, ctx: &CallContext, consultation: &CallId) {
        if let Err(error) = ctx.client().hang_up(consultation).await
            && !error.is_not_found()
        {
            tracing::warn!(consultation = %consultation, %error, "could not hang up the consultation call");
        }
    }
}
