//! POSIX signals for child processes, sent with the `kill` command: the
//! workspace forbids `unsafe`, so there is no `libc::kill` here.

use std::io;
use std::process::{Command, Stdio};

/// A signal a test sends to a process it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGTERM`: asks the process to shut down gracefully.
    Term,
    /// `SIGKILL`: ends it at once; nothing runs in the process any more.
    Kill,
    /// `SIGSTOP`: freezes it; its sockets stay open but nothing answers.
    Stop,
    /// `SIGCONT`: lets a stopped process run again.
    Cont,
    /// `SIGINT`: an interrupt, as from Ctrl-C (`perf record` writes its data and exits).
    Int,
}

impl Signal {
    /// The name `kill -s` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Term => "TERM",
            Self::Kill => "KILL",
            Self::Stop => "STOP",
            Self::Cont => "CONT",
            Self::Int => "INT",
        }
    }
}

/// Sends `signal` to the process `pid` (`kill -s NAME PID`).
///
/// # Errors
///
/// When `kill` cannot run or fails, e.g. because the process is gone.
pub fn send(pid: u32, signal: Signal) -> io::Result<()> {
    let output = Command::new("kill")
        .args(["-s", signal.name(), &pid.to_string()])
        .stdin(Stdio::null())
        .output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "kill -s {} {pid} failed ({}): {}",
            signal.name(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
