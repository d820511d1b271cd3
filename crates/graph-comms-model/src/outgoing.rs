//! Builders for outgoing calls (`POST /communications/calls`) in the shapes
//! the create-call examples use.

use crate::{
    Call, CallOptions, Identity, IdentitySet, InvitationParticipantInfo, MediaConfig, MediaInfo, Modality,
    ParticipantId, ParticipantInfo, PhoneNumber, TenantId, TransferBuilder,
};

/// Builds the [`Call`] body of a create-call request.
///
/// ```
/// use graph_comms_model::{CreateCallBuilder, PhoneNumber, TenantId};
///
/// let number = PhoneNumber::parse("+12345678901")?;
/// let call = CreateCallBuilder::to_phone(
///     "https://bot.contoso.com/callback",
///     &number,
///     "3d913abb-aec0-4964-8fa6-3c6850c4f278",
///     TenantId::new("aa67bd4c-8475-432d-bd41-39f255720e0a"),
/// )
/// .source_display_name("Calling Bot")
/// .build();
/// let json = serde_json::to_value(&call)?;
/// assert_eq!(json["targets"][0]["identity"]["phone"]["id"], "+12345678901");
/// assert_eq!(json["source"]["identity"]["applicationInstance"]["tenantId"], "aa67bd4c-8475-432d-bd41-39f255720e0a");
/// assert_eq!(json["tenantId"], "aa67bd4c-8475-432d-bd41-39f255720e0a");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CreateCallBuilder {
    call: Call,
}

impl CreateCallBuilder {
    fn new(callback_uri: impl Into<String>, target: IdentitySet) -> Self {
        Self {
            call: Call {
                odata_type: Some("#microsoft.graph.call".into()),
                callback_uri: Some(callback_uri.into()),
                targets: Some(vec![InvitationParticipantInfo::new(target)]),
                requested_modalities: Some(vec![Modality::Audio]),
                media_config: Some(MediaConfig::service_hosted()),
                ..Call::default()
            },
        }
    }

    /// A peer-to-peer call to a Teams user (Calls.Initiate.All), optionally
    /// in another tenant.
    pub fn to_user(callback_uri: impl Into<String>, user_id: impl Into<String>, tenant: Option<TenantId>) -> Self {
        let mut user = Identity::with_id(user_id);
        user.tenant_id = tenant;
        Self::new(callback_uri, IdentitySet::user(user))
    }

    /// A call to a phone number. Graph needs an application instance (a
    /// resource account with a number) as the source, in `tenant`, which is
    /// also the call's `tenantId`. The number is E.164 already ([`PhoneNumber`]).
    pub fn to_phone(
        callback_uri: impl Into<String>,
        number: &PhoneNumber,
        application_instance_id: impl Into<String>,
        tenant: TenantId,
    ) -> Self {
        let mut builder = Self::new(callback_uri, IdentitySet::phone(Identity::with_id(number.as_str())));
        let instance = Identity::with_id(application_instance_id).tenant(tenant.clone());
        builder.call.source = Some(ParticipantInfo::new(IdentitySet::application_instance(instance)));
        builder.call.tenant_id = Some(tenant);
        builder
    }

    /// Adds another target (a group call: Calls.InitiateGroupCalls.All).
    pub fn also_to(mut self, target: IdentitySet) -> Self {
        self.call
            .targets
            .get_or_insert_with(Vec::new)
            .push(InvitationParticipantInfo::new(target));
        self
    }

    /// The first target's display name.
    pub fn target_display_name(mut self, name: impl Into<String>) -> Self {
        let first = self
            .call
            .targets
            .as_mut()
            .and_then(|t| t.first_mut())
            .and_then(|t| t.identity.as_mut())
            .and_then(|i| {
                [&mut i.user, &mut i.phone, &mut i.application_instance]
                    .into_iter()
                    .find_map(Option::as_mut)
            });
        if let Some(identity) = first {
            identity.display_name = Some(name.into());
        }
        self
    }

    /// The source application instance's display name (PSTN calls).
    pub fn source_display_name(mut self, name: impl Into<String>) -> Self {
        let instance = self
            .call
            .source
            .as_mut()
            .and_then(|s| s.identity.as_mut())
            .and_then(|i| i.application_instance.as_mut());
        if let Some(instance) = instance {
            instance.display_name = Some(name.into());
        }
        self
    }

    /// The call's `tenantId` (the tenant the call is made in).
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.call.tenant_id = Some(tenant);
        self
    }

    /// `subject`.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.call.subject = Some(subject.into());
        self
    }

    /// Service-hosted media with these prompts fetched ahead of time.
    pub fn pre_fetch_media(mut self, uris: impl IntoIterator<Item = String>) -> Self {
        let media = uris.into_iter().map(MediaInfo::uri).collect::<Vec<_>>();
        if let Some(MediaConfig::ServiceHosted(config)) = self.call.media_config.as_mut() {
            config.pre_fetch_media = Some(media);
        }
        self
    }

    /// `outgoingCallOptions`.
    pub fn call_options(mut self, options: CallOptions) -> Self {
        self.call.call_options = Some(options);
        self
    }

    /// The finished body.
    pub fn build(self) -> Call {
        self.call
    }
}

impl TransferBuilder {
    /// Transfers `transferee`, the participant `participant_id` of a group
    /// call, as the current transfer docs example does (`transferee` with
    /// `identity` and `participantId`; Graph refuses it without the id).
    pub fn from_group_call(self, participant_id: impl Into<ParticipantId>, transferee: IdentitySet) -> Self {
        self.transferee(ParticipantInfo::new(transferee).participant_id(participant_id))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{CallOptions, TransferKind, TransferRequest};

    #[test]
    fn user_call_matches_the_docs_shape() {
        let options = CallOptions {
            is_content_sharing_notification_enabled: Some(true),
            ..CallOptions::outgoing()
        };
        let call = CreateCallBuilder::to_user(
            "https://bot.contoso.com/callback",
            "112f7296-5fa4-42ca-bae8-6a692b15d4b8",
            None,
        )
        .target_display_name("John")
        .call_options(options)
        .build();
        assert_eq!(
            serde_json::to_value(&call).unwrap(),
            json!({
                "@odata.type": "#microsoft.graph.call",
                "callbackUri": "https://bot.contoso.com/callback",
                "targets": [{
                    "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                    "identity": {
                        "@odata.type": "#microsoft.graph.identitySet",
                        "user": {
                            "@odata.type": "#microsoft.graph.identity",
                            "displayName": "John",
                            "id": "112f7296-5fa4-42ca-bae8-6a692b15d4b8"
                        }
                    }
                }],
                "requestedModalities": ["audio"],
                "callOptions": {
                    "@odata.type": "#microsoft.graph.outgoingCallOptions",
                    "isContentSharingNotificationEnabled": true
                },
                "mediaConfig": { "@odata.type": "#microsoft.graph.serviceHostedMediaConfig" }
            })
        );
    }

    #[test]
    fn pstn_call_comes_from_an_application_instance_in_its_tenant() {
        let number = PhoneNumber::parse("+12345678901").unwrap();
        let call = CreateCallBuilder::to_phone(
            "https://bot.contoso.com/callback",
            &number,
            "3d913abb-aec0-4964-8fa6-3c6850c4f278",
            TenantId::new("aa67bd4c-8475-432d-bd41-39f255720e0a"),
        )
        .source_display_name("Calling Bot")
        .pre_fetch_media(["https://cdn.contoso.com/beep.wav".to_owned()])
        .build();
        assert_eq!(
            serde_json::to_value(&call).unwrap(),
            json!({
                "@odata.type": "#microsoft.graph.call",
                "callbackUri": "https://bot.contoso.com/callback",
                "source": {
                    "@odata.type": "#microsoft.graph.participantInfo",
                    "identity": {
                        "@odata.type": "#microsoft.graph.identitySet",
                        "applicationInstance": {
                            "@odata.type": "#microsoft.graph.identity",
                            "displayName": "Calling Bot",
                            "id": "3d913abb-aec0-4964-8fa6-3c6850c4f278",
                            "tenantId": "aa67bd4c-8475-432d-bd41-39f255720e0a"
                        }
                    }
                },
                "targets": [{
                    "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                    "identity": {
                        "@odata.type": "#microsoft.graph.identitySet",
                        "phone": { "@odata.type": "#microsoft.graph.identity", "id": "+12345678901" }
                    }
                }],
                "requestedModalities": ["audio"],
                "mediaConfig": {
                    "@odata.type": "#microsoft.graph.serviceHostedMediaConfig",
                    "preFetchMedia": [{ "@odata.type": "#microsoft.graph.mediaInfo", "uri": "https://cdn.contoso.com/beep.wav" }]
                },
                "tenantId": "aa67bd4c-8475-432d-bd41-39f255720e0a"
            })
        );
        // Bad numbers never get this far.
        assert!(PhoneNumber::parse("001234").is_err());
    }

    #[test]
    fn group_calls_add_targets() {
        let call = CreateCallBuilder::to_user("https://bot/cb", "u1", Some(TenantId::new("t")))
            .also_to(IdentitySet::user(Identity::with_id("u2")))
            .subject("Escalation")
            .build();
        let json = serde_json::to_value(&call).unwrap();
        assert_eq!(json["targets"][0]["identity"]["user"]["tenantId"], "t");
        assert_eq!(json["targets"][1]["identity"]["user"]["id"], "u2");
        assert_eq!(json["subject"], "Escalation");
    }

    #[test]
    fn group_call_transfer_matches_the_docs_example() {
        let transferee = IdentitySet::user(
            Identity::with_id("751f6800-3180-414d-bd94-333364659951").tenant("72f988bf-86f1-41af-91ab-2d7cd011db47"),
        );
        let body = TransferRequest::to_user("550fae72-d251-43ec-868c-373732c2704f", None)
            .display_name("Heidi Steen")
            .from_group_call("909c6581-5130-43e9-88f3-fcb3582cde37", transferee)
            .build();
        assert_eq!(body.kind(), TransferKind::FromGroupCall);
        let json = serde_json::to_value(&body).unwrap();
        // call-transfer ex5 (current docs), without the @odata.type annotations.
        assert_eq!(json["transferTarget"]["endpointType"], "default");
        assert_eq!(json["transferTarget"]["identity"]["user"]["displayName"], "Heidi Steen");
        assert_eq!(
            json["transferee"]["participantId"],
            "909c6581-5130-43e9-88f3-fcb3582cde37"
        );
        assert_eq!(
            json["transferee"]["identity"]["user"],
            json!({
                "@odata.type": "#microsoft.graph.identity",
                "id": "751f6800-3180-414d-bd94-333364659951",
                "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"
            })
        );
        assert_eq!(json["transferee"]["@odata.type"], "#microsoft.graph.participantInfo");
    }
}
