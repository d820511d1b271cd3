//! String enums as Graph sends them, with a catch-all for values this version
//! does not know.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a Graph string enum.
///
/// Parsing is ASCII case-insensitive, because Graph's casing drifts between
/// pages and payloads (`Running`/`running`, `Established`). Writing uses the
/// schema's spelling. Values this version does not know land in `Unknown` and
/// are written back unchanged.
macro_rules! graph_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Every member the schema declares, spelled as on the wire.
            pub const KNOWN: &'static [&'static str] = &[$($wire),+];

            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Unknown(raw) => raw,
                }
            }

            /// Reads a wire value; never fails.
            pub fn from_wire(raw: &str) -> Self {
                $( if raw.eq_ignore_ascii_case($wire) { return Self::$variant; } )+
                Self::Unknown(raw.to_owned())
            }

            /// Whether this value is outside the known members.
            pub fn is_unknown(&self) -> bool {
                matches!(self, Self::Unknown(_))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::from_wire(s))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::from_wire(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str($crate::enums::WireVisitor(Self::from_wire))
            }
        }
    };
}

pub(crate) struct WireVisitor<T>(pub(crate) fn(&str) -> T);

impl<T> serde::de::Visitor<'_> for WireVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string enum value")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.0)(v))
    }
}

graph_enum! {
    /// `callState`: where a call is in its lifecycle.
    pub enum CallState {
        /// A new call offered to the bot.
        Incoming = "incoming",
        /// The call is being set up.
        Establishing = "establishing",
        /// Media flows; most actions need this state.
        Established = "established",
        /// On hold.
        Hold = "hold",
        /// A transfer was started.
        Transferring = "transferring",
        /// The transfer target accepted.
        TransferAccepted = "transferAccepted",
        /// Being redirected.
        Redirecting = "redirecting",
        /// Being torn down.
        Terminating = "terminating",
        /// Gone.
        Terminated = "terminated",
        /// Graph's evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `callDirection`.
    pub enum CallDirection {
        /// Offered to the bot.
        Incoming = "incoming",
        /// Placed by the bot.
        Outgoing = "outgoing",
    }
}

graph_enum! {
    /// `changeType` of a notification.
    pub enum ChangeType {
        /// A resource appeared.
        Created = "created",
        /// A resource changed.
        Updated = "updated",
        /// A resource is gone (a call ended, an operation completed).
        Deleted = "deleted",
        /// Graph's evolvable-enum sentinel (newer docs list it).
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `modality`.
    pub enum Modality {
        /// Audio.
        Audio = "audio",
        /// Video.
        Video = "video",
        /// Video-based screen sharing.
        VideoBasedScreenSharing = "videoBasedScreenSharing",
        /// Data.
        Data = "data",
        /// Graph's evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `mediaState`.
    pub enum MediaState {
        /// Media flows.
        Active = "active",
        /// No media.
        Inactive = "inactive",
        /// Graph's evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `mediaDirection`.
    pub enum MediaDirection {
        /// No media either way.
        Inactive = "inactive",
        /// Send only.
        SendOnly = "sendOnly",
        /// Receive only.
        ReceiveOnly = "receiveOnly",
        /// Both ways.
        SendReceive = "sendReceive",
    }
}

graph_enum! {
    /// `endpointType`.
    pub enum EndpointType {
        /// A regular endpoint.
        Default = "default",
        /// Voicemail.
        Voicemail = "voicemail",
        /// Skype for Business.
        SkypeForBusiness = "skypeForBusiness",
        /// Skype for Business VoIP phone.
        SkypeForBusinessVoipPhone = "skypeForBusinessVoipPhone",
        /// Graph's evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `operationStatus`. PascalCase in the schema; other casings are read too.
    pub enum OperationStatus {
        /// Not started yet; a notification follows.
        NotStarted = "NotStarted",
        /// Running; a notification follows.
        Running = "Running",
        /// Completed; no notification follows.
        Completed = "Completed",
        /// Failed; no notification follows.
        Failed = "Failed",
    }
}

graph_enum! {
    /// `rejectReason`.
    pub enum RejectReason {
        /// No reason given.
        None = "none",
        /// The bot is busy.
        Busy = "busy",
        /// Not allowed.
        Forbidden = "forbidden",
        /// Graph's evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `routingType`.
    pub enum RoutingType {
        /// Forwarded.
        Forwarded = "forwarded",
        /// Looked up.
        Lookup = "lookup",
        /// Self-forked.
        SelfFork = "selfFork",
        /// Graph's evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `recordingStatus`.
    pub enum RecordingStatus {
        /// The schema's `unknown` member.
        Unspecified = "unknown",
        /// Not recording.
        NotRecording = "notRecording",
        /// Recording.
        Recording = "recording",
        /// Recording failed.
        Failed = "failed",
        /// Graph's evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `callTranscriptionState`.
    pub enum CallTranscriptionState {
        /// Not started.
        NotStarted = "notStarted",
        /// Active.
        Active = "active",
        /// Inactive.
        Inactive = "inactive",
        /// Graph's evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `screenSharingRole`.
    pub enum ScreenSharingRole {
        /// Viewer.
        Viewer = "viewer",
        /// Sharer.
        Sharer = "sharer",
    }
}

graph_enum! {
    /// `sendDtmfCompletionReason`.
    pub enum SendDtmfCompletionReason {
        /// The schema's `unknown` member.
        Unspecified = "unknown",
        /// All tones sent.
        CompletedSuccessfully = "completedSuccessfully",
        /// Cancelled.
        MediaOperationCanceled = "mediaOperationCanceled",
        /// Graph's evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `onlineMeetingContentSharingDisabledReason`.
    pub enum OnlineMeetingContentSharingDisabledReason {
        /// Watermark protection.
        WatermarkProtection = "watermarkProtection",
        /// Graph's evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `onlineMeetingVideoDisabledReason`.
    pub enum OnlineMeetingVideoDisabledReason {
        /// Watermark protection.
        WatermarkProtection = "watermarkProtection",
        /// Graph's evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `tone`: a DTMF tone.
    pub enum Tone {
        /// 0.
        Tone0 = "tone0",
        /// 1.
        Tone1 = "tone1",
        /// 2.
        Tone2 = "tone2",
        /// 3.
        Tone3 = "tone3",
        /// 4.
        Tone4 = "tone4",
        /// 5.
        Tone5 = "tone5",
        /// 6.
        Tone6 = "tone6",
        /// 7.
        Tone7 = "tone7",
        /// 8.
        Tone8 = "tone8",
        /// 9.
        Tone9 = "tone9",
        /// `*`.
        Star = "star",
        /// `#`.
        Pound = "pound",
        /// A.
        A = "a",
        /// B.
        B = "b",
        /// C.
        C = "c",
        /// D.
        D = "d",
        /// Flash.
        Flash = "flash",
    }
}

impl Tone {
    const KEYS: [(char, Tone); 16] = [
        ('0', Tone::Tone0),
        ('1', Tone::Tone1),
        ('2', Tone::Tone2),
        ('3', Tone::Tone3),
        ('4', Tone::Tone4),
        ('5', Tone::Tone5),
        ('6', Tone::Tone6),
        ('7', Tone::Tone7),
        ('8', Tone::Tone8),
        ('9', Tone::Tone9),
        ('*', Tone::Star),
        ('#', Tone::Pound),
        ('A', Tone::A),
        ('B', Tone::B),
        ('C', Tone::C),
        ('D', Tone::D),
    ];

    /// The key on a keypad: `'0'`–`'9'`, `'*'`, `'#'`, `'A'`–`'D'`; `None`
    /// for `flash` and unknown tones.
    pub fn key(&self) -> Option<char> {
        Self::KEYS.iter().find(|(_, tone)| tone == self).map(|(key, _)| *key)
    }

    /// The tone of a keypad key (see [`Tone::key`]; letters in either case).
    pub fn from_key(key: char) -> Option<Self> {
        let key = key.to_ascii_uppercase();
        Self::KEYS.iter().find(|(k, _)| *k == key).map(|(_, tone)| tone.clone())
    }
}

#[cfg(test)]
mod tone_keys {
    use super::Tone;

    #[test]
    fn every_keypad_key_maps_to_its_tone_and_back() {
        for key in "0123456789*#ABCD".chars() {
            let tone = Tone::from_key(key).unwrap_or_else(|| panic!("{key} has a tone"));
            assert_eq!(tone.key(), Some(key));
        }
        assert_eq!(Tone::from_key('b'), Some(Tone::B));
        assert_eq!(Tone::from_key('x'), None);
        assert_eq!(Tone::Flash.key(), None);
        assert_eq!(Tone::from_wire("tone11").key(), None);
    }
}
