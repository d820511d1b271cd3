//! One connection type over a single Redis and a Redis Cluster, so the store
//! sends commands and pipelines the same way to either.

use std::collections::HashMap;

use futures::FutureExt as _;
use futures::future::try_join_all;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Arg, Cmd, Pipeline, RedisFuture, Value};

/// The store's connection: to one Redis (reconnecting), or to a Redis
/// Cluster (following its slot map). Cloning is cheap and shares it.
///
/// It implements [`ConnectionLike`], so `cmd.query_async(&mut connection)`
/// works on both. On a cluster a command goes to the node owning its key's
/// slot; a pipeline is split by slot, the parts sent concurrently and the
/// replies put back in the pipeline's order (redis-rs refuses a pipeline
/// whose keys span slots). Keyless commands go to a random node.
#[derive(Clone)]
pub enum RedisConnection {
    /// One Redis server (or a proxy that hides a cluster, such as Azure's
    /// Enterprise cluster policy).
    Standalone(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Standalone(_) => "RedisConnection::Standalone",
            Self::Cluster(_) => "RedisConnection::Cluster",
        })
    }
}

impl RedisConnection {
    /// Whether this is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// How many requests `pipeline` is sent as: one, or on a cluster one per
    /// slot its commands touch (keyless commands count as one more).
    pub(crate) fn round_trips(&self, pipeline: &Pipeline) -> usize {
        match self {
            Self::Standalone(_) => 1,
            Self::Cluster(_) if pipeline.is_transaction() => 1,
            Self::Cluster(_) => slot_groups(pipeline).len().max(1),
        }
    }
}

/// The hash slot of a command's first key; `None` for keyless commands
/// (and scripts given no keys).
pub(crate) fn command_slot(cmd: &Cmd) -> Option<Slot> {
    let mut args = cmd.args_iter().filter_map(|arg| match arg {
        Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let name = args.next()?.to_ascii_uppercase();
    let key = match name.as_slice() {
        // EVAL/EVALSHA script numkeys key...
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let _script = args.next()?;
            let numkeys: usize = std::str::from_utf8(args.next()?).ok()?.parse().ok()?;
            if numkeys == 0 {
                return None;
            }
            args.next()?
        }
        b"PING" | b"INFO" | b"SCRIPT" | b"CLUSTER" | b"CONFIG" | b"DBSIZE" | b"TIME" => return None,
        _ => args.next()?,
    };
    Some(Slot::for_key(key))
}

/// The pipeline's command indexes per slot, slots in order of first use.
fn slot_groups(pipeline: &Pipeline) -> Vec<(Option<Slot>, Vec<usize>)> {
    let mut groups: Vec<(Option<Slot>, Vec<usize>)> = Vec::new();
    let mut by_slot: HashMap<Option<Slot>, usize> = HashMap::new();
    for (index, cmd) in pipeline.cmd_iter().enumerate() {
        let slot = command_slot(cmd);
        match by_slot.get(&slot) {
            Some(&group) => groups[group].1.push(index),
            None => {
                by_slot.insert(slot, groups.len());
                groups.push((slot, vec![index]));
            }
        }
    }
    groups
}

/// Sends a non-atomic pipeline to a cluster one slot at a time (all slots
/// concurrently) and returns the replies in the pipeline's order. Each part
/// is one slot's, so redis-rs can retry it whole after `MOVED`, `ASK` or
/// `TRYAGAIN` (none of its commands ran) at the node it is sent to.
async fn cluster_pipeline(connection: &ClusterConnection, pipeline: &Pipeline) -> redis::RedisResult<Vec<Value>> {
    let groups = slot_groups(pipeline);
    let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let parts = groups.iter().map(|(_, indexes)| {
        let mut part = redis::pipe();
        for &index in indexes {
            part.add_command(commands[index].clone());
        }
        let mut connection = connection.clone();
        async move { connection.req_packed_commands(&part, 0, part.len()).await }
    });
    let replies = try_join_all(parts).await?;
    let mut ordered: Vec<Option<Value>> = vec![None; commands.len()];
    for ((_, indexes), values) in groups.iter().zip(replies) {
        if values.len() != indexes.len() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "cluster pipeline: a node answered with the wrong number of replies",
            )));
        }
        for (&index, value) in indexes.iter().zip(values) {
            ordered[index] = Some(value);
        }
    }
    Ok(ordered.into_iter().map(|value| value.unwrap_or(Value::Nil)).collect())
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(connection) => connection.req_packed_commands(pipeline, offset, count),
            // MULTI/EXEC must stay whole (and in one slot): redis-rs checks that.
            Self::Cluster(connection) => {
                if pipeline.is_transaction() {
                    connection.req_packed_commands(pipeline, offset, count)
                } else {
                    cluster_pipeline(connection, pipeline).boxed()
                }
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_are_grouped_by_the_slot_of_each_command() {
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD").arg("{p}:due").arg(1).arg("a");
        pipe.cmd("EVALSHA")
            .arg("sha")
            .arg(2)
            .arg("p:{a}:lease")
            .arg("p:{a}")
            .arg("x");
        pipe.cmd("ZADD").arg("{p}:calls").arg(1).arg("a");
        pipe.cmd("GET").arg("p:{b}");
        pipe.cmd("PING");
        let groups: Vec<Vec<usize>> = slot_groups(&pipe).into_iter().map(|(_, i)| i).collect();
        assert_eq!(groups, vec![vec![0, 2], vec![1], vec![3], vec![4]]);
        assert_eq!(command_slot(redis::cmd("EVALSHA").arg("sha").arg(0)), None);
        assert_eq!(
            command_slot(redis::cmd("evalsha").arg("sha").arg(1).arg("p:{a}:inbox")),
            Some(Slot::for_key("a"))
        );
    }
}
