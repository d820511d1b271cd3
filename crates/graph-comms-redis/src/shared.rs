//! [`SharedCallStore`] on Redis: a list per call for its inbox, a string with
//! a TTL for its lease, and Lua scripts that check the lease's token in the
//! same atomic step as their write.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use graph_comms_handler::model::CallId;
use graph_comms_handler::{CallRecord, Claim, InboxItem, Lease, SharedCallStore, StoreError};
use redis::Value;

use crate::keys::Keys;
use crate::metrics::Counters;
use crate::store::{RecordWrite, RedisCallStore, cas_reply, millis};

/// Orphan candidates read per sweep, at most.
const ORPHAN_SCAN: usize = 1_000;

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

#[async_trait]
impl SharedCallStore for RedisCallStore {
    /// One pipeline: `RPUSH` per call, then the calls' entries in the inboxes
    /// index (scored by now) for the orphan sweep.
    async fn append(&self, items: &[(CallId, InboxItem)]) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.append;
        op.call();
        if items.is_empty() {
            return Ok(());
        }
        let now = millis(SystemTime::now());
        let mut pipe = redis::pipe();
        for (call_id, item) in items {
            // The index keeps the id as Graph spelled it: the orphan sweep hands it to the runtime.
            let member = Keys::member(call_id);
            pipe.cmd("RPUSH")
                .arg(inner.keys.inbox(&member))
                .arg(item.to_json()?)
                .ignore();
            pipe.cmd("ZADD")
                .arg(&inner.keys.inboxes)
                .arg(now)
                .arg(call_id.as_str())
                .ignore();
        }
        let mut conn = inner.connection.clone();
        inner.request(op, "append", pipe.query_async::<()>(&mut conn)).await
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
        let keys = [
            inner.keys.lease(&member),
            inner.keys.record_for_member(&member),
            inner.keys.inbox(&member),
        ];
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
        let Value::Array(parts) = &reply else {
            return Err(unexpected("claim", &reply));
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
            _ => Err(unexpected("claim", &reply)),
        }
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
        let member = Keys::member(&lease.call_id);
        let keys = [
            inner.keys.lease(&member),
            inner.keys.record_for_member(&member),
            inner.keys.inbox(&member),
        ];
        let keys = keys.each_ref().map(String::as_str);
        let mut args = vec![lease.token.clone(), ttl_millis(ttl), consumed.to_string()];
        let reply = match &record {
            Some(record) => {
                let write = RecordWrite::new(record, inner.ended_retention)?;
                args.push(record.version.to_string());
                args.extend(write.args());
                inner
                    .write_with_indexes(op, "commit", &inner.scripts.commit, &keys, &args, &member, &write)
                    .await?
            }
            None => {
                args.extend([String::new(), String::new(), String::new()]);
                inner.eval(op, "commit", &inner.scripts.commit, &keys, &args).await?
            }
        };
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

    async fn release(&self, lease: &Lease, consumed: usize) -> Result<usize, StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.release;
        op.call();
        let member = Keys::member(&lease.call_id);
        let keys = [inner.keys.lease(&member), inner.keys.inbox(&member)];
        let args = [lease.token.clone(), consumed.to_string()];
        let reply = inner
            .eval(
                op,
                "release",
                &inner.scripts.release,
                &keys.each_ref().map(String::as_str),
                &args,
            )
            .await?;
        match reply {
            Value::Int(waiting) if waiting >= 0 => Ok(usize::try_from(waiting).unwrap_or(usize::MAX)),
            Value::Int(_) => Err(lease_lost(&inner.counters, lease)),
            other => Err(unexpected("release", &other)),
        }
    }

    /// Reads the inboxes index, then (one pipeline) each inbox's length and
    /// lease. Calls with items and no lease are orphans; entries of empty,
    /// unleased inboxes are removed if their score is still the one read (an
    /// append meanwhile re-scores and keeps its entry).
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
        }
        let mut conn = inner.connection.clone();
        let states: Vec<u64> = inner.request(op, "LLEN", pipe.query_async(&mut conn)).await?;
        let mut orphans = Vec::new();
        let mut stale = Vec::new();
        for ((id, score), state) in entries.iter().zip(states.chunks(2)) {
            match state {
                [0, 0] => stale.extend([id.clone(), score.clone(), String::new()]),
                [waiting, 0] if *waiting > 0 && orphans.len() < limit => orphans.push(CallId::from(id.as_str())),
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
