//! Consultation calls: placed to the target (from the bot's resource account
//! for a phone number), then the transfer with `replacesCallId` follows in
//! `on_consultation_established`.

use graph_comms_handler::CallContext;
use graph_comms_handler::model::{Call, CallId, CreateCallBuilder, InvitationParticipantInfo, MediaConfig, Modality};

use super::Receptionist;
use super::events::BotEventKind;
use super::plan::{Phase, update_plan};
use crate::routing::{Destination, Target};

impl Receptionist {
    /// Places the consultation call; the transfer follows once it is established.
    pub(super) async fn start_consultation(&self, ctx: &CallContext, target: &Target) -> Result<(), String> {
        self.emit(
            ctx.call_id(),
            BotEventKind::Consulting {
                target: target.to_string(),
            },
        );
        let callback = self.settings.callback_uri.clone();
        let call = match (&target.destination, &self.settings.application_instance_id) {
            // Graph calls a number only from a resource account with one.
            (Destination::Phone(number), Some(instance)) => {
                CreateCallBuilder::to_phone(callback, number, instance.clone(), ctx.tenant_id().clone()).build()
            }
            _ => Call {
                odata_type: Some("#microsoft.graph.call".into()),
                callback_uri: Some(callback),
                targets: Some(vec![InvitationParticipantInfo::new(target.identity_set())]),
                requested_modalities: Some(vec![Modality::Audio]),
                media_config: Some(MediaConfig::service_hosted()),
                tenant_id: Some(ctx.tenant_id().clone()),
                ..Call::default()
            },
        };
        let consult_id = ctx
            .place_consultation(&call)
            .await
            .map_err(|e| format!("consultation call failed: {e}"))?;
        tracing::info!(consultation = %consult_id, target = %target, "consultation call placed");
        update_plan(ctx, |plan| {
            plan.phase = Phase::Consulting(Some(consult_id.clone()));
            plan.consultation = Some(consult_id.clone());
        })
        .await;
        Ok(())
    }

    pub(super) async fn hang_up_consultation(&self, ctx: &CallContext, consult_id: &CallId) {
        if let Err(e) = ctx.client().hang_up(consult_id).await
            && !e.is_not_found()
        {
            tracing::warn!(consultation = %consult_id, error = %e, "could not hang up the consultation call");
        }
    }
}
