//! Caller-controlled text as it may appear in logs: quoted, escaped and cut short.

use std::fmt::Write as _;

/// Characters of caller-controlled text kept in a log line.
pub(crate) const CLIP_CHARS: usize = 64;
/// Longest refusal detail logged, whatever it is made of.
pub(crate) const MAX_DETAIL_BYTES: usize = 512;

/// `value` quoted and escaped as `{:?}` does; past [`CLIP_CHARS`] characters,
/// only the first ones, then `…(N bytes)` with the full length.
pub(crate) fn clip(value: &str) -> String {
    match value.char_indices().nth(CLIP_CHARS) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?}…({} bytes)", &value[..end], value.len()),
    }
}

/// `detail` cut to about [`MAX_DETAIL_BYTES`] on a character boundary, marked with
/// its full length when cut: the last guard for text built from caller input.
pub(crate) fn clip_detail(mut detail: String) -> String {
    if detail.len() <= MAX_DETAIL_BYTES {
        return detail;
    }
    let full = detail.len();
    let mut end = MAX_DETAIL_BYTES;
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    detail.truncate(end);
    let _ = write!(detail, "…({full} bytes)");
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole() {
        assert_eq!(clip("kid-1"), r#""kid-1""#);
        assert_eq!(clip(""), r#""""#);
        let exact = "k".repeat(CLIP_CHARS);
        assert_eq!(clip(&exact), format!("{exact:?}"));
    }

    #[test]
    fn long_values_keep_their_start_and_length() {
        let kid = "k".repeat(10 * 1024);
        let clipped = clip(&kid);
        assert_eq!(clipped, format!("\"{}\"…(10240 bytes)", "k".repeat(CLIP_CHARS)));
        assert!(clipped.len() < 100);
    }

    #[test]
    fn clipping_respects_characters_and_escapes_control_ones() {
        let value = "é".repeat(100);
        let clipped = clip(&value);
        assert!(clipped.starts_with(&format!("\"{}\"", "é".repeat(CLIP_CHARS))));
        assert!(clipped.ends_with("…(200 bytes)"));
        // A line break cannot start a forged log line.
        assert_eq!(clip("a\nb"), r#""a\nb""#);
    }

    #[test]
    fn long_details_are_cut_on_a_character_boundary() {
        assert_eq!(clip_detail("short".into()), "short");
        let detail = "é".repeat(MAX_DETAIL_BYTES);
        let cut = clip_detail(detail);
        assert!(cut.len() <= MAX_DETAIL_BYTES + 20, "{}", cut.len());
        assert!(cut.ends_with(&format!("…({} bytes)", 2 * MAX_DETAIL_BYTES)));
    }
}
