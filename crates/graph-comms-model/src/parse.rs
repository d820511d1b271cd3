//! Parsing entry points with errors that point at the input.

use serde::de::DeserializeOwned;

/// A body that could not be read, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{category} at line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based line of the error (0 when it is not tied to a position).
    pub line: usize,
    /// 1-based column of the error.
    pub column: usize,
    /// What kind of problem it is.
    pub category: ParseErrorCategory,
    /// serde_json's description.
    pub message: String,
}

/// What kind of parse problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorCategory {
    /// Not JSON (bad syntax, invalid UTF-8).
    Syntax,
    /// JSON, but not the expected shape.
    Shape,
    /// The input ended early.
    Truncated,
}

impl std::fmt::Display for ParseErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Syntax => "invalid JSON",
            Self::Shape => "unexpected JSON shape",
            Self::Truncated => "truncated JSON",
        })
    }
}

impl From<serde_json::Error> for ParseError {
    fn from(err: serde_json::Error) -> Self {
        let category = match err.classify() {
            serde_json::error::Category::Data => ParseErrorCategory::Shape,
            serde_json::error::Category::Eof => ParseErrorCategory::Truncated,
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => ParseErrorCategory::Syntax,
        };
        let full = err.to_string();
        // serde_json appends " at line L column C"; we report those separately.
        let message = full
            .rsplit_once(" at line ")
            .map_or(full.as_str(), |(head, _)| head)
            .to_owned();
        Self {
            line: err.line(),
            column: err.column(),
            category,
            message,
        }
    }
}

/// Parses any model type from bytes, with line and column on error.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, ParseError> {
    serde_json::from_slice(body).map_err(|err| ParseError::locate(err, body))
}

/// Parses any model type from text, with line and column on error.
pub fn from_str<T: DeserializeOwned>(body: &str) -> Result<T, ParseError> {
    serde_json::from_str(body).map_err(|err| ParseError::locate(err, body.as_bytes()))
}

impl ParseError {
    /// Converts a serde_json error, moving the position to the real mistake
    /// where serde_json reports a later one. serde_json notices a trailing
    /// comma only at the bracket after it, possibly lines later; the comma is
    /// what to fix (most invalid published payloads have one).
    fn locate(err: serde_json::Error, body: &[u8]) -> Self {
        let mut parsed = Self::from(err);
        if parsed.category == ParseErrorCategory::Syntax && parsed.message == "trailing comma" {
            let comma = byte_offset(body, parsed.line, parsed.column)
                .and_then(|end| body.get(..end))
                .and_then(|before| before.iter().rposition(|b| !b.is_ascii_whitespace()))
                .filter(|&at| body.get(at) == Some(&b','));
            if let Some(at) = comma {
                (parsed.line, parsed.column) = line_column(body, at);
            }
        }
        parsed
    }
}

/// The byte offset of a 1-based line and column as serde_json counts them.
fn byte_offset(body: &[u8], line: usize, column: usize) -> Option<usize> {
    let line_start = if line <= 1 {
        0
    } else {
        body.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map(|(at, _)| at + 1)?
    };
    line_start.checked_add(column.checked_sub(1)?)
}

/// The 1-based line and column of a byte offset.
fn line_column(body: &[u8], at: usize) -> (usize, usize) {
    let before = body.get(..at).unwrap_or(body);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |nl| nl + 1);
    (line, at - line_start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_comma_is_reported_where_it_is() {
        let body = "{\n  \"a\": {\"b\": 1},\n\n}\n";
        let err = from_str::<serde_json::Value>(body).unwrap_err();
        assert_eq!((err.line, err.column), (2, 16), "{err}");
        assert_eq!(err.category, ParseErrorCategory::Syntax);
    }

    #[test]
    fn other_errors_keep_serde_json_positions() {
        let err = from_str::<serde_json::Value>("{\n  \"a\": x\n}").unwrap_err();
        assert_eq!((err.line, err.column), (2, 8));
        let err = from_str::<serde_json::Value>("").unwrap_err();
        assert_eq!(err.category, ParseErrorCategory::Truncated);
    }
}
