//! `transfer-bot doctor` against the demo environment (the emulator and a
//! running bot): every check passes, and breaking each one in turn shows its
//! ✘ (or warning) with a hint.
#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use transfer_bot::config::{Config, Credential, RedisUrl, Secret, StoreBackend, StoreSettings};
use transfer_bot::demo::cluster::{ServeConfig, serve_config};
use transfer_bot::demo::{DemoEnvironment, scenarios};
use transfer_bot::doctor::{self, Check, Status};

async fn environment() -> DemoEnvironment {
    let all = scenarios().unwrap();
    tokio::time::timeout(Duration::from_secs(20), DemoEnvironment::start(&all))
        .await
        .expect("start timed out")
        .expect("the demo environment starts")
}

fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:?}"))
}

fn assert_failed(checks: &[Check], name: &str, hint: &str) {
    let found = check(checks, name);
    assert_eq!(found.status, Status::Failed, "{found:?}");
    let text = found.hint.clone().unwrap_or_default();
    assert!(text.contains(hint), "{name}: hint {text:?} lacks {hint:?}");
    assert!(doctor::any_failed(checks));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_demo_environment_every_check_passes() {
    let env = environment().await;
    let checks = doctor::run(&env.config).await;
    let text = doctor::render_text(&checks);
    assert!(checks.iter().all(|c| c.status == Status::Ok), "{text}");
    for name in [
        "config",
        "graph_token",
        "graph_roles",
        "signing_keys",
        "clock",
        "callback_url",
        "prompts",
    ] {
        check(&checks, name);
    }
    assert!(text.lines().all(|l| l.starts_with('✔')), "{text}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_setting_fails_its_check_with_a_hint() {
    let env = environment().await;
    let run = |change: &dyn Fn(&mut Config)| {
        let mut config = env.config.clone();
        change(&mut config);
        async move { doctor::run(&config).await }
    };

    let wrong_secret = run(&|c| c.credential = Credential::Secret(Secret::new("wrong"))).await;
    assert_failed(&wrong_secret, "graph_token", "client secret");

    let app = env.emulator.default_app();
    env.emulator.set_app_roles(&app, &["Calls.JoinGroupCall.All"]);
    // A fresh client: the environment's bot keeps its cached token.
    let no_role = run(&|_| {}).await;
    assert_failed(&no_role, "graph_roles", "Calls.Initiate.All");
    env.emulator.set_app_roles(&app, &["Calls.Initiate.All"]);
    let group_role_missing = run(&|_| {}).await;
    assert_eq!(check(&group_role_missing, "graph_roles").status, Status::Warning);
    env.emulator
        .set_app_roles(&app, &["Calls.Initiate.All", "Calls.JoinGroupCall.All"]);

    let base = env.emulator.graph_base_url();
    let keys = run(&|c| c.openid_configuration_url = format!("{base}/no-such-configuration")).await;
    assert_failed(&keys, "signing_keys", "openid_configuration_url");

    // The emulator's calls API is a server, but not this bot.
    let elsewhere = run(&|c| c.public_callback_url = format!("{base}/communications/calls")).await;
    assert_failed(&elsewhere, "callback_url", "route");
    let not_https = run(&|c| c.public_callback_url = "http://bot.example.com/api/calls".into()).await;
    assert_failed(&not_https, "callback_url", "https");

    let prompt = run(&|c| c.hold_prompt_uri = Some("http://media.example.com/hold.wav".into())).await;
    assert_failed(&prompt, "prompts", "https");

    // Redis: down, then up with an eviction policy that can drop call records.
    let mut redis = graph_comms_testkit::RedisServer::start();
    let url = RedisUrl::parse(&redis.url()).unwrap();
    let on_redis = |c: &mut Config| c.store = StoreSettings::redis(url.clone(), "doctor-test");
    let evicting = redis::Client::open(redis.url()).unwrap();
    let mut connection = evicting.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxmemory-policy", "allkeys-lru"][..])
        .query_async(&mut connection)
        .await
        .unwrap();
    let lru = run(&on_redis).await;
    let found = check(&lru, "redis");
    assert_eq!(found.status, Status::Warning, "{found:?}");
    assert!(
        found.hint.as_deref().unwrap_or_default().contains("noeviction"),
        "{found:?}"
    );
    redis.stop().unwrap();
    let down = run(&on_redis).await;
    assert_failed(&down, "redis", "host");

    // A Redis Cluster: refused as one server (calls on other nodes would
    // get MOVED), checked on every primary with store.redis_cluster.
    let cluster = tokio::task::spawn_blocking(graph_comms_testkit::RedisCluster::start)
        .await
        .unwrap();
    let seed = RedisUrl::parse(&cluster.urls()[0]).unwrap();
    let as_one = run(&|c| c.store = StoreSettings::redis(seed.clone(), "doctor-test")).await;
    assert_failed(&as_one, "redis", "store.redis_cluster = true");
    let clustered = run(&|c| c.store = StoreSettings::redis_cluster(seed.clone(), "doctor-test")).await;
    let found = check(&clustered, "redis");
    assert_eq!(found.status, Status::Ok, "{found:?}");
    assert!(found.detail.contains("Redis Cluster of 3 primaries"), "{found:?}");
    drop(cluster);
    assert!(matches!(env.config.store.backend, StoreBackend::Memory));
    env.shutdown().await;
}

#[test]
fn the_json_form_names_each_check_and_its_status() {
    let checks = vec![Check {
        name: "clock",
        status: Status::Failed,
        detail: "7m apart".into(),
        hint: Some("sync".into()),
    }];
    let json = serde_json::to_value(&checks).unwrap();
    assert_eq!(json[0]["name"], "clock");
    assert_eq!(json[0]["status"], "failed");
    assert!(doctor::render_text(&checks).starts_with("✘ clock: 7m apart (hint: sync)"));
}

/// libfaketime, which moves a process's wall clock and leaves the rest alone.
const FAKETIME_LIBRARY: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Runs `transfer-bot doctor --json` on `config` with `env`, answering its checks.
async fn doctor_process(config: &std::path::Path, env: Vec<(&'static str, String)>) -> (bool, serde_json::Value) {
    let config = config.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_transfer-bot"))
            .arg("doctor")
            .arg("--config")
            .arg(&config)
            .arg("--json")
            .envs(env)
            .output()
            .expect("transfer-bot runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), json)
}

fn status_of<'a>(checks: &'a serde_json::Value, name: &str) -> (&'a str, &'a str) {
    let check = checks
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} check in {checks}"));
    (
        check["status"].as_str().unwrap_or_default(),
        check["hint"].as_str().unwrap_or_default(),
    )
}

/// The clock check on a host whose wall clock runs 10 minutes ahead: the
/// doctor process runs under libfaketime against the emulator's real `Date`.
/// The same process without the offset passes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_clock_ten_minutes_ahead_fails_the_clock_check() {
    assert!(
        std::path::Path::new(FAKETIME_LIBRARY).exists(),
        "libfaketime is missing: apt-get install faketime"
    );
    let env = environment().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("transfer-bot.toml");
    let text = serve_config(&ServeConfig {
        emulator: &env.emulator,
        listen_port: env.bot.addr.port(),
        public_callback_url: &env.config.public_callback_url,
        routes: &[],
        default_targets: r#"[{ kind = "user", id = "doctor-target" }]"#,
        menu: None,
        store: "kind = \"memory\"",
    });
    std::fs::write(&path, text).unwrap();
    let secret = env.emulator.default_app().client_secret;

    let (passed, checks) = doctor_process(&path, vec![("TRANSFER_BOT_CLIENT_SECRET", secret.clone())]).await;
    assert_eq!(status_of(&checks, "clock").0, "ok", "{checks}");
    assert!(passed, "{checks}");

    let ahead = vec![
        ("TRANSFER_BOT_CLIENT_SECRET", secret),
        ("LD_PRELOAD", FAKETIME_LIBRARY.to_owned()),
        ("FAKETIME", "+10m".to_owned()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
    ];
    let (passed, checks) = doctor_process(&path, ahead).await;
    let (status, hint) = status_of(&checks, "clock");
    assert_eq!(status, "failed", "{checks}");
    assert!(hint.contains("sync this host's clock"), "{checks}");
    assert!(!passed, "a failed check exits non-zero: {checks}");
    env.shutdown().await;
}
