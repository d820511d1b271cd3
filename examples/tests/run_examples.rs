//! Runs every example as a user would (`cargo run -p examples --example NAME`)
//! and checks that it finishes successfully and prints what it is about.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generous: the first run may still have to build the example.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the example to completion and returns its stdout; panics with its
/// output when it fails or outlives [`TIMEOUT`].
fn run_example(name: &str) -> String {
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "--offline", "-q", "-p", "examples", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo runs");
    // Drain both pipes on threads so a chatty example cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap().unwrap_or_default();
    let stderr = err.join().unwrap().unwrap_or_default();
    match status {
        Some(status) if status.success() => stdout,
        Some(status) => panic!("example {name} exited with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
        None => panic!("example {name} ran longer than {TIMEOUT:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
    }
}

fn assert_line(stdout: &str, expected: &str) {
    assert!(
        stdout.lines().any(|line| line.contains(expected)),
        "no line with {expected:?} in:\n{stdout}"
    );
}

#[test]
fn minimal_handler_completes_its_transfer() {
    let stdout = run_example("minimal_handler");
    assert_line(&stdout, "completed");
    assert!(!stdout.contains("failed"), "{stdout}");
}

#[test]
fn consultative_transfer_completes_as_consultative() {
    let stdout = run_example("consultative_transfer");
    assert_line(&stdout, "accepted (inferred: false)");
    assert_line(&stdout, "completed (Consultative)");
}

#[test]
fn await_attempt_falls_back_to_the_free_agent() {
    let stdout = run_example("await_attempt");
    assert_line(&stdout, "agent-busy: failed");
    assert_line(&stdout, "agent-free: completed");
}

#[test]
fn client_transfer_sees_both_transfers_and_the_404() {
    let stdout = run_example("client_transfer");
    assert_line(&stdout, "blind transfer of");
    assert_line(&stdout, "AppTransferred");
    assert_line(&stdout, "transfer of the ended call: 404");
}
