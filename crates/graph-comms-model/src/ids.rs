//! Typed identifiers and the `resourceUrl` parser.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// Declares an id newtype.
///
/// Equality and hashing ignore ASCII case and dashes, as Graph does: the same
/// call appears as `57dab8b1-894c-…` in `resourceData.id` and as
/// `57DAB8B1894C…` in `resourceUrl`. The original spelling is kept for display
/// and for sending back.
macro_rules! graph_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Serialize, Deserialize, PartialOrd, Ord)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id as given.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as it was given.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as it was given, owned.
            pub fn into_string(self) -> String {
                self.0
            }

            /// Lower-case with dashes removed: the form equality uses.
            pub fn canonical(&self) -> String {
                canonical_chars(&self.0).collect()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0 == other.0 || canonical_bytes(&self.0).eq(canonical_bytes(&other.0))
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                hash_canonical(&self.0, state);
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Ids compare by their ASCII-lower-cased characters without dashes. Non-ASCII
/// bytes are compared as they are.
fn canonical_chars(id: &str) -> impl Iterator<Item = char> + '_ {
    id.chars().filter(|c| *c != '-').map(|c| c.to_ascii_lowercase())
}

/// [`canonical_chars`] as UTF-8 bytes: the same sequence, since lower-casing and
/// dropping ASCII never touches the bytes of a multi-byte character.
fn canonical_bytes(id: &str) -> impl Iterator<Item = u8> + '_ {
    id.bytes().filter(|b| *b != b'-').map(|b| b.to_ascii_lowercase())
}

/// Feeds the canonical bytes to the hasher in blocks rather than one `write_u8`
/// per byte: a GUID is one block, so hashing costs one `write`.
fn hash_canonical<H: Hasher>(id: &str, state: &mut H) {
    let mut block = [0u8; 64];
    let mut len = 0;
    for b in canonical_bytes(id) {
        if len == block.len() {
            state.write(&block);
            len = 0;
        }
        block[len] = b;
        len += 1;
    }
    state.write(&block[..len]);
    state.write_u8(0xff);
}

graph_id! {
    /// A call's id (`call.id`, the `{id}` in `/communications/calls/{id}`).
    CallId
}

impl CallId {
    /// The id as a lower-case dashed GUID, whichever spelling arrived
    /// (`resourceUrl`'s compact upper case or `resourceData`'s dashed form);
    /// an id that is not a GUID, as given. One spelling for logs and `scenario-id`.
    pub fn dashed(&self) -> String {
        let canonical = self.canonical();
        if canonical.len() == 32 && canonical.bytes().all(|b| b.is_ascii_hexdigit()) {
            format!(
                "{}-{}-{}-{}-{}",
                &canonical[..8],
                &canonical[8..12],
                &canonical[12..16],
                &canonical[16..20],
                &canonical[20..]
            )
        } else {
            self.0.clone()
        }
    }
}
graph_id! {
    /// A comms operation's id (`.../operations/{id}`).
    OperationId
}
graph_id! {
    /// A participant's id (`.../participants/{id}`, `participantId`).
    ParticipantId
}
graph_id! {
    /// An Entra ID tenant id (`tid`, `tenantId`).
    TenantId
}
graph_id! {
    /// An application (client) id: the bot's app id and the `aud` of its notifications.
    AppId
}
graph_id! {
    /// A user's object id.
    UserId
}

/// What a notification's `resourceUrl` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUrl {
    /// The call the resource belongs to.
    pub call_id: CallId,
    /// The part of the call the URL names.
    pub target: ResourceTarget,
}

/// The part of a call a `resourceUrl` names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceTarget {
    /// The call itself: `/communications/calls/{id}`.
    Call,
    /// An operation: `.../operations/{id}`.
    Operation(OperationId),
    /// The roster: `.../participants`.
    Participants,
    /// One participant: `.../participants/{id}`.
    Participant(ParticipantId),
    /// Any other sub-resource (`contentsharingsessions/{id}`, ...), kept as the
    /// path after the call id.
    Other(String),
}

/// A `resourceUrl` that names no call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resourceUrl {url:?} is not a call resource: {reason}")]
pub struct ResourceUrlError {
    /// The URL as received.
    pub url: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ResourceUrl {
    /// Parses `/communications/calls/{id}[/...]`, the deprecated
    /// `/app/calls/{id}[/...]`, with or without a host and a `/v1.0` or `/beta`
    /// prefix. Segment names are case-insensitive.
    pub fn parse(url: &str) -> Result<Self, ResourceUrlError> {
        let err = |reason| ResourceUrlError {
            url: url.to_owned(),
            reason,
        };
        let path = strip_origin(url);
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let mut segments = path.split('/').filter(|s| !s.is_empty()).peekable();
        if segments
            .peek()
            .is_some_and(|s| s.eq_ignore_ascii_case("v1.0") || s.eq_ignore_ascii_case("beta"))
        {
            segments.next();
        }
        match segments.next() {
            Some(s) if s.eq_ignore_ascii_case("communications") || s.eq_ignore_ascii_case("app") => {}
            _ => return Err(err("expected /communications/calls/{id} or /app/calls/{id}")),
        }
        match segments.next() {
            Some(s) if s.eq_ignore_ascii_case("calls") => {}
            _ => return Err(err("expected a calls collection")),
        }
        let call_id = match segments.next() {
            Some(id) => CallId::new(id),
            None => return Err(err("missing call id")),
        };
        let rest: Vec<&str> = segments.collect();
        let target = match rest.as_slice() {
            [] => ResourceTarget::Call,
            [kind, id] if kind.eq_ignore_ascii_case("operations") => ResourceTarget::Operation(OperationId::new(*id)),
            [kind] if kind.eq_ignore_ascii_case("participants") => ResourceTarget::Participants,
            [kind, id] if kind.eq_ignore_ascii_case("participants") => {
                ResourceTarget::Participant(ParticipantId::new(*id))
            }
            other => ResourceTarget::Other(other.join("/")),
        };
        Ok(Self { call_id, target })
    }
}

fn strip_origin(url: &str) -> &str {
    match url.find("://") {
        Some(scheme_end) => {
            let after = &url[scheme_end + 3..];
            after.find('/').map_or("", |slash| &after[slash..])
        }
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_without_case_or_dashes() {
        let a = CallId::new("57dab8b1-894c-409a-b240-bd8beae78896");
        let b = CallId::new("57DAB8B1894C409AB240BD8BEAE78896");
        assert_eq!(a, b);
        let hash = |id: &CallId| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(a, CallId::new("57dab8b1-894c-409a-b240-bd8beae78897"));
        assert_eq!(b.as_str(), "57DAB8B1894C409AB240BD8BEAE78896");
    }

    #[test]
    fn both_spellings_of_a_call_id_have_one_dashed_form() {
        let dashed = CallId::new("57dab8b1-894c-409a-b240-bd8beae78896");
        let compact = CallId::new("57DAB8B1894C409AB240BD8BEAE78896");
        assert_eq!(compact.dashed(), "57dab8b1-894c-409a-b240-bd8beae78896");
        assert_eq!(dashed.dashed(), compact.dashed());
        assert_eq!(CallId::new("not-a-guid").dashed(), "not-a-guid");
    }

    #[test]
    fn ids_longer_than_one_hash_block_hash_alike_when_equal() {
        let long = "ABC-def".repeat(30);
        let a = CallId::new(long.clone());
        let b = CallId::new(long.replace('-', "").to_lowercase());
        let hash = |id: &CallId| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut h);
            h.finish()
        };
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
        let other = CallId::new(format!("{long}x"));
        assert_ne!(a, other);
        assert_ne!(hash(&a), hash(&other));
        assert_eq!(CallId::new("Ünïcode-ID"), CallId::new("Ünïcodeid"));
        assert_ne!(CallId::new("Ünïcode"), CallId::new("ünïcode"));
    }

    #[test]
    fn resource_urls_of_every_documented_shape_parse() {
        let call = ResourceUrl::parse("/communications/calls/57dab8b1-894c-409a-b240-bd8beae78896").unwrap();
        assert_eq!(call.target, ResourceTarget::Call);
        let legacy = ResourceUrl::parse("/app/calls/8A934F51F25B4EE19613D4049491857B").unwrap();
        assert_eq!(legacy.call_id, CallId::new("8a934f51-f25b-4ee1-9613-d4049491857b"));
        let op = ResourceUrl::parse(
            "/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/operations/0FE0623FD62842EDB4BD8AC290072CC5",
        )
        .unwrap();
        assert_eq!(
            op.target,
            ResourceTarget::Operation(OperationId::new("0fe0623f-d628-42ed-b4bd-8ac290072cc5"))
        );
        let roster = ResourceUrl::parse("/communications/calls/abc/participants").unwrap();
        assert_eq!(roster.target, ResourceTarget::Participants);
        let one =
            ResourceUrl::parse("https://graph.microsoft.com/v1.0/Communications/Calls/abc/Participants/p1").unwrap();
        assert_eq!(one.target, ResourceTarget::Participant(ParticipantId::new("p1")));
        let other = ResourceUrl::parse("/communications/calls/abc/contentsharingsessions/s1").unwrap();
        assert_eq!(other.target, ResourceTarget::Other("contentsharingsessions/s1".into()));
    }

    #[test]
    fn resource_urls_that_name_no_call_are_refused() {
        for bad in [
            "",
            "/",
            "/communications",
            "/communications/calls",
            "/users/abc",
            "https://x/",
        ] {
            assert!(ResourceUrl::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
