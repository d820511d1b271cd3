//! Unit tests of the suite's parsing and formatting.

use super::environment::busy_warning;
use super::format::{median, ratio};
use super::perf::tidy_perf_line;
use super::startup::EmulatorCredentials;

#[test]
fn a_busy_machine_is_warned_about() {
    assert!(busy_warning("0.10 0.20 0.30 1/80 123", 2).is_none());
    let warning = busy_warning("1.80 1.20 0.90 3/90 456", 2).unwrap();
    assert!(warning.contains("load 1.80 on 2 cores"), "{warning}");
    assert!(busy_warning("", 2).is_none(), "no /proc/loadavg: no warning");
}

#[test]
fn perf_lines_lose_padding_and_empty_columns() {
    let line = "     8.47%  libc.so.6          [.] __memmove_avx_unaligned_erms          -      -            ";
    assert_eq!(
        tidy_perf_line(line),
        "8.47%  libc.so.6  [.] __memmove_avx_unaligned_erms"
    );
}

#[test]
fn ratios_and_medians() {
    assert_eq!(ratio(3.0, 2.0), "1.50x");
    assert_eq!(ratio(3.0, 0.0), "n/a");
    assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
}

#[test]
fn emulator_credentials_are_read_from_its_banner() {
    let lines: Vec<String> = [
        "graph base url:      http://127.0.0.1:1/v1.0",
        "tenant id:           t-1",
        "app id:              a-1",
        "client secret:       s~1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let creds = EmulatorCredentials::parse(&lines, "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!()));
    let creds = creds.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (creds.tenant.as_str(), creds.app_id.as_str(), creds.secret.as_str()),
        ("t-1", "a-1", "s~1")
    );
}
