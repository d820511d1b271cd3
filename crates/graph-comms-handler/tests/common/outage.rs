//! The in-memory shared store with an injected outage: its operations fail
//! as [`StoreError::Unavailable`] for a while, as a Redis that stopped does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use graph_comms_handler::model::CallId;
use graph_comms_handler::{
    CallRecord, CallStore, Claim, InMemoryCallStore, InboxItem, Lease, Released, SharedCallStore, StoreError,
};

/// What fails during the outage.
enum Scope {
    /// Writes of records that the function picks; the outage starts at the first one.
    Writes(fn(&CallRecord) -> bool),
    /// Every operation, from [`Outage::begin`] on.
    Everything,
}

/// The in-memory shared store, unavailable for a while.
pub struct Outage {
    pub inner: InMemoryCallStore,
    outage: Duration,
    scope: Scope,
    until: Mutex<Option<Instant>>,
    /// `orphans` finds nothing, as a Redis Cluster whose index write failed.
    blind_orphans: bool,
}

impl Outage {
    /// Writes of records that `starts` picks are refused for `outage` after
    /// the first one (an outage that starts while an instance writes that change).
    pub fn on_writes(outage: Duration, starts: fn(&CallRecord) -> bool) -> Self {
        Self {
            inner: InMemoryCallStore::new(),
            outage,
            scope: Scope::Writes(starts),
            until: Mutex::new(None),
            blind_orphans: false,
        }
    }

    /// Every operation fails for `outage` once [`Outage::begin`] is called.
    pub fn whole(outage: Duration) -> Self {
        Self {
            inner: InMemoryCallStore::new(),
            outage,
            scope: Scope::Everything,
            until: Mutex::new(None),
            blind_orphans: false,
        }
    }

    /// The orphan sweep finds no call, as when the index it reads lost an entry.
    pub fn without_orphan_index(mut self) -> Self {
        self.blind_orphans = true;
        self
    }

    /// Starts the outage now.
    pub fn begin(&self) {
        *self.until.lock().unwrap() = Some(Instant::now() + self.outage);
    }

    /// Whether the outage has started.
    pub fn began(&self) -> bool {
        self.until.lock().unwrap().is_some()
    }

    /// Whether the outage is on now.
    pub fn is_down(&self) -> bool {
        self.until.lock().unwrap().is_some_and(|end| Instant::now() < end)
    }

    fn check_write(&self, record: Option<&Arc<CallRecord>>) -> Result<(), StoreError> {
        if let Scope::Writes(starts) = self.scope {
            if !record.is_some_and(|r| starts(r)) {
                return Ok(());
            }
            self.until
                .lock()
                .unwrap()
                .get_or_insert_with(|| Instant::now() + self.outage);
        }
        self.check()
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.is_down() {
            return Err(StoreError::Unavailable("injected outage".into()));
        }
        Ok(())
    }

    /// Operations other than record writes fail only in a whole outage.
    fn check_other(&self) -> Result<(), StoreError> {
        match self.scope {
            Scope::Writes(_) => Ok(()),
            Scope::Everything => self.check(),
        }
    }
}

#[async_trait::async_trait]
impl CallStore for Outage {
    async fn load(&self, call_id: &CallId) -> Result<Option<Arc<CallRecord>>, StoreError> {
        self.check_other()?;
        self.inner.load(call_id).await
    }
    async fn save(&self, record: Arc<CallRecord>) -> Result<(), StoreError> {
        self.check_write(Some(&record))?;
        self.inner.save(record).await
    }
    async fn delete(&self, call_id: &CallId, version: u64) -> Result<(), StoreError> {
        self.check_other()?;
        self.inner.delete(call_id, version).await
    }
    async fn due(&self, now: SystemTime, limit: usize) -> Result<Vec<CallId>, StoreError> {
        self.check_other()?;
        self.inner.due(now, limit).await
    }
    async fn count(&self) -> Result<usize, StoreError> {
        self.check_other()?;
        self.inner.count().await
    }
}

#[async_trait::async_trait]
impl SharedCallStore for Outage {
    async fn append(&self, items: &[(CallId, InboxItem)]) -> Result<(), StoreError> {
        self.check_other()?;
        self.inner.append(items).await
    }
    async fn append_and_claim(
        &self,
        items: &[(CallId, InboxItem)],
        owner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        self.check_other()?;
        self.inner.append_and_claim(items, owner, ttl, limit).await
    }
    async fn claim(
        &self,
        call_id: &CallId,
        owner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Option<Claim>, StoreError> {
        self.check_other()?;
        self.inner.claim(call_id, owner, ttl, limit).await
    }
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        self.check_other()?;
        self.inner.renew(lease, ttl).await
    }
    async fn commit(
        &self,
        lease: &Lease,
        record: Option<Arc<CallRecord>>,
        consumed: usize,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.check_write(record.as_ref())?;
        self.inner.commit(lease, record, consumed, ttl).await
    }
    async fn release(
        &self,
        lease: &Lease,
        consumed: usize,
        record: Option<Arc<CallRecord>>,
        ttl: Duration,
        limit: usize,
    ) -> Result<Released, StoreError> {
        self.check_other()?;
        self.inner.release(lease, consumed, record, ttl, limit).await
    }
    async fn peek(&self, call_id: &CallId, from: usize, limit: usize) -> Result<Vec<InboxItem>, StoreError> {
        self.check_other()?;
        self.inner.peek(call_id, from, limit).await
    }
    async fn orphans(&self, limit: usize) -> Result<Vec<CallId>, StoreError> {
        self.check_other()?;
        if self.blind_orphans {
            return Ok(Vec::new());
        }
        self.inner.orphans(limit).await
    }
}
