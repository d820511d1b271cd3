//! Consultative targets: one attempt (`CallContext::consult`) places the
//! consultation call (from the bot's resource account for a phone number) and
//! transfers with `replacesCallId` once it answers; its end before the answer
//! reaches `on_transfer_failed` like any other failure.

use graph_comms_handler::model::{
    Call, CreateCallBuilder, InvitationParticipantInfo, MediaConfig, Modality, ParticipantInfo,
};
use graph_comms_handler::{CallContext, ConsultError};

use super::events::BotEventKind;
use super::{Receptionist, not_started};
use crate::routing::{Destination, Target};

impl Receptionist {
    /// Starts the consultative attempt for `target`.
    pub(super) async fn start_consultation(
        &self,
        ctx: &CallContext,
        target: &Target,
        transferee: Option<ParticipantInfo>,
    ) -> Result<(), String> {
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
        match ctx.consult(&call, Self::request(target, transferee)).await {
            Ok(attempt) => {
                tracing::info!(attempt = %attempt.id(), consultation = ?ctx.consultation(), target = %target, "consultation call placed");
                self.metrics.transfer_started(target.mode.as_str());
                Ok(())
            }
            Err(ConsultError::Transfer(e)) => Err(not_started(e)),
            Err(e) => Err(format!("consultation call failed: {e}")),
        }
    }
}
