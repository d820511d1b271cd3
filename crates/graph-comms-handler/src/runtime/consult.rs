//! Consultation calls: placed for a call, linked to it in both records, their
//! establishment and end delivered to that call.

use std::sync::Arc;

use graph_comms_model::{Call, CallId, CallState};

use super::Runtime;
use super::state::{Missing, Writer};
use crate::context::{CallContext, ConsultationError};
use crate::decision::{CallEnd, ConsultationEvent, EndCause};

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
        let created = ctx.client().create_call(call).await?;
        let consultation = created.value.id.ok_or(ConsultationError::NoId)?;
        let link_failed = |error| ConsultationError::Link {
            consultation: consultation.clone(),
            error,
        };
        let parent = ctx.call_id().clone();
        let linked = consultation.clone();
        self.update(&parent, ctx.tenant_id(), Missing::Skip, |record| {
            record.links.consultation = Some(linked.clone());
        })
        .await
        .map_err(link_failed)?;
        // Its notifications may have come first: what it went through is forwarded here.
        let link = |record: &mut crate::record::CallRecord| {
            record.links.consultation_for = Some(parent.clone());
            if record.is_ended() {
                let end = CallEnd::new(record.snapshot.result_info.clone(), None, EndCause::Notification);
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
            .update_as(&consultation, ctx.tenant_id(), Missing::Create, Writer::Outsider, link)
            .await
            .map_err(link_failed)?;
        match seen.map(|(seen, _)| seen) {
            Some(Seen::Event(event)) => self.forward_consultation(&parent, &consultation, event).await,
            // Nothing kept yet: the end of a call the bot did not know is not kept,
            // and its notifications may be delayed; Graph says where it is. A
            // later notification saying the same is delivered again, which the
            // handler tells by its own state.
            Some(Seen::Nothing) => {
                let event = match ctx.client().get_call(&consultation).await {
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
                    self.forward_consultation(&parent, &consultation, event).await;
                }
            }
            _ => {}
        }
        Ok(consultation)
    }
}
