//! Wall-clock times as stored in call records: milliseconds since the Unix epoch.
//!
//! Records outlive processes, so deadlines are wall-clock times, never `Instant`s.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch (0 for times before it).
pub fn to_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time `millis` after the Unix epoch.
pub fn from_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// `serde(with)` for a `SystemTime`.
pub mod millis {
    use super::*;

    /// Writes the time as Unix milliseconds.
    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        to_millis(*time).serialize(s)
    }

    /// Reads Unix milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        u64::deserialize(d).map(from_millis)
    }
}

/// `serde(with)` for an `Option<SystemTime>`.
pub mod opt_millis {
    use super::*;

    /// Writes the time, if any, as Unix milliseconds.
    pub fn serialize<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        time.map(to_millis).serialize(s)
    }

    /// Reads Unix milliseconds, or nothing.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        Option::<u64>::deserialize(d).map(|m| m.map(from_millis))
    }
}

/// Now, at the millisecond precision records keep, so a record read back from
/// any store equals the one written.
pub fn now() -> SystemTime {
    from_millis(to_millis(SystemTime::now()))
}
