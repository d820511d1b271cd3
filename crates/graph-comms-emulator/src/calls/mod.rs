//! The calls API: validation, state rules, and the notification scripts each action plays.

mod api;
mod caller;
mod incoming;
mod items;
mod operations;
mod outgoing;
mod snapshot;
mod transfer;

pub(crate) use api::handle;
pub(crate) use caller::{caller_hangs_up, caller_tones};
pub(crate) use incoming::place_incoming;
pub(crate) use items::{answer_timeout_step, keep_alive_timeout_step};
