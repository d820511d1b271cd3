//! Free loopback ports for servers a test starts in another process.

use std::io;
use std::net::{Ipv4Addr, TcpListener};

/// A loopback port that was free a moment ago: the kernel picks it, and the
/// listener is closed again so a child process can bind it.
///
/// Another process may take the port before the child binds it; callers that
/// start a server on it retry with a new port when the server cannot bind.
///
/// # Errors
///
/// When no loopback port can be bound at all.
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
