//! [`RedisCallStore`]: the [`CallStore`] on Redis.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use graph_comms_core::model::CallId;
use graph_comms_core::{CallRecord, CallStore, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::{Client, ErrorKind, RedisError, ServerErrorKind, Value};

use crate::config::{ConnectError, RedisStoreConfig};
use crate::connection::RedisConnection;
use crate::keys::Keys;
use crate::metrics::{Counters, OpCounter, StoreMetrics};
use crate::scripts::{Lua, Scripts};
use crate::write::RecordWrite;

/// Passes over the due index one `due` call makes at most (each pass reads a page).
const MAX_DUE_PASSES: usize = 4;

/// A [`CallStore`] on Redis 6.2+ or Valkey, shared by every bot instance that
/// uses the same Redis and prefix.
///
/// Cloning is cheap: clones share the connection and the counters.
#[derive(Clone)]
pub struct RedisCallStore {
    pub(crate) inner: Arc<Inner>,
}

/// A client ready to connect.
enum Prepared {
    Standalone(Client, ConnectionManagerConfig),
    Cluster(redis::cluster::ClusterClient, ClusterConfig),
}

pub(crate) struct Inner {
    pub(crate) connection: RedisConnection,
    pub(crate) keys: Keys,
    pub(crate) scripts: Scripts,
    pub(crate) ended_retention: Duration,
    deadline: Duration,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for RedisCallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCallStore")
            .field("keys", &self.inner.keys)
            .field("ended_retention", &self.inner.ended_retention)
            .finish_non_exhaustive()
    }
}

impl RedisCallStore {
    /// Connects to Redis and returns the store once the connection is up.
    ///
    /// # Errors
    ///
    /// [`ConnectError::InvalidConfig`] for a bad URL or prefix;
    /// [`ConnectError::Unavailable`] when Redis cannot be reached in time.
    pub async fn connect(config: RedisStoreConfig) -> Result<Self, ConnectError> {
        let connecting = async {
            match Self::prepare(&config)? {
                Prepared::Standalone(client, manager_config) => {
                    ConnectionManager::new_with_config(client, manager_config)
                        .await
                        .map(RedisConnection::Standalone)
                }
                Prepared::Cluster(client, cluster_config) => client
                    .get_async_connection_with_config(cluster_config)
                    .await
                    .map(RedisConnection::Cluster),
            }
            .map_err(|error| ConnectError::Unavailable(format!("cannot connect to {}: {error}", redacted(&config.url))))
        };
        let connection = match tokio::time::timeout(config.operation_deadline(), connecting).await {
            Ok(connection) => connection?,
            Err(_) => {
                return Err(ConnectError::Unavailable(format!(
                    "cannot connect to {}: no connection within {:?}",
                    redacted(&config.url),
                    config.operation_deadline()
                )));
            }
        };
        Ok(Self::with_connection(connection, &config))
    }

    /// The store without connecting yet: the first operation connects, and
    /// fails with [`StoreError::Unavailable`] if Redis cannot be reached.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ConnectError::InvalidConfig`] for a bad URL or prefix.
    pub fn connect_lazy(config: RedisStoreConfig) -> Result<Self, ConnectError> {
        let connection = match Self::prepare(&config)? {
            Prepared::Standalone(client, manager_config) => {
                ConnectionManager::new_lazy_with_config(client, manager_config)
                    .map(RedisConnection::Standalone)
                    .map_err(|e| ConnectError::InvalidConfig(e.to_string()))?
            }
            Prepared::Cluster(client, cluster_config) => {
                RedisConnection::Cluster(client.get_pending_async_connection_with_config(cluster_config))
            }
        };
        Ok(Self::with_connection(connection, &config))
    }

    fn prepare(config: &RedisStoreConfig) -> Result<Prepared, ConnectError> {
        config.validate()?;
        let bad_url =
            |e: redis::RedisError| ConnectError::InvalidConfig(format!("bad Redis URL {}: {e}", redacted(&config.url)));
        let certificates = config.tls.as_ref().map(|tls| redis::TlsCertificates {
            client_tls: tls
                .client_identity
                .as_ref()
                .map(|(certificate, key)| redis::ClientTlsConfig {
                    client_cert: certificate.clone(),
                    client_key: key.clone(),
                }),
            root_cert: tls.ca_pem.clone(),
        });
        let bad_tls = |e: redis::RedisError| {
            ConnectError::InvalidConfig(format!(
                "TLS settings for {} unusable (a CA or client certificate that is not PEM?): {e}",
                redacted(&config.url)
            ))
        };
        if config.cluster {
            let mut builder = ClusterClientBuilder::new(config.urls().map(str::to_owned))
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.response_timeout)
                // The store bounds each operation itself (`operation_deadline`).
                .overall_response_timeout(Some(config.operation_deadline()))
                .retries(u32::try_from(config.reconnect_retries).unwrap_or(u32::MAX))
                .min_retry_wait(50)
                .max_retry_wait(500);
            if let Some(certificates) = certificates {
                builder = builder.certs(certificates);
            }
            let client = builder.build().map_err(|e| match config.tls {
                Some(_) => bad_tls(e),
                None => bad_url(e),
            })?;
            let cluster_config = ClusterConfig::new()
                .set_connection_timeout(config.connect_timeout)
                .set_response_timeout(config.response_timeout);
            return Ok(Prepared::Cluster(client, cluster_config));
        }
        let client = match certificates {
            None => Client::open(config.url.as_str()).map_err(bad_url)?,
            Some(certificates) => Client::build_with_tls(config.url.as_str(), certificates).map_err(bad_tls)?,
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(config.reconnect_retries)
            .set_max_delay(Duration::from_millis(500));
        Ok(Prepared::Standalone(client, manager_config))
    }

    fn with_connection(connection: RedisConnection, config: &RedisStoreConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                connection,
                keys: Keys::new(&config.prefix),
                scripts: Scripts::new(),
                ended_retention: config.ended_retention,
                deadline: config.operation_deadline(),
                counters: Counters::default(),
            }),
        }
    }

    /// The counters so far: operations, round trips, conflicts, index repairs.
    pub fn metrics(&self) -> StoreMetrics {
        self.inner.counters.snapshot()
    }

    /// Registers this store's counters into `registry`
    /// (`graph_comms_redis_operations_total{op}`,
    /// `graph_comms_redis_round_trips_total{op}`, conflicts, fenced writes,
    /// index repairs and errors, script loads). Values are read from memory
    /// at each scrape, with no round trip to Redis.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register_collector(Box::new(crate::metrics::StoreCollector { store: self.clone() }));
    }

    /// The Redis key of a call's record, `<prefix>:{<canonical call id>}`.
    pub fn record_key(&self, call_id: &CallId) -> String {
        self.inner.keys.record(call_id)
    }

    /// The key of the due index (a sorted set of calls by earliest deadline).
    pub fn due_index_key(&self) -> &str {
        &self.inner.keys.due
    }

    /// The key of the calls index (a sorted set of calls by expiry time).
    pub fn calls_index_key(&self) -> &str {
        &self.inner.keys.calls
    }

    /// A connection sharing the store's, for inspection in tests and tools
    /// (`cmd.query_async(&mut store.connection())`).
    pub fn connection(&self) -> RedisConnection {
        self.inner.connection.clone()
    }
}

/// One command's reply in a pipeline sent with `ignore_errors`.
pub(crate) type Reply = Result<Value, RedisError>;

impl Inner {
    /// Sends a pipeline: one request on one Redis, on a cluster one per slot
    /// its commands touch (sent concurrently), each counted as a round trip.
    pub(crate) async fn pipeline<T: redis::FromRedisValue>(
        &self,
        op: &OpCounter,
        what: &str,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        op.round_trips(self.connection.round_trips(pipe).saturating_sub(1));
        let mut conn = self.connection.clone();
        self.request(op, what, pipe.query_async(&mut conn)).await
    }

    /// Sends `first`, then `then`, each command's reply kept (errors too).
    ///
    /// On one Redis both go in one pipeline, which runs in order. On a
    /// cluster their keys live on different nodes and nothing would order
    /// them, so `then` is sent once `first` is answered; if `first` cannot be
    /// sent, `then` is not, and if `then` fails, the second result says so.
    pub(crate) async fn in_order(
        &self,
        op: &OpCounter,
        what: &str,
        mut first: redis::Pipeline,
        mut then: redis::Pipeline,
    ) -> Result<(Vec<Reply>, Result<Vec<Reply>, StoreError>), StoreError> {
        first.ignore_errors();
        then.ignore_errors();
        if !self.connection.is_cluster() {
            let split = first.len();
            for cmd in then.cmd_iter() {
                first.add_command(cmd.clone());
            }
            let mut replies: Vec<Reply> = self.pipeline(op, what, &first).await?;
            if replies.len() != first.len() {
                return Err(StoreError::Unavailable(format!(
                    "redis {what}: {} replies to {} commands",
                    replies.len(),
                    first.len()
                )));
            }
            let rest = replies.split_off(split);
            return Ok((replies, Ok(rest)));
        }
        let replies: Vec<Reply> = if first.is_empty() {
            Vec::new()
        } else {
            self.pipeline(op, what, &first).await?
        };
        let rest = if then.is_empty() {
            Ok(Vec::new())
        } else {
            self.pipeline(op, what, &then).await
        };
        Ok((replies, rest))
    }

    /// On a cluster, refuses a script whose keys span slots (only a call id
    /// that is empty or starts with `}` once canonical has no hash tag).
    pub(crate) fn one_slot<K: AsRef<[u8]> + std::fmt::Debug>(&self, what: &str, keys: &[K]) -> Result<(), StoreError> {
        if self.connection.is_cluster() && !crate::scripts::one_slot(keys) {
            return Err(StoreError::Unavailable(format!(
                "redis {what}: keys {keys:?} span Redis Cluster slots (a call id without a usable hash tag)"
            )));
        }
        Ok(())
    }

    /// Sends one request (a command or a pipeline) and counts the round trip.
    pub(crate) async fn request<T, F>(&self, op: &OpCounter, what: &str, send: F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, RedisError>>,
    {
        op.round_trip();
        match tokio::time::timeout(self.deadline, send).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(store_error(what, &error)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "redis {what}: no answer within {:?}",
                self.deadline
            ))),
        }
    }

    /// Runs a script by its SHA1, sending it in full when Redis has not cached it.
    pub(crate) async fn eval(
        &self,
        op: &OpCounter,
        what: &str,
        lua: &Lua,
        keys: &[&str],
        args: &[String],
    ) -> Result<Value, StoreError> {
        self.one_slot(what, keys)?;
        let mut evalsha = redis::cmd("EVALSHA");
        evalsha.arg(&lua.sha).arg(keys.len()).arg(keys).arg(args);
        let mut conn = self.connection.clone();
        let first: Result<Value, RedisError> = self
            .request(op, what, async {
                // The script's own error stays inside: NOSCRIPT is looked at below.
                Ok(evalsha.query_async::<Value>(&mut conn).await)
            })
            .await?;
        match first {
            Ok(value) => Ok(value),
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                Counters::add(&self.counters.script_loads, 1);
                self.eval_full(op, what, lua, keys, args).await
            }
            Err(error) => Err(store_error(what, &error)),
        }
    }

    pub(crate) async fn eval_full(
        &self,
        op: &OpCounter,
        what: &str,
        lua: &Lua,
        keys: &[&str],
        args: &[String],
    ) -> Result<Value, StoreError> {
        let mut eval = redis::cmd("EVAL");
        eval.arg(&lua.code).arg(keys.len()).arg(keys).arg(args);
        let mut conn = self.connection.clone();
        self.request(op, what, eval.query_async::<Value>(&mut conn)).await
    }
}

#[async_trait]
impl CallStore for RedisCallStore {
    async fn load(&self, call_id: &CallId) -> Result<Option<Arc<CallRecord>>, StoreError> {
        let inner = &*self.inner;
        inner.counters.load.call();
        let key = inner.keys.record(call_id);
        let mut conn = inner.connection.clone();
        let mut get = redis::cmd("GET");
        get.arg(&key);
        let bytes: Option<Vec<u8>> = inner
            .request(&inner.counters.load, "GET", get.query_async(&mut conn))
            .await?;
        bytes
            .map(|bytes| CallRecord::from_json(&bytes).map(Arc::new))
            .transpose()
    }

    async fn save(&self, record: Arc<CallRecord>) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.save;
        op.call();
        let member = Keys::member(record.call_id());
        let key = inner.keys.record_for_member(&member);
        let write = RecordWrite::new(&record, inner.ended_retention)?;
        let mut args = vec![record.version.to_string()];
        args.extend(write.args());
        let reply = inner
            .write_with_indexes(op, "save", &inner.scripts.save, &[&key], &args, &member, &write)
            .await?;
        match cas_reply(&reply)? {
            (1, _) => Ok(()),
            (_, stored) => {
                Counters::add(&inner.counters.conflicts, 1);
                Err(StoreError::Conflict {
                    call_id: record.call_id().clone(),
                    written: record.version,
                    stored,
                })
            }
        }
    }

    async fn delete(&self, call_id: &CallId, version: u64) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.delete;
        op.call();
        let member = Keys::member(call_id);
        let key = inner.keys.record_for_member(&member);
        let reply = inner
            .eval(op, "delete", &inner.scripts.delete, &[&key], &[version.to_string()])
            .await?;
        match cas_reply(&reply)? {
            (1, 0) => Ok(()),
            (1, _) => {
                // Only the count index: a due entry left behind is removed by
                // `due` (the record is gone), whereas removing it here could
                // remove the entry of a call created again meanwhile.
                let mut zrem = redis::cmd("ZREM");
                zrem.arg(&inner.keys.calls).arg(&member);
                let mut conn = inner.connection.clone();
                if let Err(error) = inner.request(op, "ZREM", zrem.query_async::<Value>(&mut conn)).await {
                    Counters::add(&inner.counters.index_errors, 1);
                    tracing::warn!(call_id = %call_id, "redis call store: index cleanup failed: {error}");
                }
                Ok(())
            }
            (_, stored) => {
                Counters::add(&inner.counters.conflicts, 1);
                Err(StoreError::Conflict {
                    call_id: call_id.clone(),
                    written: version,
                    stored,
                })
            }
        }
    }

    async fn due(&self, now: SystemTime, limit: usize) -> Result<Vec<CallId>, StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.due;
        op.call();
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now_ms = millis(now);
        let mut found: Vec<CallId> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut offset = 0usize;
        for _pass in 0..MAX_DUE_PASSES {
            let want = limit - found.len();
            let mut range = redis::cmd("ZRANGEBYSCORE");
            range
                .arg(&inner.keys.due)
                .arg("-inf")
                .arg(now_ms)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(offset)
                .arg(want);
            let mut conn = inner.connection.clone();
            let candidates: Vec<(String, String)> =
                inner.request(op, "ZRANGEBYSCORE", range.query_async(&mut conn)).await?;
            if candidates.is_empty() {
                break;
            }
            let mut gets = redis::pipe();
            for (member, _) in &candidates {
                gets.cmd("GET").arg(inner.keys.record_for_member(member));
            }
            let records: Vec<Option<Vec<u8>>> = inner.pipeline(op, "GET", &gets).await?;

            let mut fixes: Vec<(String, String, Option<u64>)> = Vec::new();
            let mut loaded: HashMap<String, Option<Vec<u8>>> = HashMap::new();
            for ((member, score), bytes) in candidates.iter().zip(records) {
                let Some(bytes) = bytes else {
                    fixes.push((member.clone(), score.clone(), None));
                    loaded.insert(member.clone(), None);
                    continue;
                };
                match CallRecord::from_json(&bytes) {
                    Ok(record) => match record.lifecycle.deadlines.next_due().map(millis) {
                        Some(at) if at <= now_ms => {
                            offset += 1;
                            if seen.insert(member.clone()) {
                                found.push(record.call_id().clone());
                            }
                        }
                        later => {
                            fixes.push((member.clone(), score.clone(), later));
                            loaded.insert(member.clone(), Some(bytes));
                        }
                    },
                    Err(error) => {
                        // Left in the index: `load` reports it to the runtime.
                        offset += 1;
                        tracing::warn!(member = %member, "redis call store: unreadable record in the due index: {error}");
                    }
                }
            }
            if !fixes.is_empty() {
                self.fix_due_entries(&fixes, &loaded).await?;
            }
            if candidates.len() < want || found.len() >= limit {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.count;
        op.call();
        let now_ms = millis(SystemTime::now());
        let mut pipe = redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&inner.keys.calls)
            .arg("-inf")
            .arg(format!("({now_ms}"))
            .ignore()
            .cmd("ZCARD")
            .arg(&inner.keys.calls);
        let (count,): (usize,) = inner.pipeline(op, "count", &pipe).await?;
        Ok(count)
    }
}

impl RedisCallStore {
    /// Moves stale due-index entries: removed when the record is gone or has
    /// no deadline, re-scored when its deadline is later. Each change applies
    /// only if the entry still has the score read (a concurrent writer's
    /// update wins). Then the changed calls are read again: one written
    /// meanwhile gets its entry back (`ZADD LT`), closing the window in which
    /// a writer updated the index before this fix and committed after it.
    async fn fix_due_entries(
        &self,
        fixes: &[(String, String, Option<u64>)],
        loaded: &HashMap<String, Option<Vec<u8>>>,
    ) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let op = &inner.counters.due;
        let args: Vec<String> = fixes
            .iter()
            .flat_map(|(member, score, to)| {
                [
                    member.clone(),
                    score.clone(),
                    to.map_or_else(String::new, |t| t.to_string()),
                ]
            })
            .collect();
        let reply = inner
            .eval(op, "due index fix", &inner.scripts.fix_due, &[&inner.keys.due], &args)
            .await?;
        let changed: Vec<String> = redis::from_redis_value(reply)
            .map_err(|e| StoreError::Unavailable(format!("redis due index fix: unexpected reply: {e}")))?;
        if changed.is_empty() {
            return Ok(());
        }
        Counters::add(&inner.counters.index_repairs, changed.len() as u64);

        let mut gets = redis::pipe();
        for member in &changed {
            gets.cmd("GET").arg(inner.keys.record_for_member(member));
        }
        let again: Vec<Option<Vec<u8>>> = inner.pipeline(op, "GET", &gets).await?;
        let mut restore = redis::pipe();
        let mut restores = 0;
        for (member, bytes) in changed.iter().zip(again) {
            if loaded.get(member).is_some_and(|before| *before == bytes) {
                continue;
            }
            let next_due = bytes
                .and_then(|b| CallRecord::from_json(&b).ok())
                .and_then(|r| r.lifecycle.deadlines.next_due());
            if let Some(next_due) = next_due {
                restore
                    .cmd("ZADD")
                    .arg(&inner.keys.due)
                    .arg("LT")
                    .arg(millis(next_due))
                    .arg(member)
                    .ignore();
                restores += 1;
            }
        }
        if restores > 0 {
            inner.pipeline::<()>(op, "ZADD", &restore).await?;
        }
        Ok(())
    }
}

/// Reads a script's `{status, stored}` answer (status 1: done).
pub(crate) fn cas_reply(reply: &Value) -> Result<(i64, u64), StoreError> {
    if let Value::Array(items) = reply
        && let [Value::Int(done), Value::Int(stored)] = items.as_slice()
    {
        return Ok((*done, u64::try_from(*stored).unwrap_or(0)));
    }
    Err(StoreError::Unavailable(format!(
        "redis: unexpected script reply {reply:?}"
    )))
}

/// Maps a Redis error: our scripts' `CORRUPT` replies to [`StoreError::Corrupt`],
/// everything else (I/O, timeouts, server errors) to [`StoreError::Unavailable`].
pub(crate) fn store_error(what: &str, error: &RedisError) -> StoreError {
    if error.code() == Some("CORRUPT") {
        return StoreError::Corrupt(format!("redis {what}: {error}"));
    }
    StoreError::Unavailable(format!("redis {what}: {error}"))
}

/// Unix milliseconds (0 before the epoch).
pub(crate) fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}
