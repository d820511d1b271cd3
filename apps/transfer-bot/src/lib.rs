#![doc = include_str!("../README.md")]

pub mod bot;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod doctor;
pub mod inspect;
pub mod logging;
pub mod menu;
pub mod metrics;
pub mod routing;
pub mod server;
#[cfg(feature = "otlp")]
pub mod telemetry;
