#![doc = include_str!("../README.md")]

pub mod env;
pub mod records;
pub mod store_contract;

pub use env::redis_url;
