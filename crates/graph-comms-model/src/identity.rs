//! `identity` and `identitySet`, with the `communications*` members.

use serde::{Deserialize, Serialize};

use crate::{EndpointType, Extra, TenantId};

/// `identity` and its `communications*` subtypes, folded into one open type.
///
/// `tenantId` is declared only on the user and application-instance subtypes,
/// but the docs put it inside any identity, so it is a field here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// The identity's id: an object id, or an E.164 number for `phone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Tenant of a user or application instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// `communicationsApplicationIdentity.applicationType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    /// `hidden` on application and application-instance identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    /// `communicationsGuestIdentity.email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `azureCommunicationServicesUserIdentity.azureCommunicationServicesResourceId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_communication_services_resource_id: Option<String>,
    /// Properties the schema does not declare (`identityProvider`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Identity {
    /// An identity with just an id.
    pub fn with_id(id: impl Into<String>) -> Self {
        Self {
            odata_type: Some("#microsoft.graph.identity".into()),
            id: Some(id.into()),
            ..Self::default()
        }
    }

    /// Sets the display name.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets the tenant.
    pub fn tenant(mut self, tenant: impl Into<TenantId>) -> Self {
        self.tenant_id = Some(tenant.into());
        self
    }
}

/// `identitySet` and `communicationsIdentitySet`, as one open type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySet {
    /// `@odata.type`, when sent.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// An application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<Box<Identity>>,
    /// A device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Box<Identity>>,
    /// A user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Box<Identity>>,
    /// An application instance (a resource account with a phone number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_instance: Option<Box<Identity>>,
    /// The asserted identity (an `identity` in the schema, not a set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asserted_identity: Option<Box<Identity>>,
    /// An Azure Communication Services user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_communication_services_user: Option<Box<Identity>>,
    /// An identity Graph does not reveal to this app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<Box<Identity>>,
    /// The endpoint type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_type: Option<EndpointType>,
    /// A guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<Box<Identity>>,
    /// An on-premises user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_premises: Option<Box<Identity>>,
    /// A phone number (`id` is E.164).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Box<Identity>>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

impl IdentitySet {
    fn typed() -> Self {
        Self {
            odata_type: Some("#microsoft.graph.identitySet".into()),
            ..Self::default()
        }
    }

    /// A set naming one user.
    pub fn user(user: Identity) -> Self {
        Self {
            user: Some(Box::new(user)),
            ..Self::typed()
        }
    }

    /// A set naming one phone number.
    pub fn phone(phone: Identity) -> Self {
        Self {
            phone: Some(Box::new(phone)),
            ..Self::typed()
        }
    }

    /// A set naming one application.
    pub fn application(application: Identity) -> Self {
        Self {
            application: Some(Box::new(application)),
            ..Self::typed()
        }
    }

    /// A set naming one application instance.
    pub fn application_instance(instance: Identity) -> Self {
        Self {
            application_instance: Some(Box::new(instance)),
            ..Self::typed()
        }
    }

    /// The first identity present, in order user, phone, application instance,
    /// application, guest, encrypted, and the rest.
    pub fn primary(&self) -> Option<&Identity> {
        [
            &self.user,
            &self.phone,
            &self.application_instance,
            &self.application,
            &self.guest,
            &self.encrypted,
            &self.on_premises,
            &self.azure_communication_services_user,
            &self.device,
        ]
        .into_iter()
        .find_map(|slot| slot.as_deref())
    }
}
