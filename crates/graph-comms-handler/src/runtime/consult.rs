//! Consultation calls: placed for a call, linked to it in both records, their
//! establishment and end delivered to that call.

use std::sync::Arc;

use graph_comms_model::{Call, CallId};

use super::Runtime;
use super::state::{Missing, Writer};
use crate::context::{CallContext, ConsultationError};
use crate::decision::{CallEnd, ConsultationEvent, EndCause};

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
        let seen = self
            .update_as(
                &consultation,
                ctx.tenant_id(),
                Missing::Create,
                Writer::Outsider,
                |record| {
                    record.links.consultation_for = Some(parent.clone());
                    if record.is_ended() {
                        let end = CallEnd::new(record.snapshot.result_info.clone(), None, EndCause::Notification);
                        Some(ConsultationEvent::Ended { end })
                    } else if record.lifecycle.established_fired {
                        Some(ConsultationEvent::Established)
                    } else {
                        None
                    }
                },
            )
            .await
            .map_err(link_failed)?;
        if let Some((Some(event), _)) = seen {
            self.forward_consultation(&parent, &consultation, event).await;
        }
        Ok(consultation)
    }
}
