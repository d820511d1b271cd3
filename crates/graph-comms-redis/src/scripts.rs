//! The Lua scripts. Each touches keys of one slot only.

use redis::Script;

/// Reads the stored version of the record in `cur` (the JSON `CallRecord::to_json` wrote).
/// Fast path: serde writes `schema` then `version` first; else the JSON is decoded.
const STORED_VERSION: &str = r#"
local function stored_version(cur)
  if not cur then return 0 end
  local v = string.match(cur, '^{"schema":%d+,"version":(%d+)[,}]')
  if v then return tonumber(v) end
  local ok, rec = pcall(cjson.decode, cur)
  if ok and type(rec) == 'table' and type(rec.version) == 'number' then return rec.version end
  return nil
end
"#;

/// Compare-and-set write of one record.
///
/// `KEYS[1]` the record; `ARGV[1]` the new version; `ARGV[2]` the record's
/// JSON; `ARGV[3]` when it expires (Unix millis) or `""` to keep it.
/// Answers `{1, stored}` when written, `{0, stored}` on a version conflict.
const SAVE_BODY: &str = r#"
local cur = redis.call('GET', KEYS[1])
local stored = stored_version(cur)
if stored == nil then return redis.error_reply('CORRUPT the stored call record has no version') end
local version = tonumber(ARGV[1])
if version == nil or version ~= stored + 1 then return {0, stored} end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  local at = tonumber(ARGV[3])
  if at == nil then return redis.error_reply('ERR bad expiry') end
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', at)
end
return {1, stored}
"#;

/// Compare-and-set delete of one record.
///
/// `KEYS[1]` the record; `ARGV[1]` the version the caller holds.
/// Answers `{1, stored}` when deleted (or absent: stored 0), `{0, stored}` on a conflict.
const DELETE_BODY: &str = r#"
local cur = redis.call('GET', KEYS[1])
if not cur then return {1, 0} end
local stored = stored_version(cur)
if stored == nil then return redis.error_reply('CORRUPT the stored call record has no version') end
if tonumber(ARGV[1]) ~= stored then return {0, stored} end
redis.call('DEL', KEYS[1])
return {1, stored}
"#;

/// Fixes due-index entries, each only if its score is still the one observed
/// (a writer that moved it meanwhile wins).
///
/// `KEYS[1]` the due index; `ARGV` triples: member, observed score, new score
/// or `""` to remove. Answers the members changed.
pub(crate) const FIX_DUE: &str = r#"
local changed = {}
for i = 1, #ARGV, 3 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    if ARGV[i + 2] == '' then
      redis.call('ZREM', KEYS[1], ARGV[i])
    else
      redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    end
    changed[#changed + 1] = ARGV[i]
  end
end
return changed
"#;

/// Takes a call's lease unless anyone holds it, and reads the call under it.
///
/// `KEYS` lease, record, inbox; `ARGV` token, lease millis, how many items.
/// Answers `{0}` when the lease is held, else `{1, record or false, items}`.
const CLAIM: &str = r#"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
local record = redis.call('GET', KEYS[2])
local items = redis.call('LRANGE', KEYS[3], 0, tonumber(ARGV[3]) - 1)
return {1, record, items}
"#;

/// Appends items to a call's inbox, then claims the call as [`CLAIM`] does.
///
/// `KEYS` lease, record, inbox; `ARGV` token, lease millis, how many items to
/// read, then the items. Answers as [`CLAIM`].
const APPEND_CLAIM: &str = r#"
redis.call('RPUSH', KEYS[3], unpack(ARGV, 4))
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
local record = redis.call('GET', KEYS[2])
local items = redis.call('LRANGE', KEYS[3], 0, tonumber(ARGV[3]) - 1)
return {1, record, items}
"#;

/// The write every script under a lease starts with: the token check, the
/// record's compare-and-set write with the outbox marker (if a version is
/// given) and the handled items dropped.
///
/// `KEYS` lease, record, inbox, outbox marker; `ARGV` token, items handled,
/// new version or `""`, JSON, expiry (Unix millis) or `""`, whether the
/// record awaits a holder (`1`/`0`), then the script's own arguments.
/// Answers `nil` when done, `{-1, 0}` when the token does not hold the lease,
/// `{0, stored}` on a version conflict.
const LEASED_WRITE: &str = r#"
local function leased_write()
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1, 0} end
  if ARGV[3] ~= '' then
    local stored = stored_version(redis.call('GET', KEYS[2]))
    if stored == nil then return redis.error_reply('CORRUPT the stored call record has no version') end
    if tonumber(ARGV[3]) ~= stored + 1 then return {0, stored} end
    if ARGV[5] == '' then
      redis.call('SET', KEYS[2], ARGV[4])
    else
      redis.call('SET', KEYS[2], ARGV[4], 'PXAT', ARGV[5])
    end
    -- The marker lives no longer than the record.
    if ARGV[6] ~= '1' then
      redis.call('DEL', KEYS[4])
    elseif ARGV[5] == '' then
      redis.call('SET', KEYS[4], '1')
    else
      redis.call('SET', KEYS[4], '1', 'PXAT', ARGV[5])
    end
  end
  local handled = tonumber(ARGV[2])
  if handled > 0 then redis.call('LTRIM', KEYS[3], handled, -1) end
  return nil
end
"#;

/// [`LEASED_WRITE`], then the lease extended. Own arguments: lease millis.
/// Answers as [`LEASED_WRITE`], `{1, 0}` when done.
const COMMIT_BODY: &str = r#"
local failed = leased_write()
if failed then return failed end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {1, 0}
"#;

/// [`LEASED_WRITE`], then the lease given up, or kept and the waiting items
/// read when there are some. Own arguments: lease millis, how many items to
/// read. Answers as [`LEASED_WRITE`], `{1}` when released, `{2, record,
/// items}` when kept.
const RELEASE_BODY: &str = r#"
local failed = leased_write()
if failed then return failed end
if redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[1])
  return {1}
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
local record = redis.call('GET', KEYS[2])
local items = redis.call('LRANGE', KEYS[3], 0, tonumber(ARGV[8]) - 1)
return {2, record, items}
"#;

/// Extends the lease if the token holds it. `KEYS` lease; `ARGV` token, millis.
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// The scripts with their SHA1s, built once per store.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) save: Lua,
    pub(crate) delete: Lua,
    pub(crate) fix_due: Lua,
    pub(crate) claim: Lua,
    pub(crate) append_claim: Lua,
    pub(crate) commit: Lua,
    pub(crate) release: Lua,
    pub(crate) renew: Lua,
}

/// A script's code and SHA1 (for `EVALSHA`).
#[derive(Debug)]
pub(crate) struct Lua {
    pub(crate) code: String,
    pub(crate) sha: String,
}

impl Lua {
    fn new(code: String) -> Self {
        let sha = Script::new(&code).get_hash().to_owned();
        Self { code, sha }
    }
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            save: Lua::new(format!("{STORED_VERSION}{SAVE_BODY}")),
            delete: Lua::new(format!("{STORED_VERSION}{DELETE_BODY}")),
            fix_due: Lua::new(FIX_DUE.to_owned()),
            claim: Lua::new(CLAIM.to_owned()),
            append_claim: Lua::new(APPEND_CLAIM.to_owned()),
            commit: Lua::new(format!("{STORED_VERSION}{LEASED_WRITE}{COMMIT_BODY}")),
            release: Lua::new(format!("{STORED_VERSION}{LEASED_WRITE}{RELEASE_BODY}")),
            renew: Lua::new(RENEW.to_owned()),
        }
    }
}

/// Whether all `keys` hash to one Redis Cluster slot, as a script's keys must
/// (a cluster refuses a script whose keys span slots with `CROSSSLOT`).
pub(crate) fn one_slot<K: AsRef<[u8]>>(keys: &[K]) -> bool {
    let mut slots = keys
        .iter()
        .map(|key| redis::cluster_routing::Slot::for_key(key.as_ref()));
    match slots.next() {
        Some(first) => slots.all(|slot| slot == first),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keys;

    /// The highest `KEYS[n]` a script reads.
    fn highest_key(code: &str) -> usize {
        code.match_indices("KEYS[")
            .filter_map(|(at, _)| {
                let digits: String = code[at + 5..].chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .max()
            .unwrap_or(0)
    }

    /// Each script with the keys its call sites pass (the same `Keys`
    /// functions `store.rs` and `shared.rs` call): every script reads exactly
    /// those keys, and they hash to one slot, for ordinary and odd call ids.
    /// Destructuring `Scripts` makes a new script fail to compile here until
    /// it is listed.
    #[test]
    fn every_script_touches_keys_of_one_hash_slot() {
        let Scripts {
            save,
            delete,
            fix_due,
            claim,
            append_claim,
            commit,
            release,
            renew,
        } = Scripts::new();
        let ids = [
            "19000a80-1f00-4a8d-9c5e-3ad4bbbd1b11",
            "19000a801f004a8d9c5e3ad4bbbd1b11",
            "x",
            // Braces from a hostile id still leave one tag (the text up to the first `}`).
            "a}b",
            "a{b}c",
        ];
        for prefix in ["graph-comms", "test:bot-7", "p"] {
            let keys = Keys::new(prefix);
            for id in ids {
                let call_id = graph_comms_core::model::CallId::from(id);
                let member = Keys::member(&call_id);
                let member = member.as_str();
                let cases: [(&str, &Lua, Vec<String>); 10] = [
                    ("save", &save, vec![keys.record_for_member(member)]),
                    ("delete", &delete, vec![keys.record_for_member(member)]),
                    ("fix_due on the due index", &fix_due, vec![keys.due.clone()]),
                    ("fix_due on the inboxes index", &fix_due, vec![keys.inboxes.clone()]),
                    ("claim", &claim, keys.claim_keys(member).to_vec()),
                    ("append_claim", &append_claim, keys.claim_keys(member).to_vec()),
                    ("commit", &commit, keys.leased_keys(member).to_vec()),
                    ("release", &release, keys.leased_keys(member).to_vec()),
                    ("renew", &renew, vec![keys.lease(member)]),
                    ("renew (record slot)", &renew, vec![keys.record_for_member(member)]),
                ];
                for (name, lua, script_keys) in cases {
                    assert_eq!(
                        highest_key(&lua.code),
                        script_keys.len(),
                        "{name}: the script reads keys its call site does not pass (or the reverse)"
                    );
                    assert!(
                        one_slot(&script_keys),
                        "{name} with {member:?}: keys span slots: {script_keys:?}"
                    );
                }
                // A call's keys all share one slot, whichever script touches them.
                let mut all = keys.leased_keys(member).to_vec();
                all.push(keys.record(&call_id));
                assert!(one_slot(&all), "{member:?}: {all:?}");
            }
            // The indexes share a slot too (the fix script and `count` touch one at a time).
            assert!(one_slot(&[&keys.due, &keys.calls, &keys.inboxes]));
        }
    }

    #[test]
    fn keys_of_different_tags_are_told_apart() {
        // The check itself can fail: two calls' keys (almost always) differ.
        let keys = Keys::new("graph-comms");
        assert!(!one_slot(&[keys.record_for_member("a"), keys.inbox("b")]));
        assert!(!one_slot(&[keys.record_for_member("a"), keys.due.clone()]));
        // The one id shape without a hash tag: canonically empty or starting
        // with `}` gives `{}` or `{}…}`. The store refuses it on a cluster.
        assert!(!one_slot(&keys.claim_keys("}")));
    }
}
