//! The key layout.

use graph_comms_core::model::CallId;

/// The names of the store's keys under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    /// The sorted set of calls by their earliest deadline (millis).
    pub(crate) due: String,
    /// The sorted set of stored calls by when they expire (millis; `+inf` for live calls).
    pub(crate) calls: String,
    /// The sorted set of calls that had inbox items appended, by when (millis).
    pub(crate) inboxes: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            due: format!("{{{prefix}}}:due"),
            calls: format!("{{{prefix}}}:calls"),
            inboxes: format!("{{{prefix}}}:inboxes"),
        }
    }

    /// The member naming a call in the indexes: its canonical id (ids that
    /// differ only in case or dashes are one call, as `CallId` equality says).
    pub(crate) fn member(call_id: &CallId) -> String {
        call_id.canonical()
    }

    /// The record's key, `<prefix>:{<canonical id>}`: the hash tag keeps every
    /// key of one call in one Redis Cluster slot.
    pub(crate) fn record(&self, call_id: &CallId) -> String {
        self.record_for_member(&Self::member(call_id))
    }

    pub(crate) fn record_for_member(&self, member: &str) -> String {
        format!("{}:{{{member}}}", self.prefix)
    }

    /// The call's inbox (a list of `InboxItem` JSON), in the record's slot.
    pub(crate) fn inbox(&self, member: &str) -> String {
        format!("{}:{{{member}}}:inbox", self.prefix)
    }

    /// The call's lease (the holder's token, expiring), in the record's slot.
    pub(crate) fn lease(&self, member: &str) -> String {
        format!("{}:{{{member}}}:lease", self.prefix)
    }

    /// Present while the call's record awaits a holder: hook steps in its
    /// outbox, or a `POST /transfer` not known to be sent (written with the
    /// record under the lease), so the orphan sweep finds the call.
    pub(crate) fn outbox(&self, member: &str) -> String {
        format!("{}:{{{member}}}:outbox", self.prefix)
    }

    /// The keys the claim scripts take (`claim`, `append_claim`): lease, record, inbox.
    pub(crate) fn claim_keys(&self, member: &str) -> [String; 3] {
        [self.lease(member), self.record_for_member(member), self.inbox(member)]
    }

    /// The keys a leased write takes (`commit`, `release`): lease, record, inbox, outbox.
    pub(crate) fn leased_keys(&self, member: &str) -> [String; 4] {
        [
            self.lease(member),
            self.record_for_member(member),
            self.inbox(member),
            self.outbox(member),
        ]
    }
}
