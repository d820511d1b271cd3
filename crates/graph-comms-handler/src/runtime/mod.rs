//! The runtime: per-call ordered queues, the store as the truth, timers from
//! the records' deadlines, and the glue from the call machine's steps to hooks.
//!
//! - [`queue`]: admission, the dispatcher and the per-call workers;
//! - [`state`]: the record cache and compare-and-set commits to the store;
//! - [`process`]: one event through the call machine, then its steps;
//! - [`invoke`]: running hooks under a timeout, with panics caught;
//! - [`timers`]: in-process wake-ups and the store sweep for due calls;
//! - [`transfer`]: starting a transfer and the in-process outcome handles;
//! - [`consult`]: placing a consultation call and linking it to its call;
//! - [`held`]: the leases this instance holds and what their next write carries;
//! - [`listen`]: hook code awaiting its call's next notifications (operations, tones);
//! - [`lease`]: with a shared store, the journal before 202 and the
//!   claim–process–release cycle under a call's lease;
//! - [`outage`]: notifications taken while the shared store is unreachable,
//!   appended once it answers again.

mod consult;
mod held;
mod invoke;
mod lease;
mod listen;
mod outage;
mod outage_file;
mod process;
mod queue;
mod stall;
mod state;
mod timers;
mod transfer;

pub(crate) use listen::Listener;
pub(crate) use outage::OutageJournal;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use graph_comms_client::GraphClient;
use graph_comms_model::TenantId;
use tokio::sync::{mpsc, watch};

use crate::hooks::CallHandler;
use crate::metrics::Counters;
use crate::report::ErrorHandler;
use crate::timings::Timings;
use graph_comms_core::attempt::{AttemptId, TransferOutcome};
use graph_comms_core::lifecycle::MachineTimings;
use graph_comms_core::store::CallStore;
use graph_comms_core::sync::lock;

/// Shared by the bot, its workers, timers and every [`CallContext`](crate::CallContext).
pub(crate) struct Runtime {
    pub(crate) client: GraphClient,
    pub(crate) handler: Arc<dyn CallHandler>,
    pub(crate) store: Arc<dyn CallStore>,
    pub(crate) errors: Arc<dyn ErrorHandler>,
    pub(crate) timings: Timings,
    pub(crate) machine_timings: MachineTimings,
    pub(crate) callback_uri: Option<String>,
    pub(crate) allow_concurrent_transfers: bool,
    pub(crate) max_queued_per_call: usize,
    pub(crate) counters: Counters,
    workers: Mutex<HashMap<graph_comms_model::CallId, queue::Slot>>,
    cache: state::Cache,
    waiters: Mutex<HashMap<AttemptId, watch::Sender<Option<TransferOutcome>>>>,
    timers: mpsc::UnboundedSender<timers::Wake>,
    shutting_down: AtomicBool,
    in_flight: AtomicUsize,
    sharing: Option<lease::Sharing>,
    held: held::Held,
    listeners: listen::Listeners,
    store_reachable: AtomicBool,
    /// With a shared store: notices pauses of this process (see [`stall`]).
    stall: Option<Arc<stall::StallWatch>>,
    /// With a shared store: notifications taken while it fails (see [`outage`]).
    outage: Option<Arc<outage::OutageJournal>>,
}

/// What [`Runtime::start`] needs.
pub(crate) struct RuntimeParts {
    pub(crate) client: GraphClient,
    pub(crate) handler: Arc<dyn CallHandler>,
    pub(crate) store: Arc<dyn CallStore>,
    pub(crate) errors: Arc<dyn ErrorHandler>,
    pub(crate) timings: Timings,
    pub(crate) callback_uri: Option<String>,
    pub(crate) allow_concurrent_transfers: bool,
    pub(crate) max_queued_per_call: usize,
    /// A shared store and this instance's id, to share calls with other instances.
    pub(crate) sharing: Option<(Arc<dyn graph_comms_core::shared_store::SharedCallStore>, String)>,
    /// With a shared store: the journal for its outages, if any.
    pub(crate) outage: Option<OutageJournal>,
}

impl Runtime {
    /// The client that acts on a call of `tenant`: tokens of the call's
    /// tenant, so a multi-tenant app never acts with another tenant's token.
    pub(crate) fn client_for(&self, tenant: &TenantId) -> GraphClient {
        if tenant.as_str().trim().is_empty() {
            self.client.clone()
        } else {
            self.client.for_tenant(tenant)
        }
    }

    /// Builds the runtime and spawns its timer and sweep tasks (needs a tokio runtime).
    pub(crate) fn start(parts: RuntimeParts) -> Arc<Self> {
        let (timers, timer_rx) = mpsc::unbounded_channel();
        let stall = parts
            .sharing
            .is_some()
            .then(|| stall::StallWatch::start(parts.timings.lease_ttl / 2));
        let outage = parts.outage.filter(|_| parts.sharing.is_some()).map(Arc::new);
        let runtime = Arc::new(Self {
            client: parts.client,
            handler: parts.handler,
            store: parts.store,
            errors: parts.errors,
            machine_timings: parts.timings.machine(),
            timings: parts.timings,
            callback_uri: parts.callback_uri,
            allow_concurrent_transfers: parts.allow_concurrent_transfers,
            max_queued_per_call: parts.max_queued_per_call,
            counters: Counters::default(),
            workers: Mutex::new(HashMap::new()),
            cache: state::Cache::default(),
            waiters: Mutex::new(HashMap::new()),
            timers,
            shutting_down: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            sharing: parts
                .sharing
                .map(|(store, instance_id)| lease::Sharing { store, instance_id }),
            held: held::Held::default(),
            listeners: listen::Listeners::default(),
            stall,
            outage: outage.clone(),
            store_reachable: AtomicBool::new(true),
        });
        tokio::spawn(timers::timer_loop(Arc::downgrade(&runtime), timer_rx));
        tokio::spawn(timers::sweep_loop(Arc::downgrade(&runtime)));
        if let Some(journal) = outage {
            tokio::spawn(outage::replay_loop(Arc::downgrade(&runtime), journal));
        }
        runtime
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// From now on timers and sweeps stop and transfers are refused; the
    /// store keeps every call for the bot that resumes them.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Events queued or being handled.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn cached_calls(&self) -> usize {
        self.cache.len()
    }

    /// Notifications in the outage journal, waiting for the shared store.
    pub(crate) fn journaled(&self) -> usize {
        self.outage.as_ref().map_or(0, |journal| journal.len())
    }

    /// Whether new notifications can be taken while the shared store fails.
    pub(crate) fn journal_has_room(&self) -> bool {
        self.outage.as_ref().is_some_and(|journal| journal.has_room())
    }

    pub(crate) fn active_workers(&self) -> usize {
        lock(&self.workers).len()
    }
}
