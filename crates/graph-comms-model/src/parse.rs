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
    serde_json::from_slice(body).map_err(ParseError::from)
}

/// Parses any model type from text, with line and column on error.
pub fn from_str<T: DeserializeOwned>(body: &str) -> Result<T, ParseError> {
    serde_json::from_str(body).map_err(ParseError::from)
}
