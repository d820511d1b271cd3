//! E.164 phone numbers for PSTN targets.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A phone number in E.164 form: `+`, then 2 to 15 digits, the first not zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// Why a string is not an E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not an E.164 phone number: {reason}")]
pub struct PhoneNumberError {
    /// The input.
    pub input: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl PhoneNumber {
    /// Checks and wraps an E.164 number such as `+14255550100`.
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let err = |reason| PhoneNumberError {
            input: input.to_owned(),
            reason,
        };
        let digits = input.strip_prefix('+').ok_or_else(|| err("it must start with '+'"))?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("only digits may follow '+'"));
        }
        if digits.starts_with('0') {
            return Err(err("the country code cannot start with 0"));
        }
        if !(2..=15).contains(&digits.len()) {
            return Err(err("it must have 2 to 15 digits"));
        }
        Ok(Self(input.to_owned()))
    }

    /// The number, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but the last 4 digits masked, for logs.
    pub fn masked(&self) -> String {
        let keep = self.0.len().saturating_sub(4);
        format!("+{}{}", "*".repeat(keep.saturating_sub(1)), &self.0[keep.max(1)..])
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

impl std::str::FromStr for PhoneNumber {
    type Err = PhoneNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_numbers_parse_and_mask() {
        let n = PhoneNumber::parse("+12345678901").unwrap();
        assert_eq!(n.as_str(), "+12345678901");
        assert_eq!(n.masked(), "+*******8901");
    }

    #[test]
    fn invalid_numbers_say_why() {
        for (bad, why) in [
            ("12345678901", "'+'"),
            ("+1 234", "digits"),
            ("+0123", "0"),
            ("+1", "2 to 15"),
            ("+1234567890123456", "2 to 15"),
            ("", "'+'"),
        ] {
            let err = PhoneNumber::parse(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
    }
}
