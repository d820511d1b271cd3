//! Runs every example binary (built by `cargo test` beside this test) and
//! checks that it finishes successfully and prints what it is about.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generous for a loaded 2-core machine; each example finishes in about a second.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Builds the examples once, as plain binaries, and returns the path of one.
///
/// `cargo test` builds examples in test mode only, so this asks cargo for the
/// binaries. `--workspace` keeps the feature set the same as the test run's,
/// so nothing is rebuilt.
fn example_binary(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--offline", "-q", "--workspace", "--examples"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the examples failed: {status}");
    });
    let test_binary = std::env::current_exe().expect("test binary path");
    let profile_dir = test_binary
        .parent()
        .and_then(std::path::Path::parent)
        .expect("<target>/<profile>/deps/<test>");
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Runs the example to completion and returns its stdout; panics with its
/// output when it fails or outlives [`TIMEOUT`].
fn run_example(name: &str) -> String {
    let mut child = Command::new(example_binary(name))
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
