//! Noticing that this process was paused (a `SIGSTOP`, a VM freeze, a long GC
//! of the host): requests that waited in its sockets across the pause may
//! already have been delivered elsewhere, and handled late they would be
//! taken for news. For a moment after such a pause the journal refuses them
//! (503), so Graph delivers them again, in order with what followed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the watch thread ticks.
const TICK: Duration = Duration::from_millis(50);

/// The watch thread's clock, shared with the journal.
#[derive(Debug)]
pub(super) struct StallWatch {
    origin: Instant,
    /// Millis since `origin` of the last tick.
    last_tick: AtomicU64,
    /// Millis since `origin` when the last pause was noticed.
    resumed: AtomicU64,
    /// A gap between ticks longer than this is a pause.
    pause: Duration,
    /// How long after a pause requests are refused.
    grace: Duration,
}

impl StallWatch {
    /// Starts the watch thread; a gap of `pause` between its ticks counts.
    pub(super) fn start(pause: Duration) -> Arc<Self> {
        let watch = Arc::new(Self {
            origin: Instant::now(),
            last_tick: AtomicU64::new(0),
            resumed: AtomicU64::new(u64::MAX),
            // Scheduling hiccups of a loaded machine are not pauses.
            pause: pause.max(Duration::from_secs(1)),
            // Requests held across the pause are read right after it.
            grace: Duration::from_millis(250),
        });
        let weak = Arc::downgrade(&watch);
        // A thread of its own: a busy or stopped async runtime must not look like a pause.
        let spawned = std::thread::Builder::new().name("stall-watch".into()).spawn(move || {
            while let Some(watch) = weak.upgrade() {
                watch.check();
                drop(watch);
                std::thread::sleep(TICK);
            }
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the pause watch; paused instances are not noticed");
        }
        watch
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Notes a pause if the last tick is older than the pause length; the time now.
    fn check(&self) -> u64 {
        let now = self.millis();
        let last = self.last_tick.swap(now, Ordering::SeqCst);
        if now.saturating_sub(last) > millis(self.pause) {
            self.resumed.store(now, Ordering::SeqCst);
            tracing::warn!(
                paused_ms = now.saturating_sub(last),
                "this process was paused; refusing notifications for a moment"
            );
        }
        now
    }

    /// Whether this process was paused a moment ago.
    pub(super) fn just_resumed(&self) -> bool {
        let now = self.millis();
        // Whoever runs first after a pause notices it: the watch thread or a request.
        let last = self.last_tick.load(Ordering::SeqCst);
        if now.saturating_sub(last) > millis(self.pause) {
            self.check();
        }
        let resumed = self.resumed.load(Ordering::SeqCst);
        resumed != u64::MAX && now.saturating_sub(resumed) < millis(self.grace)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
