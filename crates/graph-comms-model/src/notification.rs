//! `commsNotifications`: the envelope Graph POSTs to a bot's callback.

use serde::{Deserialize, Serialize};

use crate::{
    Call, ChangeType, CommsOperation, Extra, OperationKind, ParseError, Participant, ResourceUrl, ResourceUrlError,
};

/// `commsNotifications`: one POST body, carrying one or more notifications.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommsNotifications {
    /// `#microsoft.graph.commsNotifications`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// The notifications, in the order Graph listed them.
    pub value: Vec<CommsNotification>,
    /// Properties the schema does not declare.
    #[serde(flatten)]
    pub extra: Extra,
}

impl CommsNotifications {
    /// Parses a notification body. Errors carry the line and column.
    pub fn from_slice(body: &[u8]) -> Result<Self, ParseError> {
        crate::parse::from_slice(body)
    }

    /// Wraps notifications in an envelope.
    pub fn new(value: Vec<CommsNotification>) -> Self {
        Self {
            odata_type: Some("#microsoft.graph.commsNotifications".into()),
            value,
            extra: Extra::new(),
        }
    }
}

/// `commsNotification`: one change to one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommsNotification {
    /// `#microsoft.graph.commsNotification`.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    /// What happened. `deleted` means the call or operation is gone.
    pub change_type: ChangeType,
    /// The changed resource, for example `/communications/calls/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_url: Option<String>,
    /// The legacy spelling of `resourceUrl` (`/app/calls/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The resource's new data, when sent. Undeclared in the schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_data: Option<ResourceData>,
    /// Properties the schema does not declare (`callbackUri`, `subscriptionId`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

impl CommsNotification {
    /// A notification of this change to this resource.
    pub fn new(change_type: ChangeType, resource_url: impl Into<String>, resource_data: Option<ResourceData>) -> Self {
        Self {
            odata_type: Some("#microsoft.graph.commsNotification".into()),
            change_type,
            resource_url: Some(resource_url.into()),
            resource: None,
            resource_data,
            extra: Extra::new(),
        }
    }

    /// `resourceUrl`, or the legacy `resource` when that is all there is.
    pub fn resource_path(&self) -> Option<&str> {
        self.resource_url.as_deref().or(self.resource.as_deref())
    }

    /// The parsed resource path.
    pub fn resource(&self) -> Result<ResourceUrl, ResourceUrlError> {
        match self.resource_path() {
            Some(path) => ResourceUrl::parse(path),
            None => Err(ResourceUrlError {
                url: String::new(),
                reason: "the notification has neither resourceUrl nor resource",
            }),
        }
    }

    /// The call carried in `resourceData`, if it is one.
    pub fn call(&self) -> Option<&Call> {
        match &self.resource_data {
            Some(ResourceData::Call(call)) => Some(call),
            _ => None,
        }
    }

    /// The operation carried in `resourceData`, if it is one.
    pub fn operation(&self) -> Option<&CommsOperation> {
        match &self.resource_data {
            Some(ResourceData::Operation(op)) => Some(op),
            _ => None,
        }
    }
}

/// A notification's `resourceData`: an entity or a collection of entities.
///
/// The entity kind comes from its `@odata.type`; anything else is kept as raw JSON.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ResourceData {
    /// A call.
    Call(Box<Call>),
    /// A comms operation (any subtype).
    Operation(Box<CommsOperation>),
    /// A participant.
    Participant(Box<Participant>),
    /// A collection (roster updates send an array of participants).
    Collection(Vec<ResourceData>),
    /// An entity of a type this version does not know, or with no `@odata.type`.
    Unknown(serde_json::Value),
}

const CALL_TYPE: &str = "#microsoft.graph.call";
const PARTICIPANT_TYPE: &str = "#microsoft.graph.participant";

impl Serialize for ResourceData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Call(call) => call.serialize(serializer),
            Self::Operation(op) => op.serialize(serializer),
            Self::Participant(p) => p.serialize(serializer),
            Self::Collection(items) => items.serialize(serializer),
            Self::Unknown(raw) => raw.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ResourceData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(deserializer)?;
        Self::from_value(raw).map_err(serde::de::Error::custom)
    }
}

impl ResourceData {
    fn from_value(raw: serde_json::Value) -> Result<Self, serde_json::Error> {
        if let serde_json::Value::Array(items) = raw {
            return items
                .into_iter()
                .map(Self::from_value)
                .collect::<Result<_, _>>()
                .map(Self::Collection);
        }
        let Some(odata) = raw.get("@odata.type").and_then(serde_json::Value::as_str) else {
            return Ok(Self::Unknown(raw));
        };
        if odata.eq_ignore_ascii_case(CALL_TYPE) {
            serde_json::from_value(raw).map(|c| Self::Call(Box::new(c)))
        } else if odata.eq_ignore_ascii_case(PARTICIPANT_TYPE) {
            serde_json::from_value(raw).map(|p| Self::Participant(Box::new(p)))
        } else if OperationKind::ODATA_TYPES
            .iter()
            .any(|(_, t)| t.eq_ignore_ascii_case(odata))
        {
            serde_json::from_value(raw).map(|o| Self::Operation(Box::new(o)))
        } else {
            Ok(Self::Unknown(raw))
        }
    }
}
