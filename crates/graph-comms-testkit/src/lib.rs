#![doc = include_str!("../README.md")]

#[cfg(feature = "cluster")]
pub mod bots;
pub mod env;
pub mod fixtures;
#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "pki")]
pub mod pki;
#[cfg(feature = "cluster")]
pub mod ports;
#[cfg(feature = "cluster")]
pub mod proxy;
#[cfg(feature = "receiver")]
pub mod receiver;
#[cfg(feature = "stores")]
pub mod records;
#[cfg(feature = "cluster")]
pub mod redis_cluster;
#[cfg(feature = "cluster")]
pub mod redis_server;
#[cfg(feature = "stores")]
pub mod shared_contract;
#[cfg(feature = "cluster")]
pub mod signal;
#[cfg(feature = "signer")]
pub mod signer;
#[cfg(feature = "stores")]
pub mod store_contract;

#[cfg(feature = "cluster")]
pub use bots::BotProcess;
pub use env::{redis_url, shared_tls_redis};
#[cfg(feature = "local")]
pub use local::{LocalError, LocalGraph, ServedBot, bot_listener};
#[cfg(feature = "pki")]
pub use pki::TestPki;
#[cfg(feature = "cluster")]
pub use ports::free_port;
#[cfg(feature = "cluster")]
pub use proxy::{RoundRobinProxy, UpstreamCounters};
#[cfg(feature = "cluster")]
pub use redis_cluster::{RedisCluster, redis_cluster_urls, shared_or_private_cluster};
#[cfg(feature = "cluster")]
pub use redis_server::{PkiFiles, RedisServer};
