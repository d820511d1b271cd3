//! [`SharedCallStore`] on Redis: a list per call for its inbox, a string with
//! a TTL for its lease, and Lua scripts that check the lease's token in the
//! same atomic step as their write.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use graph_comms_core::model::CallId;
use graph_comms_core::{CallRecord, Claim, InboxItem, Lease, Released, SharedCallStore, StoreError};
use redis::Value;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::keys::Keys;
use crate::metrics::{Counters, OpCounter};
use crate::scripts::Lua;
use crate::store::{RedisCallStore, cas_reply, millis};
use crate::write::RecordWrite;

/// Orphan candidates read per sweep, at most.
const ORPHAN_SCAN: usize = 1_000;

/// The outbox marker's argument: `1` while the record awaits a holder (hook
/// steps to run, a `POST /transfer` not known to be sent).
fn outbox_flag(record: &CallRecord) -> String {
    if record.awaits_holder() { "1" } else { "0" }.to_owned()
}

fn ttl_millis(ttl: Duration) -> String {
    ttl.as_millis().max(1).to_string()
}

fn unexpected(what: &str, reply: &Value) -> StoreError {
    StoreError::Unavailable(format!("redis {what}: unexpected reply {reply:?}"))
}

fn lease_lost(counters: &Counters, lease: &Lease) -> StoreError {
    Counters::add(&counters.fenced, 1);
    StoreError::LeaseLost {
        call_id: lease.call_id.clone(),
    }
}

/// Reads a claim script's answer: `{0}` (held), or `{1, record, items}`.
fn parse_claim(lease: Lease, reply: &Value) -> Result<Option<Claim>, StoreError> {
    let Value::Array(parts) = reply else {
        return Err(unexpected("claim", reply));
    };
    match parts.as_slice() {
        [Value::Int(0)] => Ok(None),
        [Value::Int(1), record, Value::Array(items)] => {
            let record = match record {
                Value::BulkString(bytes) => Some(Arc::new(CallRecord::from_json(bytes)?)),
                _ => None,
            };
            let mut inbox = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::BulkString(bytes) => inbox.push(InboxItem::from_json(bytes)?),
                    other => return Err(unexpected("claim", other)),
                }
            }
            Ok(Some(Claim::new(lease, record, inbox)))
        }
        _ => Err(unexpected("claim", reply)),
    }
}

impl RedisCallStore {
    /// Runs a script that starts with the leased write (see `scripts.rs`): the
    /// call's keys, the token, the handled items and the record (with its index
    /// updates in the same round trip), then the script's own `tail` arguments.
    #[allow(clippy::too_many_arguments)]
    async fn leased_write(
        &self,
        op: &OpCounter,
        what: &str,
        lua: &Lua,
        lease: &Lease,
        consumed: usize,
        record: Option<&CallRecord>,
        tail: Vec<String>,
    ) -> Result<Value, StoreError> {
        let inner = &*self.inner;
        let member = Keys::member(&lease.call_id);
        let keys = inner.keys.leased_keys(&member);
        let keys = keys.each_ref().map(String::as_str);
        let mut args = vec![lease.token.clone(), consumed.to_string()];
        let write = match record {
            Some(record) => {
                let write = RecordWrite::new(record, inner.ended_retention)?;
                args.push(record.version.to_string());
                args.extend(write.args());
                args.push(outbox_flag(record));
                Some(write)
            }
            None => {
                args.extend([String::new(), String::new(), String::new(), String::new()]);
                None
            }
        };
        args.extend(tail);
        match &write {
            Some(write) => {
                inner
                    .write_with_indexes(op, what, lua, &keys, &args, &member, write)
                    .await
            }
            None => inner.eval(op, what, lua, &keys, &args).await,
        }
    }

    /// The commit's round trip and what its reply means.
    async fn commit_reply(
        &self,
        lease: &Lease,
        record: Option<Arc<CallRecord>>,
        consumed: usize,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let reply = self
            .leased_write(
                &inner.counters.commit,
                "commit",
                &inner.scripts.commit,
                lease,
                consumed,
                record.as_deref(),
                vec![ttl_millis(ttl)],
            )
            .await?;
        match cas_reply(&reply)? {
            (1, _) => Ok(()),
            (-1, _) => Err(lease_lost(&inner.counters, lease)),
            (_, stored) => {
                Counters::add(&inner.counters.conflicts, 1);
                Err(StoreError::Conflict {
                    call_id: lease.call_id.clone(),
                    written: record.map_or(0, |r| r.version),
                    stored,
                })
            }
        }
    }
}

#[async_trait]
impl SharedCallStore for RedisCallStore {
    /// One pipeline: `RPUSH` per call, then the calls' entries in the inboxes
    /// index (scored by now) for the orphan sweep (on a cluster: the pushes,
    /// then the index, see `in_order`).
    async fn append(&self, items: &[(CallId, InboxItem)]) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.append;
        op.call();
        if items.is_empty() {
            return Ok(());
        }
        let now = millis(SystemTime::now());
        let mut pushes = redis::pipe();
        let mut index = redis::pipe();
        for (call_id, item) in items {
            // The index keeps the id as Graph spelled it: the orphan sweep hands it to the runtime.
            let member = Keys::member(call_id);
            pushes.cmd("RPUSH").arg(inner.keys.inbox(&member)).arg(item.to_json()?);
            index
                .cmd("ZADD")
                .arg(&inner.keys.inboxes)
                .arg(now)
                .arg(call_id.as_str());
        }
        // The items before their index entries, as the orphan sweep expects.
        let (pushed, indexed) = inner.in_order(op, "append", pushes, index).await?;
        if let Some(error) = pushed.iter().chain(indexed?.iter()).find_map(|r| r.as_ref().err()) {
            return Err(crate::store::store_error("append", error));
        }
        Ok(())
    }

    /// One pipeline: per call, a script that appends its items and tries
    /// its lease, then the calls' entries in the inboxes index (on a
    /// cluster: the scripts, then the index, see `in_order`).
    async fn append_and_claim(
        &self,
        items: &[(CallId, InboxItem)],
        owner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.append;
        op.call();
        // Each call's items in order, calls in order of first appearance.
        let mut calls: Vec<(&CallId, Vec<String>)> = Vec::new();
        for (call_id, item) in items {
            let json = String::from_utf8_lossy(&item.to_json()?).into_owned();
            match calls.iter_mut().find(|(id, _)| *id == call_id) {
                Some((_, jsons)) => jsons.push(json),
                None => calls.push((call_id, vec![json])),
            }
        }
        let now = millis(SystemTime::now());
        let mut requests = Vec::with_capacity(calls.len());
        let mut scripts = redis::pipe();
        let mut index = redis::pipe();
        for (call_id, jsons) in calls {
            let member = Keys::member(call_id);
            let keys = inner.keys.claim_keys(&member);
            inner.one_slot("append", &keys)?;
            let lease = Lease::new(call_id.clone(), owner);
            let mut args = vec![lease.token.clone(), ttl_millis(ttl), limit.max(1).to_string()];
            args.extend(jsons);
            scripts
                .cmd("EVALSHA")
                .arg(&inner.scripts.append_claim.sha)
                .arg(keys.len())
                .arg(&keys)
                .arg(&args);
            index
                .cmd("ZADD")
                .arg(&inner.keys.inboxes)
                .arg(now)
                .arg(call_id.as_str());
            requests.push((lease, keys, args));
        }
        let (replies, indexed) = inner.in_order(op, "append", scripts, index).await?;
        let indexed = indexed.unwrap_or_else(|error| {
            // The items are in and the claims stand: only the sweep's index lags.
            let error = redis::RedisError::from((redis::ErrorKind::Io, "inboxes index", error.to_string()));
            requests.iter().map(|_| Err(error.clone())).collect()
        });
        if replies.len() != requests.len() || indexed.len() != requests.len() {
            return Err(StoreError::Unavailable(format!(
                "redis append: {} and {} replies to {} calls",
                replies.len(),
                indexed.len(),
                requests.len()
            )));
        }
        let mut claims = Vec::new();
        for (((lease, keys, args), reply), indexed) in requests.into_iter().zip(replies).zip(indexed) {
            let reply = match reply {
                Ok(value) => value,
                Err(error) if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                    // The script did not run, so nothing was appended: run it in full.
                    Counters::add(&inner.counters.script_loads, 1);
                    let keys = keys.each_ref().map(String::as_str);
                    inner
                        .eval(op, "append", &inner.scripts.append_claim, &keys, &args)
                        .await?
                }
                Err(error) => return Err(crate::store::store_error("append", &error)),
            };
            if let Err(error) = &indexed {
                Counters::add(&inner.counters.index_errors, 1);
                tracing::warn!(call_id = %lease.call_id, "redis call store: inboxes index update refused: {error}");
            }
            if let Some(claim) = parse_claim(lease, &reply)? {
                claims.push(claim);
            }
        }
        Ok(claims)
    }

    async fn claim(
        &self,
        call_id: &CallId,
        owner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Option<Claim>, StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.claim;
        op.call();
        let member = Keys::member(call_id);
        let lease = Lease::new(call_id.clone(), owner);
        let keys = inner.keys.claim_keys(&member);
        let args = [lease.token.clone(), ttl_millis(ttl), limit.max(1).to_string()];
        let reply = inner
            .eval(
                op,
                "claim",
                &inner.scripts.claim,
                &keys.each_ref().map(String::as_str),
                &args,
            )
            .await?;
        parse_claim(lease, &reply)
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.renew;
        op.call();
        let key = inner.keys.lease(&Keys::member(&lease.call_id));
        let reply = inner
            .eval(
                op,
                "renew",
                &inner.scripts.renew,
                &[&key],
                &[lease.token.clone(), ttl_millis(ttl)],
            )
            .await?;
        match reply {
            Value::Int(1) => Ok(()),
            Value::Int(_) => Err(lease_lost(&inner.counters, lease)),
            other => Err(unexpected("renew", &other)),
        }
    }

    async fn commit(
        &self,
        lease: &Lease,
        record: Option<Arc<CallRecord>>,
        consumed: usize,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.commit;
        op.call();
        // Database client conventions; the outcome says why a commit did not land.
        let span = tracing::info_span!(
            "store_commit",
            otel.kind = "client",
            db.system.name = "redis",
            db.operation.name = "commit",
            call_id = Empty,
            version = record.as_ref().map(|r| r.version),
            consumed,
            commit.outcome = Empty,
        );
        if !span.is_disabled() {
            // The call span's spelling of the id (the lease has Graph's, either form).
            span.record("call_id", lease.call_id.dashed().as_str());
        }
        let result = self
            .commit_reply(lease, record, consumed, ttl)
            .instrument(span.clone())
            .await;
        span.record(
            "commit.outcome",
            match &result {
                Ok(()) => "committed",
                Err(StoreError::Conflict { .. }) => "conflict",
                Err(StoreError::LeaseLost { .. }) => "lease_lost",
                Err(_) => "error",
            },
        );
        result
    }

    async fn release(
        &self,
        lease: &Lease,
        consumed: usize,
        record: Option<Arc<CallRecord>>,
        ttl: Duration,
        limit: usize,
    ) -> Result<Released, StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.release;
        op.call();
        let tail = vec![ttl_millis(ttl), limit.max(1).to_string()];
        let reply = self
            .leased_write(
                op,
                "release",
                &inner.scripts.release,
                lease,
                consumed,
                record.as_deref(),
                tail,
            )
            .await?;
        let Value::Array(parts) = &reply else {
            return Err(unexpected("release", &reply));
        };
        match parts.as_slice() {
            [Value::Int(1)] => Ok(Released::Free),
            [Value::Int(2), rest @ ..] => {
                let mut claim = vec![Value::Int(1)];
                claim.extend(rest.iter().cloned());
                match parse_claim(lease.clone(), &Value::Array(claim))? {
                    Some(claim) => Ok(Released::Kept(claim)),
                    None => Err(unexpected("release", &reply)),
                }
            }
            [Value::Int(-1), _] => Err(lease_lost(&inner.counters, lease)),
            [Value::Int(0), Value::Int(stored)] => {
                Counters::add(&inner.counters.conflicts, 1);
                Err(StoreError::Conflict {
                    call_id: lease.call_id.clone(),
                    written: record.map_or(0, |r| r.version),
                    stored: u64::try_from(*stored).unwrap_or(0),
                })
            }
            _ => Err(unexpected("release", &reply)),
        }
    }

    /// Reads the inboxes index, then (one pipeline) each inbox's length and
    /// lease. Calls with items and no lease are orphans; entries of empty,
    /// unleased inboxes are removed if their score is still the one read (an
    /// append meanwhile re-scores and keeps its entry).
    async fn peek(&self, call_id: &CallId, from: usize, limit: usize) -> Result<Vec<InboxItem>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let inner = &*self.inner;
        let op = &inner.counters.peek;
        op.call();
        let mut range = redis::cmd("LRANGE");
        range
            .arg(inner.keys.inbox(&Keys::member(call_id)))
            .arg(from)
            .arg(from + limit - 1);
        let mut conn = inner.connection.clone();
        let items: Vec<Vec<u8>> = inner.request(op, "LRANGE", range.query_async(&mut conn)).await?;
        items.iter().map(|bytes| InboxItem::from_json(bytes)).collect()
    }

    async fn orphans(&self, limit: usize) -> Result<Vec<CallId>, StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.orphans;
        op.call();
        let mut range = redis::cmd("ZRANGE");
        range
            .arg(&inner.keys.inboxes)
            .arg(0)
            .arg(ORPHAN_SCAN.saturating_sub(1))
            .arg("WITHSCORES");
        let mut conn = inner.connection.clone();
        let entries: Vec<(String, String)> = inner.request(op, "ZRANGE", range.query_async(&mut conn)).await?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (id, _) in &entries {
            let member = Keys::member(&CallId::from(id.as_str()));
            pipe.cmd("LLEN").arg(inner.keys.inbox(&member));
            pipe.cmd("EXISTS").arg(inner.keys.lease(&member));
            pipe.cmd("EXISTS").arg(inner.keys.outbox(&member));
        }
        let states: Vec<u64> = inner.pipeline(op, "LLEN", &pipe).await?;
        let mut orphans = Vec::new();
        let mut stale = Vec::new();
        for ((id, score), state) in entries.iter().zip(states.chunks(3)) {
            match state {
                [0, 0, 0] => stale.extend([id.clone(), score.clone(), String::new()]),
                // Items waiting, or work left by a holder that stopped.
                [waiting, 0, outbox] if (*waiting > 0 || *outbox > 0) && orphans.len() < limit => {
                    orphans.push(CallId::from(id.as_str()));
                }
                _ => {}
            }
        }
        if !stale.is_empty() {
            inner
                .eval(
                    op,
                    "inboxes index fix",
                    &inner.scripts.fix_due,
                    &[&inner.keys.inboxes],
                    &stale,
                )
                .await?;
        }
        Ok(orphans)
    }
}
