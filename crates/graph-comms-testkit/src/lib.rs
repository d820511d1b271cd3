#![doc = include_str!("../README.md")]

pub mod env;
pub mod fixtures;
#[cfg(feature = "receiver")]
pub mod receiver;
#[cfg(feature = "stores")]
pub mod records;
#[cfg(feature = "stores")]
pub mod shared_contract;
#[cfg(feature = "signer")]
pub mod signer;
#[cfg(feature = "stores")]
pub mod store_contract;

pub use env::redis_url;
