//! `bench memory`: resident memory with N established calls tracked by a `Bot`
//! (its live records, the `InMemoryCallStore` copy and keep-alive timers), against
//! the floor of a bare `HashMap<CallId, ()>` holding the same ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use graph_comms_client::GraphClient;
use graph_comms_emulator::NotificationSigner;
use graph_comms_handler::{
    AttemptRecord, Bot, CallContext, CallHandler, CallRecord, CallSnapshot, CallStore, HookError, InMemoryCallStore,
    IncomingDecision, Timings,
};
use graph_comms_model::{Call, CallId, ParticipantInfo, TransferRequest};
use graph_comms_notify::{NotifyConfig, NotifyEndpoint};
use graph_comms_testkit::fixtures;
use tower::ServiceExt as _;

use crate::token::{self, StaticKeys};

const INCOMING: &str = "call-answer.ex1.notify.incoming.json";
const ESTABLISHED: &str = "call-answer.ex1.notify.established.json";
/// The call id in both fixtures, replaced to make many calls.
const FIXTURE_CALL_ID: &str = "57DAB8B1894C409AB240BD8BEAE78896";
const ISSUER: &str = "https://api.botframework.com";

/// What holds the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Holder {
    /// A `Bot` with the default `InMemoryCallStore`.
    Bot,
    /// `HashMap<CallId, ()>`.
    Floor,
    /// A `Bot` sent signed notifications about N unknown (forged) call ids,
    /// measured after it has forgotten them (idle time 1 s).
    Forged,
}

/// Arguments of `bench memory`.
#[derive(Debug, clap::Args)]
pub(crate) struct MemoryArgs {
    /// What holds the calls.
    #[arg(long, value_enum)]
    pub(crate) holder: Holder,
    /// Established calls.
    #[arg(long)]
    pub(crate) calls: usize,
}

/// Ignores incoming calls (no Graph request), does nothing else.
struct Quiet;

#[async_trait::async_trait]
impl CallHandler for Quiet {
    async fn on_incoming_call(&self, _ctx: &CallContext, _call: &Call) -> Result<IncomingDecision, HookError> {
        Ok(IncomingDecision::Ignore)
    }
}

fn call_id(i: usize) -> String {
    format!(
        "{:08x}-0000-4000-8000-{i:012x}",
        i.wrapping_mul(2_654_435_761) & 0xffff_ffff
    )
}

/// `VmRSS` and `VmHWM` of this process, in bytes.
pub(crate) fn rss() -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name}"))?;
        let kb: u64 = line.split_whitespace().nth(1).context("malformed")?.parse()?;
        Ok(kb * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Fills the holder, waits until the bot is idle, and prints one JSON line.
pub(crate) fn run(args: MemoryArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let started = Instant::now();
    let tracked = match args.holder {
        Holder::Floor => {
            let mut map: HashMap<CallId, ()> = HashMap::new();
            for i in 0..args.calls {
                map.insert(CallId::from(call_id(i)), ());
            }
            let (rss, hwm) = rss()?;
            print_result(&args, rss, hwm, map.len(), started);
            std::hint::black_box(&map);
            return Ok(());
        }
        Holder::Bot => runtime.block_on(fill_bot(args.calls, false))?,
        Holder::Forged => runtime.block_on(fill_bot(args.calls, true))?,
    };
    let (rss, hwm) = rss()?;
    print_result(&args, rss, hwm, tracked, started);
    Ok(())
}

fn print_result(args: &MemoryArgs, rss: u64, hwm: u64, tracked: usize, started: Instant) {
    let result = serde_json::json!({
        "holder": format!("{:?}", args.holder).to_lowercase(),
        "calls": args.calls, "tracked": tracked, "vm_rss": rss, "vm_hwm": hwm,
        "seconds": started.elapsed().as_secs_f64(),
        "size_of": {
            "CallRecord": std::mem::size_of::<CallRecord>(),
            "CallSnapshot": std::mem::size_of::<CallSnapshot>(),
            "Call": std::mem::size_of::<Call>(),
            "AttemptRecord": std::mem::size_of::<AttemptRecord>(),
            "TransferRequest": std::mem::size_of::<TransferRequest>(),
            "ParticipantInfo": std::mem::size_of::<ParticipantInfo>(),
        },
    });
    println!("{result}");
}

/// Sends every call's notifications; `forged` sends one `incoming` per id and
/// waits until the bot has forgotten them all (returns how many it still holds).
async fn fill_bot(calls: usize, forged: bool) -> anyhow::Result<usize> {
    let key = NotificationSigner::new()?;
    let (app_id, tenant) = ("bench-app", "bench-tenant");
    let token = format!(
        "Bearer {}",
        key.sign(ISSUER, app_id, tenant, Duration::from_secs(3600))?
    );
    let mut config = NotifyConfig::new(app_id);
    config.queue_capacity = 4096;
    let keys = StaticKeys {
        keys: token::jwks(&key)?,
        also: None,
    };
    let (endpoint, events) = NotifyEndpoint::with_key_source(config, Arc::new(keys))?;
    endpoint.refresh_keys().await?;
    // Never contacted: incoming calls are ignored and keep-alive is hours away.
    let client = GraphClient::builder()
        .credentials(tenant.into(), app_id.into(), "unused")
        .graph_base_url("http://127.0.0.1:9/v1.0")
        .login_base_url("http://127.0.0.1:9")
        .build()?;
    let store = Arc::new(InMemoryCallStore::new());
    let timings = Timings::default().worker_idle_timeout(Duration::from_millis(200));
    let bot = Bot::builder()
        .client(client)
        .notify_endpoint(endpoint, events)
        .handler(Arc::new(Quiet))
        .store(Arc::clone(&store) as Arc<dyn CallStore>)
        .timings(if forged {
            timings
                .idle_timeout(Duration::from_secs(1))
                .sweep_interval(Duration::from_millis(200))
        } else {
            timings
        })
        .build()?;
    let names: &[&str] = if forged { &[INCOMING] } else { &[INCOMING, ESTABLISHED] };
    let bodies: Vec<String> = names.iter().map(|name| fixtures::read(name)).collect();
    let router = bot.router();
    // Forged ids come in three rounds of new ids: RSS that stays flat after the
    // first round is memory reused, not kept.
    let rounds = if forged { 3 } else { 1 };
    for round in 0..rounds {
        for i in round * calls..(round + 1) * calls {
            let id = call_id(i);
            for body in &bodies {
                let body = body.replace(FIXTURE_CALL_ID, &id);
                loop {
                    let request = Request::post("/api/calls")
                        .header("content-type", "application/json")
                        .header("authorization", &token)
                        .body(Body::from(body.clone()))?;
                    let status = router.clone().oneshot(request).await?.status();
                    match status {
                        StatusCode::ACCEPTED => break,
                        // The queue is full: let the workers catch up.
                        StatusCode::SERVICE_UNAVAILABLE => tokio::time::sleep(Duration::from_millis(2)).await,
                        other => bail!("notification refused: HTTP {other}"),
                    }
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let m = bot.metrics();
            let stored = store.count().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let settled = m.workers_active == 0 && m.events_in_flight == 0;
            let done = if forged {
                m.calls_evicted == ((round + 1) * calls) as u64 && stored == 0 && m.calls_active == 0
            } else {
                m.calls_active == calls && stored == calls
            };
            if settled && done {
                break;
            }
            if Instant::now() > deadline {
                bail!("the bot did not settle: {m:?}, {stored} stored");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if forged {
            let (rss, hwm) = rss()?;
            eprintln!(
                "after forged round {}: {} ids forgotten, VmRSS {rss} B, VmHWM {hwm} B",
                round + 1,
                (round + 1) * calls
            );
        }
    }
    let tracked = bot.metrics().calls_active;
    // Keep everything alive while the caller reads the RSS.
    std::mem::forget(bot);
    std::mem::forget(store);
    Ok(tracked)
}
