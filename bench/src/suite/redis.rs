//! The Redis figures: the suite's private `redis-server` (the test kit's
//! [`RedisServer`]), the demo with calls shared through it, and what they cost Redis.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use graph_comms_testkit::RedisServer;

use super::context::Ctx;
use super::format::{ratio, verdict};

/// Starts the private Redis of the Redis figures (loopback, no persistence) and
/// gives its URL to `ctx`; without `redis-server` the report notes that it has none.
pub(super) fn start(ctx: &mut Ctx) -> Option<RedisServer> {
    match RedisServer::try_start().context("starting redis-server") {
        Ok(redis) => {
            ctx.redis_url = Some(redis.url());
            Some(redis)
        }
        Err(e) => {
            ctx.notes
                .push(format!("no Redis figures: {e:#} (install redis-server)"));
            None
        }
    }
}

/// Transfers per second with 1 and with 3 `serve` processes sharing the
/// private Redis behind a round-robin proxy (`demo --instances N --calls M`).
pub(super) fn shared_demo(report: &mut String, ctx: &Ctx, bot: &Path, calls: usize) {
    let Some(url) = &ctx.redis_url else {
        let _ = writeln!(report, "With Redis: not measured (no redis-server).\n");
        return;
    };
    let mut rates = Vec::new();
    let mut memory = None;
    for instances in [1usize, 3] {
        let before = crate::redis_memory::used_memory(url);
        let output = Command::new(bot)
            .args(["demo", "--instances", &instances.to_string(), "--redis", url])
            .args(["--calls", &calls.to_string(), "--concurrency", "32", "--seed", "7"])
            .output();
        let text = match output {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => {
                let _ = writeln!(report, "With Redis, {instances} instance(s): could not run: {e}\n");
                return;
            }
        };
        let rate = text
            .lines()
            .find_map(|l| l.split(" = ").nth(1)?.strip_suffix(" transfers/s")?.parse::<f64>().ok());
        let ok = text.lines().find(|l| l.starts_with("calls:")).unwrap_or("").to_owned();
        rates.push((instances, rate, ok));
        if memory.is_none() {
            memory = Some(before.and_then(|before| redis_cost(url, before)));
        }
    }
    let _ = writeln!(
        report,
        "With Redis: `transfer-bot demo --instances N --redis <private redis> --calls {calls} --concurrency 32 --seed 7`: \
         N `serve` processes sharing calls behind a loopback round-robin proxy, the emulator and the proxy in the demo \
         process, everything on the same cores.\n"
    );
    let _ = writeln!(
        report,
        "| instances | transfers/s | vs 1 instance | calls |\n|---|---|---|---|"
    );
    let base = rates.first().and_then(|(_, r, _)| *r);
    for (instances, rate, ok) in &rates {
        let shown = rate.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}"));
        let vs = match (rate, base) {
            (Some(r), Some(b)) => ratio(*r, b),
            _ => "-".to_owned(),
        };
        let _ = writeln!(report, "| {instances} | {shown} | {vs} | {ok} |");
    }
    let _ = writeln!(report);
    match memory {
        Some(Ok(cost)) => cost.write(report, calls),
        Some(Err(e)) => {
            let _ = writeln!(report, "Redis memory per call: not measured: {e:#}\n");
        }
        None => {}
    }
}

/// What the first shared demo run left in Redis.
struct RedisCost {
    used_delta: i64,
    records: Vec<u64>,
}

fn redis_cost(url: &str, before: u64) -> anyhow::Result<RedisCost> {
    let after = crate::redis_memory::used_memory(url)?;
    let mut records = Vec::new();
    for prefix in crate::redis_memory::demo_prefixes(url)? {
        records.extend(crate::redis_memory::record_sizes(url, &prefix)?);
    }
    Ok(RedisCost {
        used_delta: i64::try_from(after).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX),
        records,
    })
}

impl RedisCost {
    fn write(&self, report: &mut String, calls: usize) {
        const GOAL: f64 = 2048.0;
        let kept = self.records.len();
        let average = self.records.iter().sum::<u64>() as f64 / kept.max(1) as f64;
        let max = self.records.iter().max().copied().unwrap_or(0);
        let per_call = self.used_delta as f64 / calls.max(1) as f64;
        let _ = writeln!(
            report,
            "Redis memory per tracked call, after the 1-instance run ({calls} demo calls, ended, their records kept \
             for their retention): `used_memory` grew by {} B = {per_call:.0} B per call; `MEMORY USAGE` of the \
             {kept} call records: average {average:.0} B, max {max} B.\n",
            self.used_delta
        );
        let _ = writeln!(
            report,
            "Target < 2 KiB per tracked call (`used_memory` per call): {per_call:.0} B = {} of the goal, {}\n",
            ratio(per_call, GOAL),
            verdict(per_call < GOAL)
        );
    }
}
