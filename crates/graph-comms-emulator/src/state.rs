//! Shared emulator state: apps, tokens, calls, faults and logs.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use graph_comms_model::{AppId, CallId, CallState, ParticipantInfo, TenantId};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::keys::KeyRing;
use crate::{
    ApiFault, DeliveryFaults, EmulatorConfig, Endpoint, RecordedRequest, RecordingBehavior, RegisteredApp,
    SentNotification, TargetBehavior,
};

/// Locks a mutex, ignoring poisoning: the data stays usable after a panicking test thread.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The app and tenant an access token was issued to.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) app_id: AppId,
    pub(crate) tenant_id: TenantId,
    pub(crate) expires: Instant,
}

/// One notification of a script, with the state it moves the call to.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// Extra pause before this step, on top of `step_delay`.
    pub(crate) delay: Duration,
    /// The state the call is in once this step happens.
    pub(crate) state: Option<CallState>,
    /// The call is gone after this step; the delivery task stops.
    pub(crate) terminal: bool,
    /// One `commsNotification`.
    pub(crate) item: Value,
}

/// The notifications one action causes, in order, to one URL.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub(crate) url: String,
    pub(crate) steps: Vec<Step>,
}

/// A call the emulator tracks.
pub(crate) struct CallRecord {
    pub(crate) id: CallId,
    pub(crate) app_id: AppId,
    pub(crate) tenant_id: TenantId,
    pub(crate) state: CallState,
    /// The terminal notification was processed.
    pub(crate) ended: bool,
    pub(crate) direction: &'static str,
    pub(crate) callback_uri: String,
    pub(crate) source: Value,
    pub(crate) targets: Value,
    pub(crate) group: Option<Vec<ParticipantInfo>>,
    pub(crate) faults: DeliveryFaults,
    pub(crate) queue: Option<mpsc::UnboundedSender<Script>>,
    /// Emulator time of establishment or the last keepAlive.
    pub(crate) last_activity: Duration,
    pub(crate) my_participant_id: String,
    pub(crate) call_chain_id: String,
    pub(crate) notifications: Vec<SentNotification>,
    /// subscribeToTone was called: caller tones are delivered.
    pub(crate) tones_subscribed: bool,
    /// The last `sequenceId` sent.
    pub(crate) tone_sequence: i64,
    /// The last `toneInfo` sent; Graph repeats it on later call updates.
    pub(crate) last_tone: Option<Value>,
    /// How the next recordResponse ends.
    pub(crate) recording: RecordingBehavior,
    /// Running operations that cancelMediaProcessing ends: (id, @odata.type, clientContext).
    pub(crate) pending_ops: Vec<(String, String, Option<String>)>,
    /// The call was escalated to a meeting (invite, or scripted): transfer gives 8523.
    pub(crate) meeting: bool,
    /// Emulator time by which an incoming call must be answered, rejected or redirected.
    pub(crate) answer_deadline: Option<Duration>,
}

impl CallRecord {
    pub(crate) fn is_gone(&self) -> bool {
        self.state == CallState::Terminated
    }
}

/// Everything behind an [`crate::Emulator`] handle.
/// The calling permissions an app has unless [`crate::Emulator::set_app_roles`]
/// says otherwise: every one a calling bot can be granted.
pub(crate) const DEFAULT_ROLES: &[&str] = &[
    "Calls.Initiate.All",
    "Calls.InitiateGroupCall.All",
    "Calls.JoinGroupCall.All",
    "Calls.AccessMedia.All",
];

pub(crate) struct Inner {
    pub(crate) config: EmulatorConfig,
    pub(crate) base_url: String,
    pub(crate) default_app: RegisteredApp,
    pub(crate) started: Instant,
    pub(crate) clock_offset: Mutex<Duration>,
    pub(crate) apps: Mutex<Vec<RegisteredApp>>,
    pub(crate) certificates: Mutex<Vec<crate::assertion::RegisteredCertificate>>,
    pub(crate) federated: Mutex<Vec<crate::federated::FederatedIdentity>>,
    /// Application permissions granted to an app in a tenant (the `roles` of
    /// its access tokens); apps not named here have [`DEFAULT_ROLES`].
    pub(crate) roles: Mutex<HashMap<(TenantId, AppId), Vec<String>>>,
    pub(crate) grants: Mutex<HashMap<String, Grant>>,
    pub(crate) keys: Mutex<KeyRing>,
    pub(crate) calls: Mutex<HashMap<CallId, CallRecord>>,
    pub(crate) targets: Mutex<HashMap<String, TargetBehavior>>,
    pub(crate) api_faults: Mutex<Vec<ApiFault>>,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    /// Bumped on every call state change; `wait_for_state` watches it.
    pub(crate) changes: watch::Sender<u64>,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) http: reqwest::Client,
}

impl Inner {
    /// Emulator time: real time since start plus every `advance_clock`.
    pub(crate) fn now(&self) -> Duration {
        self.started.elapsed() + *lock(&self.clock_offset)
    }

    pub(crate) fn bump(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub(crate) fn find_app(&self, tenant: &TenantId, app: &AppId) -> Option<RegisteredApp> {
        lock(&self.apps)
            .iter()
            .find(|a| &a.tenant_id == tenant && &a.app_id == app)
            .cloned()
    }

    /// Takes one use of the first fault matching `endpoint`.
    pub(crate) fn take_fault(&self, endpoint: Endpoint) -> Option<crate::FaultKind> {
        let mut faults = lock(&self.api_faults);
        let index = faults
            .iter()
            .position(|f| f.count > 0 && (f.endpoint == endpoint || f.endpoint == Endpoint::Any))?;
        let fault = &mut faults[index];
        fault.count -= 1;
        let kind = fault.kind.clone();
        if fault.count == 0 {
            faults.remove(index);
        }
        Some(kind)
    }

    pub(crate) fn target_behavior(&self, target_id: &str) -> TargetBehavior {
        lock(&self.targets)
            .get(&target_key(target_id))
            .cloned()
            .unwrap_or(TargetBehavior::Accept)
    }

    /// Queues a script on a call's delivery task. False if the call has no task any more.
    pub(crate) fn enqueue(&self, call: &CallId, script: Script) -> bool {
        let calls = lock(&self.calls);
        calls
            .get(call)
            .and_then(|c| c.queue.as_ref())
            .is_some_and(|q| q.send(script).is_ok())
    }
}

/// Target ids match without case or dashes, like every Graph id.
pub(crate) fn target_key(id: &str) -> String {
    id.chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}
