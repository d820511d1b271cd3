//! A bot taking over calls on Redis from an instance that stopped: the state
//! a killed instance leaves behind (committed hook steps whose hooks did not
//! finish, an unhandled inbox item, an expired lease) is written to a real
//! Redis, then a bot on the same prefix must find and finish it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph_comms_core::lifecycle::Step;
use graph_comms_core::transfer_machine::AttemptEffect;
use graph_comms_handler::client::GraphClient;
use graph_comms_handler::model::{AppId, TenantId};
use graph_comms_handler::notify::NotifyConfig;
use graph_comms_handler::{
    Bot, CallContext, CallEnd, CallHandler, CallStore, EndCause, HookError, SharedCallStore, Timings, TransferInfo,
    async_trait,
};
use graph_comms_redis::{RedisCallStore, RedisStoreConfig};
use graph_comms_testkit::records::{now_millis, typical_record, unique_call_id};
use graph_comms_testkit::redis_url;
use graph_comms_testkit::shared_contract::notification_item;

/// Records each outcome hook: (hook, attempt id, redelivered).
#[derive(Default)]
struct Outcomes(Mutex<Vec<(&'static str, String, bool)>>);

#[async_trait]
impl CallHandler for Outcomes {
    async fn on_transfer_accepted(&self, _: &CallContext, attempt: &TransferInfo, _: bool) -> Result<(), HookError> {
        let entry = ("accepted", attempt.id.to_string(), attempt.redelivered);
        self.0.lock().unwrap().push(entry);
        Ok(())
    }

    async fn on_transfer_completed(&self, _: &CallContext, attempt: &TransferInfo) -> Result<(), HookError> {
        let entry = ("completed", attempt.id.to_string(), attempt.redelivered);
        self.0.lock().unwrap().push(entry);
        Ok(())
    }

    async fn on_call_terminated(&self, ctx: &CallContext, _: &CallEnd) -> Result<(), HookError> {
        let entry = ("terminated", String::new(), ctx.is_redelivery());
        self.0.lock().unwrap().push(entry);
        Ok(())
    }
}

/// A bot on `store` that never needs Graph in this test.
fn bot(store: Arc<RedisCallStore>, handler: Arc<Outcomes>, instance: &str) -> Bot {
    let client = GraphClient::builder()
        .credentials(TenantId::from("tenant-1"), AppId::from("app-1"), "unused".to_owned())
        .graph_base_url("http://127.0.0.1:9/v1.0")
        .login_base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let mut notify = NotifyConfig::new(AppId::from("app-1"));
    notify.openid_configuration_url = "http://127.0.0.1:9/.well-known/openid-configuration".into();
    Bot::builder()
        .client(client)
        .notify(notify)
        .handler(handler)
        .shared_store(store, instance)
        .timings(
            Timings::default()
                .lease_ttl(Duration::from_millis(600))
                .sweep_interval(Duration::from_millis(100)),
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instances_undelivered_outcome_is_redelivered_once_with_its_attempt_id() {
    let Some(url) = redis_url() else { return };
    let config = RedisStoreConfig::new(&url).prefix(format!("test:{}", unique_call_id("takeover")));
    let store = Arc::new(RedisCallStore::connect(config).await.unwrap());

    // What the dead instance committed: the outcome, its hooks still in the outbox.
    let call = unique_call_id("call");
    let mut record = typical_record(call.clone(), now_millis());
    let info = record.attempt.as_ref().unwrap().info.clone();
    let attempt_id = info.id.to_string();
    record.outbox = vec![
        Step::Attempt(
            Box::new(info),
            vec![AttemptEffect::Accepted { inferred: false }, AttemptEffect::Completed],
        ),
        Step::Terminated(CallEnd::new(
            None,
            Some("AppTransferred".into()),
            EndCause::Notification,
        )),
    ];
    record.version = 1;
    store.save(Arc::new(record)).await.unwrap();
    // A notification it had acknowledged and not handled; its lease is long gone.
    store
        .append(&[(call.clone(), notification_item(&call, 9))])
        .await
        .unwrap();

    let outcomes = Arc::new(Outcomes::default());
    let taker = bot(Arc::clone(&store), Arc::clone(&outcomes), "taker");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let claim = store.claim(&call, "probe", Duration::from_millis(1), 64).await.unwrap();
        let record = store.load(&call).await.unwrap().unwrap();
        let drained = claim.is_some_and(|c| c.inbox.is_empty());
        if drained && record.outbox.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call was not taken over: {:?}",
            taker.metrics()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = outcomes.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("accepted", attempt_id.clone(), true),
            ("completed", attempt_id, true),
            ("terminated", String::new(), true),
        ],
        "each undelivered hook runs once more, flagged, with the same attempt id"
    );
    let metrics = taker.metrics();
    assert!(metrics.takeovers >= 1, "{metrics:?}");
    assert_eq!(metrics.redeliveries, 2, "two outbox steps: {metrics:?}");
    taker.shutdown().await;
}
