#![doc = include_str!("../README.md")]

pub mod env;
pub mod records;
pub mod shared_contract;
pub mod store_contract;

pub use env::redis_url;
