//! Timeouts and intervals.

use std::time::Duration;

use graph_comms_core::lifecycle::MachineTimings;

/// Timeouts and intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// An attempt with no outcome after this is looked up in Graph (default
    /// 60 s): a call back to `established` fails it with `TimedOut`; a call
    /// still `transferring` (the target rings) keeps it pending and is asked
    /// again every `transfer_timeout`, up to [`Timings::ring_limit`].
    pub transfer_timeout: Duration,
    /// How long a transfer may ring, Graph saying `transferring`, before the
    /// attempt fails with `RangOut` (default 180 s: above Azure's documented
    /// 115 s for PSTN call set-up and 60 s for a transfer, and far above the
    /// 20 to 30 s a Teams user rings before voicemail, so only a ring that
    /// never ends reaches it).
    pub ring_limit: Duration,
    /// After an ambiguous `POST /transfer`, how long to wait for any notification
    /// before failing with `OutcomeUnknownNoNotification` (default 10 s).
    pub unknown_outcome_timeout: Duration,
    /// Between `keepAlive` requests for an established call (default 15 min;
    /// Graph ends calls idle for 45 min).
    pub keep_alive_interval: Duration,
    /// Retry delay after a failed `keepAlive` other than 404 (default 1 min).
    pub keep_alive_retry: Duration,
    /// Graph's window for deciding on an incoming call; exceeding it is logged
    /// (default 15 s).
    pub incoming_decision_deadline: Duration,
    /// How long shutdown waits for queued events and running hooks (default 30 s).
    pub shutdown_deadline: Duration,
    /// A call's worker task exits after its queue has been empty this long (default 5 s).
    pub worker_idle_timeout: Duration,
    /// Every hook is dropped (and reported) if it runs longer than this (default 30 s).
    pub hook_timeout: Duration,
    /// A call with no event (notification, keep-alive, timer) this long, give
    /// or take an eighth, and without keep-alive or a pending transfer is
    /// forgotten: unknown or forged call ids do not pile up (default 1 h).
    pub idle_timeout: Duration,
    /// How long an ended call's record stays in the store, so late duplicates
    /// are recognised as such (default 10 min).
    pub ended_retention: Duration,
    /// How often the store is asked for calls with due deadlines, which resumes
    /// the timers of calls this process does not hold in memory (default 5 s).
    pub sweep_interval: Duration,
    /// After a transfer timeout, how long the lookup of the call may take
    /// before another try (default 30 s).
    pub lookup_grace: Duration,
    /// With a shared store: how long a call's lease lasts without renewal.
    /// An instance renews it while it works; a call whose holder stopped is
    /// taken over this long after its last renewal (default 10 s).
    pub lease_ttl: Duration,
    /// How long an awaited operation (a prompt, a recording, ...) may take
    /// before its handle gives up with `OperationError::TimedOut` (default 5 min).
    pub operation_timeout: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        let machine = MachineTimings::default();
        Self {
            transfer_timeout: machine.transfer_timeout,
            ring_limit: machine.ring_limit,
            unknown_outcome_timeout: machine.unknown_outcome_timeout,
            keep_alive_interval: machine.keep_alive_interval,
            keep_alive_retry: machine.keep_alive_retry,
            incoming_decision_deadline: Duration::from_secs(15),
            shutdown_deadline: Duration::from_secs(30),
            worker_idle_timeout: Duration::from_secs(5),
            hook_timeout: Duration::from_secs(30),
            idle_timeout: machine.idle_timeout,
            ended_retention: machine.ended_retention,
            sweep_interval: Duration::from_secs(5),
            lookup_grace: machine.lookup_grace,
            lease_ttl: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(5 * 60),
        }
    }
}

impl Timings {
    /// Sets [`Timings::transfer_timeout`].
    pub fn transfer_timeout(mut self, d: Duration) -> Self {
        self.transfer_timeout = d;
        self
    }

    /// Sets [`Timings::ring_limit`].
    pub fn ring_limit(mut self, d: Duration) -> Self {
        self.ring_limit = d;
        self
    }

    /// Sets [`Timings::unknown_outcome_timeout`].
    pub fn unknown_outcome_timeout(mut self, d: Duration) -> Self {
        self.unknown_outcome_timeout = d;
        self
    }

    /// Sets [`Timings::keep_alive_interval`].
    pub fn keep_alive_interval(mut self, d: Duration) -> Self {
        self.keep_alive_interval = d;
        self
    }

    /// Sets [`Timings::keep_alive_retry`].
    pub fn keep_alive_retry(mut self, d: Duration) -> Self {
        self.keep_alive_retry = d;
        self
    }

    /// Sets [`Timings::incoming_decision_deadline`].
    pub fn incoming_decision_deadline(mut self, d: Duration) -> Self {
        self.incoming_decision_deadline = d;
        self
    }

    /// Sets [`Timings::shutdown_deadline`].
    pub fn shutdown_deadline(mut self, d: Duration) -> Self {
        self.shutdown_deadline = d;
        self
    }

    /// Sets [`Timings::worker_idle_timeout`].
    pub fn worker_idle_timeout(mut self, d: Duration) -> Self {
        self.worker_idle_timeout = d;
        self
    }

    /// Sets [`Timings::hook_timeout`].
    pub fn hook_timeout(mut self, d: Duration) -> Self {
        self.hook_timeout = d;
        self
    }

    /// Sets [`Timings::idle_timeout`].
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Sets [`Timings::ended_retention`].
    pub fn ended_retention(mut self, d: Duration) -> Self {
        self.ended_retention = d;
        self
    }

    /// Sets [`Timings::sweep_interval`].
    pub fn sweep_interval(mut self, d: Duration) -> Self {
        self.sweep_interval = d;
        self
    }

    /// Sets [`Timings::lookup_grace`].
    pub fn lookup_grace(mut self, d: Duration) -> Self {
        self.lookup_grace = d;
        self
    }

    /// Sets [`Timings::lease_ttl`].
    pub fn lease_ttl(mut self, d: Duration) -> Self {
        self.lease_ttl = d;
        self
    }

    /// Sets [`Timings::operation_timeout`].
    pub fn operation_timeout(mut self, d: Duration) -> Self {
        self.operation_timeout = d;
        self
    }

    /// The intervals the call machine sets deadlines with.
    pub fn machine(&self) -> MachineTimings {
        MachineTimings {
            transfer_timeout: self.transfer_timeout,
            ring_limit: self.ring_limit,
            unknown_outcome_timeout: self.unknown_outcome_timeout,
            keep_alive_interval: self.keep_alive_interval,
            keep_alive_retry: self.keep_alive_retry,
            idle_timeout: self.idle_timeout,
            ended_retention: self.ended_retention,
            lookup_grace: self.lookup_grace,
        }
    }
}
