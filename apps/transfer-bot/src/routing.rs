//! The routing policy: which targets a call goes to, in which order, and how.
//!
//! This is the part a fork changes most often. [`RoutingPolicy::targets_for`]
//! picks the target list from the called identity; the receptionist in
//! [`crate::bot`] walks that list one target at a time.

use std::fmt;

use graph_comms_model::{Call, Identity, IdentitySet, PhoneNumber, TenantId, TransferBuilder, TransferRequest};

/// How the bot hands the call over to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransferMode {
    /// Transfer straight away; the bot never talks to the target.
    Blind,
    /// Call the target first, then transfer with `replacesCallId` once that call is up.
    Consultative,
}

impl TransferMode {
    /// The spelling used in configuration and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blind => "blind",
            Self::Consultative => "consultative",
        }
    }
}

/// Who a target is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Destination {
    /// A Teams user, optionally in another tenant.
    User {
        /// The user's object id.
        id: String,
        /// The user's tenant when it is not the bot's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant_id: Option<TenantId>,
    },
    /// A phone number (the call must come in through an application instance with a number).
    Phone(PhoneNumber),
    /// An application instance (a resource account, e.g. another bot or a call queue).
    ApplicationInstance {
        /// The application instance's object id.
        id: String,
        /// Its tenant when it is not the bot's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant_id: Option<TenantId>,
    },
}

/// One place the call may be transferred to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Who.
    pub destination: Destination,
    /// Shown to the caller by Teams clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Blind or consultative.
    pub mode: TransferMode,
}

impl Target {
    /// A blind target for a Teams user.
    pub fn user(id: impl Into<String>) -> Self {
        Self {
            destination: Destination::User {
                id: id.into(),
                tenant_id: None,
            },
            display_name: None,
            mode: TransferMode::Blind,
        }
    }

    /// A blind target for a phone number.
    pub fn phone(number: PhoneNumber) -> Self {
        Self {
            destination: Destination::Phone(number),
            display_name: None,
            mode: TransferMode::Blind,
        }
    }

    /// A blind target for an application instance.
    pub fn application_instance(id: impl Into<String>) -> Self {
        Self {
            destination: Destination::ApplicationInstance {
                id: id.into(),
                tenant_id: None,
            },
            display_name: None,
            mode: TransferMode::Blind,
        }
    }

    /// Makes the transfer consultative.
    #[must_use]
    pub fn consultative(mut self) -> Self {
        self.mode = TransferMode::Consultative;
        self
    }

    /// Puts a user or application-instance target in another tenant (a phone stays as it is).
    #[must_use]
    pub fn in_tenant(mut self, tenant: impl Into<String>) -> Self {
        match &mut self.destination {
            Destination::User { tenant_id, .. } | Destination::ApplicationInstance { tenant_id, .. } => {
                *tenant_id = Some(TenantId::new(tenant.into()));
            }
            Destination::Phone(_) => {}
        }
        self
    }

    /// Sets the display name.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// The id Graph knows the target by (object id, or the E.164 number).
    pub fn id(&self) -> &str {
        match &self.destination {
            Destination::User { id, .. } | Destination::ApplicationInstance { id, .. } => id,
            Destination::Phone(number) => number.as_str(),
        }
    }

    /// A transfer body for this target (without `replacesCallId` or `transferee`).
    /// Whether `request` transfers the call to this target (whatever else it carries).
    pub fn is_target_of(&self, request: &TransferRequest) -> bool {
        self.transfer_request().build().transfer_target.identity == request.transfer_target.identity
    }

    /// The transfer request for this target.
    pub fn transfer_request(&self) -> TransferBuilder {
        let builder = match &self.destination {
            Destination::User { id, tenant_id } => TransferRequest::to_user(id.clone(), tenant_id.clone()),
            Destination::Phone(number) => TransferRequest::to_phone(number),
            Destination::ApplicationInstance { id, tenant_id } => {
                TransferRequest::to_application_instance(id.clone(), tenant_id.clone())
            }
        };
        match &self.display_name {
            Some(name) => builder.display_name(name.clone()),
            None => builder,
        }
    }

    /// The target as an identity set, for placing the consultation call.
    pub fn identity_set(&self) -> IdentitySet {
        let mut identity = Identity::with_id(self.id());
        identity.display_name = self.display_name.clone();
        match &self.destination {
            Destination::User { tenant_id, .. } => {
                identity.tenant_id = tenant_id.clone();
                IdentitySet::user(identity)
            }
            Destination::Phone(_) => IdentitySet::phone(identity),
            Destination::ApplicationInstance { tenant_id, .. } => {
                identity.tenant_id = tenant_id.clone();
                IdentitySet::application_instance(identity)
            }
        }
    }
}

/// Log-safe: phone numbers are masked.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.destination {
            Destination::User { id, .. } => write!(f, "user:{id}"),
            Destination::Phone(number) => write!(f, "phone:{}", number.masked()),
            Destination::ApplicationInstance { id, .. } => write!(f, "app:{id}"),
        }?;
        if self.mode == TransferMode::Consultative {
            f.write_str(" (consultative)")?;
        }
        Ok(())
    }
}

/// Targets for calls made to one called identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The called identity's id (the bot's application id, an application
    /// instance, a user or a phone number) this route applies to.
    pub match_called_id: String,
    /// Tried in order.
    pub targets: Vec<Target>,
}

/// The whole policy: routes by called identity, then a default list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingPolicy {
    /// Checked in order; the first match wins.
    pub routes: Vec<Route>,
    /// Used when no route matches.
    pub default_targets: Vec<Target>,
}

impl RoutingPolicy {
    /// The targets to try for these called identity ids.
    pub fn targets_for_ids<'a>(&self, called_ids: impl IntoIterator<Item = &'a str> + Clone) -> &[Target] {
        self.routes
            .iter()
            .find(|route| {
                called_ids
                    .clone()
                    .into_iter()
                    .any(|id| same_id(id, &route.match_called_id))
            })
            .map_or(self.default_targets.as_slice(), |route| route.targets.as_slice())
    }

    /// The targets to try for an incoming call, from the identities it was made to.
    pub fn targets_for(&self, call: &Call) -> &[Target] {
        let ids = called_ids(call);
        self.targets_for_ids(ids.iter().map(String::as_str))
    }
}

/// Every identity id in the call's `targets` (who was called).
pub fn called_ids(call: &Call) -> Vec<String> {
    call.targets
        .iter()
        .flatten()
        .filter_map(|target| target.identity.as_ref())
        .flat_map(identity_ids)
        .collect()
}

fn identity_ids(set: &IdentitySet) -> Vec<String> {
    [
        &set.application_instance,
        &set.application,
        &set.user,
        &set.phone,
        &set.guest,
    ]
    .into_iter()
    .filter_map(|identity| identity.as_ref()?.id.clone())
    .collect()
}

/// Object ids compare without case or dashes, like Graph's own ids.
pub(crate) fn same_id(a: &str, b: &str) -> bool {
    let canon = |s: &str| {
        s.chars()
            .filter(|c| *c != '-')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    canon(a) == canon(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_on_the_called_id_and_fall_back_to_the_defaults() {
        let policy = RoutingPolicy {
            routes: vec![Route {
                match_called_id: "AAAA-bbbb".into(),
                targets: vec![Target::user("sales")],
            }],
            default_targets: vec![Target::user("front-desk")],
        };
        assert_eq!(policy.targets_for_ids(["aaaabbbb"])[0].id(), "sales");
        assert_eq!(policy.targets_for_ids(["other"])[0].id(), "front-desk");
        assert_eq!(policy.targets_for_ids([])[0].id(), "front-desk");
    }

    #[test]
    fn phone_targets_are_masked_when_displayed() {
        let target = Target::phone(PhoneNumber::parse("+14255550100").unwrap());
        assert_eq!(target.to_string(), "phone:+*******0100");
        assert!(!target.to_string().contains("425555"));
    }
}
