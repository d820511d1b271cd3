#![doc = include_str!("../README.md")]

pub mod cli;
pub mod config;
pub mod inspect;
pub mod logging;
pub mod metrics;
pub mod routing;
