//! [`InMemoryCallStore`]: the default [`CallStore`], a map in this process,
//! which is also a [`SharedCallStore`] for bots sharing calls in one process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use graph_comms_model::CallId;

use crate::error::StoreError;
use crate::record::CallRecord;
use crate::shared_store::SharedCallStore;
use crate::store::CallStore;
use crate::sync::lock;

/// The default [`CallStore`]: a map in this process.
///
/// It shares records with the runtime (`Arc`), so a write copies no record.
/// Several bots in one process may share one (`Arc<InMemoryCallStore>`).
///
/// It is also a [`SharedCallStore`], so several bots
/// in one process can share calls with leases the way instances share Redis.
#[derive(Debug, Default)]
pub struct InMemoryCallStore {
    records: Mutex<HashMap<CallId, Arc<CallRecord>>>,
    inboxes: Mutex<HashMap<CallId, Inbox>>,
}

/// A call's inbox and lease in [`InMemoryCallStore`].
#[derive(Debug, Default)]
struct Inbox {
    items: std::collections::VecDeque<crate::InboxItem>,
    lease: Option<(String, std::time::Instant)>,
}

impl Inbox {
    fn held_by(&self, token: &str) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|(held, until)| held == token && *until > std::time::Instant::now())
    }

    fn is_free(&self) -> bool {
        self.lease
            .as_ref()
            .is_none_or(|(_, until)| *until <= std::time::Instant::now())
    }
}

impl InMemoryCallStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CallStore for InMemoryCallStore {
    async fn load(&self, call_id: &CallId) -> Result<Option<Arc<CallRecord>>, StoreError> {
        Ok(lock(&self.records).get(call_id).cloned())
    }

    async fn save(&self, record: Arc<CallRecord>) -> Result<(), StoreError> {
        let mut map = lock(&self.records);
        let stored = map.get(record.call_id()).map_or(0, |r| r.version);
        if record.version != stored + 1 {
            return Err(StoreError::Conflict {
                call_id: record.call_id().clone(),
                written: record.version,
                stored,
            });
        }
        // Replacing in place keeps the id's allocation: one write per event is the hot path.
        match map.get_mut(record.call_id()) {
            Some(slot) => *slot = record,
            None => {
                map.insert(record.call_id().clone(), record);
            }
        }
        Ok(())
    }

    async fn delete(&self, call_id: &CallId, version: u64) -> Result<(), StoreError> {
        let mut map = lock(&self.records);
        match map.get(call_id).map(|r| r.version) {
            Some(stored) if stored != version => Err(StoreError::Conflict {
                call_id: call_id.clone(),
                written: version,
                stored,
            }),
            _ => {
                map.remove(call_id);
                Ok(())
            }
        }
    }

    async fn due(&self, now: SystemTime, limit: usize) -> Result<Vec<CallId>, StoreError> {
        let mut map = lock(&self.records);
        // The scan that finds due calls also drops ended calls past their retention.
        map.retain(|_, r| r.lifecycle.deadlines.forget.is_none_or(|at| at > now));
        Ok(map
            .iter()
            .filter(|(_, r)| r.lifecycle.deadlines.next_due().is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .take(limit)
            .collect())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(lock(&self.records).len())
    }
}

impl InMemoryCallStore {
    /// Checks the lease and applies `change` under the inbox lock.
    fn under_lease<T>(
        &self,
        lease: &crate::Lease,
        change: impl FnOnce(&mut Inbox) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut inboxes = lock(&self.inboxes);
        match inboxes.get_mut(&lease.call_id) {
            Some(inbox) if inbox.held_by(&lease.token) => change(inbox),
            _ => Err(StoreError::LeaseLost {
                call_id: lease.call_id.clone(),
            }),
        }
    }
}

/// The compare-and-set write, on the locked map.
fn save_locked(map: &mut HashMap<CallId, Arc<CallRecord>>, record: Arc<CallRecord>) -> Result<(), StoreError> {
    let stored = map.get(record.call_id()).map_or(0, |r| r.version);
    if record.version != stored + 1 {
        return Err(StoreError::Conflict {
            call_id: record.call_id().clone(),
            written: record.version,
            stored,
        });
    }
    map.insert(record.call_id().clone(), record);
    Ok(())
}

fn drop_head(inbox: &mut Inbox, consumed: usize) {
    let consumed = consumed.min(inbox.items.len());
    inbox.items.drain(..consumed);
}

#[async_trait]
impl SharedCallStore for InMemoryCallStore {
    async fn append(&self, items: &[(CallId, crate::InboxItem)]) -> Result<(), StoreError> {
        let mut inboxes = lock(&self.inboxes);
        for (call_id, item) in items {
            inboxes
                .entry(call_id.clone())
                .or_default()
                .items
                .push_back(item.clone());
        }
        Ok(())
    }

    async fn append_and_claim(
        &self,
        items: &[(CallId, crate::InboxItem)],
        owner: &str,
        ttl: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<crate::Claim>, StoreError> {
        SharedCallStore::append(self, items).await?;
        let mut calls: Vec<&CallId> = items.iter().map(|(id, _)| id).collect();
        calls.dedup();
        let mut claims = Vec::new();
        for call_id in calls {
            if let Some(claim) = SharedCallStore::claim(self, call_id, owner, ttl, limit).await? {
                claims.push(claim);
            }
        }
        Ok(claims)
    }

    async fn claim(
        &self,
        call_id: &CallId,
        owner: &str,
        ttl: std::time::Duration,
        limit: usize,
    ) -> Result<Option<crate::Claim>, StoreError> {
        let mut inboxes = lock(&self.inboxes);
        let inbox = inboxes.entry(call_id.clone()).or_default();
        if !inbox.is_free() {
            return Ok(None);
        }
        let lease = crate::Lease::new(call_id.clone(), owner);
        inbox.lease = Some((lease.token.clone(), std::time::Instant::now() + ttl));
        let items = inbox.items.iter().take(limit).cloned().collect();
        let record = lock(&self.records).get(call_id).cloned();
        Ok(Some(crate::Claim::new(lease, record, items)))
    }

    async fn renew(&self, lease: &crate::Lease, ttl: std::time::Duration) -> Result<(), StoreError> {
        self.under_lease(lease, |inbox| {
            inbox.lease = Some((lease.token.clone(), std::time::Instant::now() + ttl));
            Ok(())
        })
    }

    async fn commit(
        &self,
        lease: &crate::Lease,
        record: Option<Arc<CallRecord>>,
        consumed: usize,
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        self.under_lease(lease, |inbox| {
            if let Some(record) = record {
                // Under the inbox lock, so no holder change can slip between check and write.
                save_locked(&mut lock(&self.records), record)?;
            }
            drop_head(inbox, consumed);
            inbox.lease = Some((lease.token.clone(), std::time::Instant::now() + ttl));
            Ok(())
        })
    }

    async fn release(
        &self,
        lease: &crate::Lease,
        consumed: usize,
        record: Option<Arc<CallRecord>>,
        ttl: std::time::Duration,
        limit: usize,
    ) -> Result<crate::Released, StoreError> {
        let mut inboxes = lock(&self.inboxes);
        let Some(inbox) = inboxes
            .get_mut(&lease.call_id)
            .filter(|inbox| inbox.held_by(&lease.token))
        else {
            return Err(StoreError::LeaseLost {
                call_id: lease.call_id.clone(),
            });
        };
        let mut records = lock(&self.records);
        if let Some(record) = record {
            save_locked(&mut records, record)?;
        }
        drop_head(inbox, consumed);
        if !inbox.items.is_empty() {
            inbox.lease = Some((lease.token.clone(), std::time::Instant::now() + ttl));
            let items = inbox.items.iter().take(limit).cloned().collect();
            let record = records.get(&lease.call_id).cloned();
            return Ok(crate::Released::Kept(crate::Claim::new(lease.clone(), record, items)));
        }
        inboxes.remove(&lease.call_id);
        Ok(crate::Released::Free)
    }

    async fn peek(&self, call_id: &CallId, from: usize, limit: usize) -> Result<Vec<crate::InboxItem>, StoreError> {
        let inboxes = lock(&self.inboxes);
        Ok(inboxes
            .get(call_id)
            .map(|inbox| inbox.items.iter().skip(from).take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn orphans(&self, limit: usize) -> Result<Vec<CallId>, StoreError> {
        let inboxes = lock(&self.inboxes);
        let waiting = inboxes
            .iter()
            .filter(|(_, inbox)| !inbox.items.is_empty() && inbox.is_free())
            .map(|(id, _)| id.clone());
        // Work committed by a holder that stopped before finishing it.
        let records = lock(&self.records);
        let stranded = records
            .iter()
            .filter(|(id, record)| {
                record.awaits_holder()
                    && inboxes
                        .get(*id)
                        .is_none_or(|inbox| inbox.is_free() && inbox.items.is_empty())
            })
            .map(|(id, _)| id.clone());
        Ok(waiting.chain(stranded).take(limit).collect())
    }
}
