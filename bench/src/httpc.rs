//! Minimal HTTP/1.1 over std sockets: no client library between the load and the server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

/// The notification the load sends: the docs' transfer-accepted body.
pub(crate) const FIXTURE: &str = "call-transfer.ex1.notify.transfer-accepted.json";

/// The notification body with `call_id` in its `resourceUrl`.
pub(crate) fn notification_body(call_id: &str) -> String {
    static BODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BODY.get_or_init(|| graph_comms_testkit::fixtures::read(FIXTURE))
        .replace("341a0500-d4bf-4224-8b19-1581168d328b", call_id)
}

/// The token and call ids a server wrote.
pub(crate) struct Setup {
    /// The bearer token.
    pub(crate) token: String,
    /// The calls to spread the load over.
    pub(crate) call_ids: Vec<String>,
}

impl Setup {
    /// Reads a setup file: the token, then one call id a line.
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines = text.lines();
        let token = lines.next().context("empty setup file")?.to_owned();
        let call_ids: Vec<String> = lines.filter(|l| !l.is_empty()).map(str::to_owned).collect();
        if call_ids.is_empty() {
            bail!("no call ids in {}", path.display());
        }
        Ok(Self { token, call_ids })
    }

    /// One complete POST request per call, with room for the client's stamps.
    pub(crate) fn requests(&self) -> Vec<Vec<u8>> {
        self.call_ids
            .iter()
            .map(|id| {
                let body = notification_body(id);
                format!(
                    "POST /api/calls HTTP/1.1\r\nHost: 127.0.0.1\r\n{}: {STAMP_ZERO}\r\n{}: {STAMP_ZERO}\r\n\
                     Content-Type: application/json\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}",
                    crate::stages::INTENDED_HEADER,
                    crate::stages::SENT_HEADER,
                    self.token,
                    body.len()
                )
                .into_bytes()
            })
            .collect()
    }
}

/// The placeholder of a stamp header's value: as many digits as any stamp has.
const STAMP_ZERO: &str = "0000000000000000000";

/// Where the stamp header `name`'s digits are in a request from [`Setup::requests`].
pub(crate) fn stamp_offset(request: &[u8], name: &str) -> Option<usize> {
    let needle = format!("{name}: ");
    request
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .map(|at| at + needle.len())
}

/// Writes `ns` over the placeholder digits at `offset` (zero-padded).
pub(crate) fn write_stamp(request: &mut [u8], offset: usize, ns: u64) {
    let digits = format!("{ns:019}");
    if let Some(slot) = request.get_mut(offset..offset + STAMP_ZERO.len()) {
        slot.copy_from_slice(&digits.as_bytes()[digits.len() - STAMP_ZERO.len()..]);
    }
}

/// Where a complete response ends in `buf`, and its status, if it is complete.
pub(crate) fn complete_response(buf: &[u8]) -> Option<(usize, u16)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(buf.get(..head_end)?).ok()?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let end = head_end + length;
    (buf.len() >= end).then_some((end, status))
}

/// One request on a fresh connection; the status and body.
pub(crate) fn request(addr: SocketAddr, method: &str, path: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((end, status)) = complete_response(&buf) {
            let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |p| p + 4);
            let body = String::from_utf8_lossy(buf.get(head_end..end).unwrap_or_default()).into_owned();
            return Ok((status, body));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed before a full response from {addr}{path}");
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// `GET` a JSON document.
pub(crate) fn get_json(addr: SocketAddr, path: &str) -> anyhow::Result<serde_json::Value> {
    let (status, body) = request(addr, "GET", path, Duration::from_secs(5))?;
    if status != 200 {
        bail!("GET {path}: HTTP {status}");
    }
    Ok(serde_json::from_str(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_complete_only_with_its_whole_body() {
        let head = b"HTTP/1.1 202 Accepted\r\ncontent-length: 3\r\n\r\n";
        assert_eq!(complete_response(head), None);
        let mut full = head.to_vec();
        full.extend_from_slice(b"abcHTTP/1.1");
        assert_eq!(complete_response(&full), Some((head.len() + 3, 202)));
        let refused = b"HTTP/1.1 503 Service Unavailable\r\n\r\n";
        assert_eq!(complete_response(refused), Some((refused.len(), 503)));
    }

    #[test]
    fn requests_carry_the_call_id_and_an_exact_length() {
        let setup = Setup {
            token: "tok".into(),
            call_ids: vec!["abc-123".into()],
        };
        let request = String::from_utf8(setup.requests().remove(0)).unwrap_or_default();
        let (head, body) = request.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.contains("Authorization: Bearer tok"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("/communications/calls/abc-123"));
        assert!(!body.contains("341a0500"));
    }

    #[test]
    fn stamps_are_written_in_place() {
        let setup = Setup {
            token: "tok".into(),
            call_ids: vec!["abc-123".into()],
        };
        let mut request = setup.requests().remove(0);
        let len = request.len();
        let at = stamp_offset(&request, crate::stages::SENT_HEADER).unwrap_or_default();
        write_stamp(&mut request, at, 1_764_000_000_123_456_789);
        assert_eq!(request.len(), len);
        let text = String::from_utf8(request).unwrap_or_default();
        assert!(text.contains("x-bench-sent: 1764000000123456789\r\n"), "{text}");
        assert!(text.contains("x-bench-intended: 0000000000000000000\r\n"), "{text}");
    }
}
