#![doc = include_str!("../README.md")]

mod config;
mod connection;
mod keys;
mod metrics;
mod scripts;
mod shared;
mod store;
mod write;

pub use config::{ConnectError, DEFAULT_PREFIX, RedisStoreConfig, RedisTls};
pub use connection::RedisConnection;
pub use metrics::{OpStats, StoreMetrics};
pub use store::RedisCallStore;
