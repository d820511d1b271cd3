//! Writing a record with its index entries: what a write carries
//! ([`RecordWrite`]) and the request that sends both.

use std::time::{Duration, SystemTime};

use graph_comms_core::{CallRecord, StoreError};
use redis::{ErrorKind, ServerErrorKind, Value};

use crate::metrics::{Counters, OpCounter};
use crate::scripts::Lua;
use crate::store::{Inner, millis, store_error};

/// A record about to be written: its JSON and when it expires.
pub(crate) struct RecordWrite {
    json: Vec<u8>,
    /// Unix millis; `None` while the call is live.
    expire_at: Option<u64>,
    next_due: Option<u64>,
    /// The call's id as Graph spells it, when the record awaits a holder.
    with_outbox: Option<String>,
}

impl RecordWrite {
    pub(crate) fn new(record: &CallRecord, ended_retention: Duration) -> Result<Self, StoreError> {
        let deadlines = &record.lifecycle.deadlines;
        Ok(Self {
            json: record.to_json()?,
            expire_at: record
                .is_ended()
                .then(|| millis(deadlines.forget.unwrap_or_else(|| SystemTime::now() + ended_retention))),
            next_due: deadlines.next_due().map(millis),
            with_outbox: record.awaits_holder().then(|| record.call_id().as_str().to_owned()),
        })
    }

    /// The script arguments after the version: the JSON and the expiry (or `""`).
    pub(crate) fn args(&self) -> [String; 2] {
        [
            String::from_utf8_lossy(&self.json).into_owned(),
            self.expire_at.map_or_else(String::new, |at| at.to_string()),
        ]
    }
}

impl Inner {
    /// Sends the index updates for `write` and then the record's script, in
    /// one pipeline (one round trip; two in turn on a cluster, see `in_order`).
    ///
    /// The indexes come first (another slot, so not in the script): an entry
    /// for a write that then fails only causes a harmless early wake-up. The
    /// due score only ever moves earlier here (LT), so a refused write can
    /// never delay a committed deadline; `due` moves it later when needed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn write_with_indexes(
        &self,
        op: &OpCounter,
        what: &str,
        lua: &Lua,
        keys: &[&str],
        args: &[String],
        member: &str,
        write: &RecordWrite,
    ) -> Result<Value, StoreError> {
        self.one_slot(what, keys)?;
        let mut index = redis::pipe();
        if let Some(next_due) = write.next_due {
            index
                .cmd("ZADD")
                .arg(&self.keys.due)
                .arg("LT")
                .arg(next_due)
                .arg(member);
        }
        index
            .cmd("ZADD")
            .arg(&self.keys.calls)
            .arg(write.expire_at.map_or_else(|| "+inf".to_owned(), |at| at.to_string()))
            .arg(member);
        if let Some(call_id) = &write.with_outbox {
            // The orphan sweep reads this index: a holder that stops leaves its work to another.
            index
                .cmd("ZADD")
                .arg(&self.keys.inboxes)
                .arg(millis(SystemTime::now()))
                .arg(call_id);
        }
        let index_commands = index.len();
        let mut script = redis::pipe();
        script.cmd("EVALSHA").arg(&lua.sha).arg(keys.len()).arg(keys).arg(args);
        // On a cluster an index node that cannot be reached fails the write
        // here, before the record is written without its index entries.
        let (replies, script_replies) = self.in_order(op, what, index, script).await?;
        let script_reply = script_replies?.pop();
        let index_failures = replies.iter().filter(|r| r.is_err()).count();
        if index_failures > 0 || replies.len() != index_commands {
            Counters::add(&self.counters.index_errors, 1);
            for error in replies.iter().filter_map(|r| r.as_ref().err()) {
                tracing::warn!(member, "redis call store: index update refused: {error}");
            }
        }
        match script_reply {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                Counters::add(&self.counters.script_loads, 1);
                self.eval_full(op, what, lua, keys, args).await
            }
            Some(Err(error)) => Err(store_error(what, &error)),
            None => Err(StoreError::Unavailable(format!("redis {what}: no reply to the write"))),
        }
    }
}
