//! The private Redis: a real `redis-server` process, stopped and restarted on
//! the same port, spoken to over plain TCP (RESP inline commands).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use graph_comms_testkit::RedisServer;

/// Sends one inline command and returns the raw reply.
fn command(port: u16, line: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("{line}\r\n").as_bytes())?;
    let mut reply = [0_u8; 256];
    let n = stream.read(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
}

#[test]
fn a_stopped_server_refuses_connections_and_restarts_empty_on_the_same_port() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}/"));
    assert_eq!(command(port, "SET greeting hello").unwrap(), "+OK\r\n");

    redis.stop().unwrap();
    assert!(!redis.is_running());
    let refused = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");

    redis.restart().unwrap();
    assert_eq!(redis.port(), port, "clients reconnect to the same URL");
    assert_eq!(command(port, "PING").unwrap(), "+PONG\r\n");
    assert_eq!(
        command(port, "GET greeting").unwrap(),
        "$-1\r\n",
        "without persistence a restart starts empty"
    );
}

#[test]
fn a_persistent_server_keeps_its_data_across_a_restart() {
    let mut redis = RedisServer::start_persistent();
    let port = redis.port();
    assert_eq!(command(port, "SET greeting hello").unwrap(), "+OK\r\n");
    redis.restart().unwrap();
    assert_eq!(command(port, "GET greeting").unwrap(), "$5\r\nhello\r\n");
}

#[test]
fn dropping_the_server_stops_it() {
    let redis = RedisServer::start();
    let port = redis.port();
    assert!(redis.pid().is_some());
    drop(redis);
    let refused = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
}
