#![doc = include_str!("../README.md")]

pub mod bots;
pub mod env;
pub mod ports;
pub mod proxy;
pub mod records;
pub mod redis_server;
pub mod shared_contract;
pub mod signal;
pub mod store_contract;

pub use bots::BotProcess;
pub use env::redis_url;
pub use ports::free_port;
pub use proxy::{RoundRobinProxy, UpstreamCounters};
pub use redis_server::RedisServer;
