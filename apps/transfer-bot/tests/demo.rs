//! The scripted demo end to end against the Graph emulator over real HTTP, plus
//! the bot's HTTP endpoints and the request bodies it sends.

#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use graph_comms_emulator::Endpoint;
use std::process::ExitCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use transfer_bot::bot::{BotEventKind, CallOutcome};

use transfer_bot::demo::{
    DemoEnvironment, DemoReport, DemoRow, LoadOptions, run_load, run_scenario_list, run_scenarios, run_scenarios_in,
    scenarios,
};

mod openmetrics;

/// Every family the framework registers (`Bot::register_metrics`) with the
/// in-memory store, in registration order.
const FRAMEWORK_FAMILIES: &[&str] = &[
    "graph_comms_notification_requests",
    "graph_comms_notification_events_queued",
    "graph_comms_notification_token_cache_hits",
    "graph_comms_notification_token_verifications",
    "graph_comms_key_set_fetches",
    "graph_comms_key_set_fetch_failures",
    "graph_comms_graph_token_fetches",
    "graph_comms_graph_token_fetch_failures",
    "graph_comms_calls_active",
    "graph_comms_workers_active",
    "graph_comms_events_in_flight",
    "graph_comms_calls_seen",
    "graph_comms_calls_ended",
    "graph_comms_calls_evicted",
    "graph_comms_events_handled",
    "graph_comms_transfers_started",
    "graph_comms_transfers_accepted",
    "graph_comms_transfers",
    "graph_comms_hook_errors",
    "graph_comms_hook_panics",
    "graph_comms_hook_timeouts",
    "graph_comms_hook_redeliveries",
    "graph_comms_late_incoming_decisions",
    "graph_comms_keep_alives_sent",
    "graph_comms_keep_alive_failures",
    "graph_comms_late_events",
    "graph_comms_timeout_lookups",
    "graph_comms_duplicate_deliveries",
    "graph_comms_failure_checks",
    "graph_comms_unsent_transfer_checks",
    "graph_comms_consultation_relinks",
    "graph_comms_store_conflicts",
    "graph_comms_store_errors",
    "graph_comms_call_queue_full",
    "graph_comms_call_claims",
    "graph_comms_call_claims_refused",
    "graph_comms_takeovers",
    "graph_comms_leases_lost",
    "graph_comms_journal_failures",
    "graph_comms_outage_journaled",
    "graph_comms_outage_replayed",
    "graph_comms_outage_journal_items",
];

/// The app's own families (`Metrics::register`).
const APP_FAMILIES: &[&str] = &[
    "transfer_bot_calls_ended",
    "transfer_bot_transfers_started",
    "transfer_bot_targets_skipped",
    "transfer_bot_graph_request_duration_seconds",
    "transfer_bot_instance",
];

/// Samples the scripted demo must move off zero: (sample, labels that must match).
const EXERCISED: &[(&str, &[(&str, &str)])] = &[
    ("graph_comms_notification_requests_total", &[("result", "accepted")]),
    ("graph_comms_notification_events_queued_total", &[]),
    ("graph_comms_notification_token_verifications_total", &[]),
    ("graph_comms_key_set_fetches_total", &[]),
    ("graph_comms_graph_token_fetches_total", &[]),
    ("graph_comms_calls_seen_total", &[]),
    ("graph_comms_calls_ended_total", &[]),
    ("graph_comms_events_handled_total", &[]),
    ("graph_comms_transfers_started_total", &[]),
    ("graph_comms_transfers_accepted_total", &[]),
    ("graph_comms_transfers_total", &[("outcome", "completed")]),
    ("graph_comms_transfers_total", &[("outcome", "failed")]),
    ("transfer_bot_calls_ended_total", &[("outcome", "transferred")]),
    ("transfer_bot_calls_ended_total", &[("outcome", "apologised")]),
    ("transfer_bot_transfers_started_total", &[("mode", "blind")]),
    ("transfer_bot_transfers_started_total", &[("mode", "consultative")]),
    (
        "transfer_bot_graph_request_duration_seconds_count",
        &[("action", "transfer")],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scripted_call_ends_as_scripted() {
    let report = tokio::time::timeout(Duration::from_secs(60), run_scenarios(false))
        .await
        .expect("demo timed out")
        .expect("demo failed to start");
    let table = report.table();
    assert_eq!(report.rows.len(), scenarios().unwrap().len(), "{table}");
    for row in &report.rows {
        assert!(row.ok, "{} did not end as scripted:\n{table}", row.scenario);
    }
    let by_name = |name: &str| report.rows.iter().find(|r| r.scenario == name).unwrap();
    let fallback = by_name("declined, falls back");
    assert_eq!(fallback.path, ["user:bob", "user:carol"]);
    assert_eq!(
        fallback.outcome,
        Ok(CallOutcome::Transferred {
            target: "user:carol".into()
        })
    );
    let all_fail = by_name("all targets fail");
    assert_eq!(all_fail.outcome, Ok(CallOutcome::Apologised));
    assert_eq!(all_fail.path.len(), 3);
    assert!(
        all_fail.path[1].starts_with("phone:+*"),
        "phone numbers are masked: {:?}",
        all_fail.path
    );
    assert_eq!(by_name("reordered + duplicated").completions, 1);
    assert_eq!(
        by_name("consult declined, falls back").path,
        ["user:ivan (consultative)", "user:judy"]
    );
    assert!(report.all_ok());
    assert_eq!(report.exit_code(), ExitCode::SUCCESS);
    assert!(table.contains("scenario") && table.contains("expected"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_does_not_end_as_scripted_fails_the_demo() {
    let mut wrong = scenarios()
        .unwrap()
        .into_iter()
        .find(|s| s.name == "blind transfer")
        .unwrap();
    // The call is transferred; expecting an apology must be reported as a failure.
    wrong.expected = CallOutcome::Apologised;
    let report = tokio::time::timeout(Duration::from_secs(60), run_scenario_list(&[wrong], false))
        .await
        .expect("demo timed out")
        .expect("demo failed to start");
    let table = report.table();
    let row = &report.rows[0];
    assert_eq!(
        row.outcome,
        Ok(CallOutcome::Transferred {
            target: "user:alice".into()
        }),
        "{table}"
    );
    assert!(!row.ok, "{table}");
    assert!(table.lines().nth(2).is_some_and(|l| l.ends_with("FAIL")), "{table}");
    assert!(!report.all_ok());
    assert_eq!(report.exit_code(), ExitCode::FAILURE);
}

#[test]
fn one_failed_row_or_no_rows_is_a_failing_exit_code() {
    let row = |ok| DemoRow {
        call_id: None,
        scenario: "s",
        path: Vec::new(),
        outcome: Ok(CallOutcome::Apologised),
        expected: CallOutcome::Apologised,
        completions: 0,
        ok,
    };
    let report = |rows| DemoReport { rows };
    assert_eq!(report(vec![row(true), row(true)]).exit_code(), ExitCode::SUCCESS);
    assert_eq!(report(vec![row(true), row(false)]).exit_code(), ExitCode::FAILURE);
    assert_eq!(report(Vec::new()).exit_code(), ExitCode::FAILURE);
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = http_get_with_headers(addr, path).await;
    (status, body)
}

/// The status, the header block and the body.
async fn http_get_with_headers(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let (headers, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, headers.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_carry_transferee_and_replaces_call_id_and_metrics_count_them() {
    let all = scenarios().unwrap();
    let pick = |name: &str| all.iter().find(|s| s.name == name).unwrap().clone();
    let chosen = [
        pick("group call (transferee)"),
        pick("consultative transfer"),
        pick("declined, falls back"),
    ];
    let mut env = tokio::time::timeout(Duration::from_secs(20), DemoEnvironment::start(&chosen))
        .await
        .unwrap()
        .unwrap();

    let (status, body) = http_get(env.bot.addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(env.bot.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");

    for (i, scenario) in chosen.iter().enumerate() {
        let call = env.placer.place(scenario, i).await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let event = env.events.recv().await.unwrap();
                if event.call_id == call && matches!(event.kind, BotEventKind::Finished { .. }) {
                    break;
                }
            }
        })
        .await
        .expect("call did not finish");
    }

    let transfers: Vec<_> = env
        .emulator
        .requests()
        .into_iter()
        .filter(|r| matches!(r.endpoint, Endpoint::Transfer))
        .collect();
    assert_eq!(transfers.len(), 4, "group, consultative, declined + fallback");
    let group = transfers[0].body.as_ref().unwrap();
    assert!(
        group.get("transferee").is_some(),
        "group transfer without transferee: {group}"
    );
    let consult = transfers[1].body.as_ref().unwrap();
    let replaces = consult["transferTarget"]["replacesCallId"]
        .as_str()
        .expect("replacesCallId");
    let created: Vec<_> = env
        .emulator
        .requests()
        .into_iter()
        .filter(|r| matches!(r.endpoint, Endpoint::CreateCall))
        .collect();
    assert_eq!(created.len(), 1, "one consultation call");
    assert!(transfers[2].body.as_ref().unwrap().get("transferee").is_none());
    assert!(!replaces.is_empty());

    let (status, metrics) = http_get(env.bot.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("\ngraph_comms_calls_seen_total 4\n"),
        "three calls and one consultation call: {metrics}"
    );
    assert!(
        metrics.contains("transfer_bot_calls_ended_total{outcome=\"transferred\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\ngraph_comms_transfers_total{outcome=\"completed\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("graph_comms_transfers_total{outcome=\"failed\",reason=\"returned_to_established\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("graph_comms_notification_requests_total{result=\"accepted\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("transfer_bot_graph_request_duration_seconds_count{action="),
        "{metrics}"
    );
    env.shutdown().await;
}

/// `/metrics` after the whole scripted demo: valid OpenMetrics text, every
/// framework and app family, non-zero where the demo exercises it, and no
/// label value that identifies a caller, a user, a call or a tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_scripted_demo_metrics_parse_and_every_family_is_scraped() {
    let all = scenarios().unwrap();
    let mut env = tokio::time::timeout(
        Duration::from_secs(20),
        DemoEnvironment::start_configured(&all, Default::default(), |config, _| {
            // A fixed id: the default (the host name) is not this test's business.
            config.store.instance_id = "demo-a".into();
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let report = tokio::time::timeout(Duration::from_secs(90), run_scenarios_in(&mut env, &all, false))
        .await
        .expect("demo timed out");
    assert!(report.all_ok(), "{}", report.table());

    let (status, headers, metrics) = http_get_with_headers(env.bot.addr, "/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{headers}"
    );
    let scrape = openmetrics::parse(&metrics).unwrap_or_else(|e| panic!("{e}\n{metrics}"));

    for family in FRAMEWORK_FAMILIES.iter().chain(APP_FAMILIES) {
        let described = scrape.families.get(*family);
        assert!(described.is_some(), "no family {family} in:\n{metrics}");
        assert!(
            scrape.of(family).next().is_some(),
            "family {family} has no sample:\n{metrics}"
        );
    }
    let registered: Vec<_> = scrape.families.keys().map(String::as_str).collect();
    for family in &registered {
        assert!(
            FRAMEWORK_FAMILIES.contains(family) || APP_FAMILIES.contains(family),
            "{family} is not in this test's lists"
        );
        let prefix_ok = family.starts_with("graph_comms_") || family.starts_with("transfer_bot_");
        assert!(prefix_ok, "{family}");
    }
    for (family, described) in &scrape.families {
        let counter_ok = described.kind != "counter" || !family.ends_with("_total");
        assert!(counter_ok, "{family}: counters get _total on their samples only");
    }
    assert_eq!(
        scrape.families["transfer_bot_graph_request_duration_seconds"].kind,
        "histogram"
    );
    assert_eq!(
        scrape.families["transfer_bot_graph_request_duration_seconds"]
            .unit
            .as_deref(),
        Some("seconds")
    );
    assert_eq!(scrape.families["graph_comms_calls_active"].kind, "gauge");
    assert_eq!(
        scrape.value(
            "transfer_bot_instance_info",
            &[("instance_id", "demo-a"), ("store", "memory")]
        ),
        Some(1.0)
    );

    for (name, labels) in EXERCISED {
        let total: f64 = scrape
            .samples
            .iter()
            .filter(|s| {
                s.name == *name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .map(|s| s.value)
            .sum();
        assert!(total > 0.0, "{name}{labels:?} is zero after the demo:\n{metrics}");
    }

    let identifying = openmetrics::identifying_label_values(&scrape);
    assert!(identifying.is_empty(), "identifying label values: {identifying:?}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_randomised_load_ends_as_scripted() {
    let options = LoadOptions {
        calls: 24,
        concurrency: 8,
        seed: Some(7),
    };
    let report = tokio::time::timeout(Duration::from_secs(60), run_load(options))
        .await
        .expect("load timed out")
        .unwrap();
    assert_eq!(report.calls, 24);
    assert_eq!(report.ok, 24, "calls that did not end as scripted");
    assert_eq!(report.exit_code(), ExitCode::SUCCESS);
    assert_eq!(report.latency.len(), 24);
    assert!(report.latency.max() >= report.latency.value_at_quantile(0.5));
    assert!(
        report.latency.min() > 100,
        "latencies are whole HTTP round trips, in microseconds"
    );
    assert!(report.transfers > 0);
    assert_eq!(report.mix.iter().map(|(_, n)| n).sum::<usize>(), 24);
}

/// `demo --instances 3 --redis URL` as a user runs it: three `serve`
/// processes on the test Redis, one killed with SIGKILL halfway, and every
/// scripted call (consultative ones included) still ends as scripted.
#[test]
fn demo_on_three_instances_kills_one_and_every_call_ends_as_scripted() {
    let Some(url) = graph_comms_testkit::redis_url() else {
        return;
    };
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_transfer-bot"))
        .args(["demo", "--instances", "3", "--redis", &url])
        .output()
        .expect("transfer-bot runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let total = scenarios().unwrap().len();
    assert!(
        stdout.contains(&format!("{total} of {total} scripted calls ended as scripted")),
        "{stdout}"
    );
    assert!(stderr.contains("with SIGKILL"), "an instance was killed: {stderr}");
}

/// Regression: a log written to a file or a pipe was full of ANSI colour codes.
#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_transfer-bot"))
        .arg("demo")
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .expect("transfer-bot runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains(" INFO "), "info lines are logged: {stderr}");
    assert!(!stderr.contains('\x1b'), "no escape codes: {stderr}");
}

#[test]
fn demo_instances_without_redis_is_refused_with_a_clear_error() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_transfer-bot"))
        .args(["demo", "--instances", "3"])
        .output()
        .expect("transfer-bot runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--redis"), "{stderr}");
}

/// With `allowed_tenants`, a call of another tenant (the app consented there
/// too) is refused at the webhook and counted; the allowed tenant's calls go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_from_a_tenant_not_allowed_is_refused_and_counted() {
    let all = scenarios().unwrap();
    let blind = [all.iter().find(|s| s.name == "blind transfer").unwrap().clone()];
    let mut env =
        DemoEnvironment::start_configured(&blind, transfer_bot::config::StoreSettings::default(), |config, _| {
            config.allowed_tenants = Some(vec![config.tenant_id.clone()]);
        })
        .await
        .unwrap();

    let stranger = env.emulator.add_tenant();
    let refused =
        graph_comms_emulator::IncomingCall::from_user(&stranger, env.placer.callback_uri(), "outsider", "Outsider");
    let refused = env.emulator.place_incoming_call(refused).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        let statuses: Vec<Option<u16>> = env
            .emulator
            .notifications(&refused)
            .iter()
            .map(|n| n.response_status)
            .collect();
        if let Some(status) = statuses.first() {
            break *status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stranger's call was never notified"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        status,
        Some(401),
        "another tenant's notification is refused like any bad token"
    );

    let allowed = env.placer.place(&blind[0], 0).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match env.events.recv().await.map(|e| (e.call_id, e.kind)) {
                Some((call, BotEventKind::Finished { .. })) if call == allowed => return,
                Some(_) => {}
                None => panic!("the bot stopped"),
            }
        }
    })
    .await
    .expect("the allowed tenant's call finishes");
    let (_, metrics) = http_get(env.bot.addr, "/metrics").await;
    let scrape = openmetrics::parse(&metrics).unwrap_or_else(|e| panic!("{e}\n{metrics}"));
    let rejected = scrape.value(
        "graph_comms_notification_requests_total",
        &[("result", "rejected"), ("reason", "tenant_not_allowed")],
    );
    assert!(rejected.is_some_and(|n| n >= 1.0), "{metrics}");
    env.shutdown().await;
}

/// The menu's other keys: 1 leads to sales, a key with no option to the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_menu_key_leads_where_the_menu_says() {
    use graph_comms_handler::model::Tone;

    let all = scenarios().unwrap();
    let menu_call = all.iter().find(|s| s.name == "menu: caller presses 2").unwrap().clone();
    let pressing = |name, tone: Tone, reaches: &str| {
        let mut scenario = menu_call.clone();
        scenario.name = name;
        scenario.presses = vec![tone];
        scenario.expected_path = vec![format!("user:{reaches}")];
        scenario.expected = CallOutcome::Transferred {
            target: format!("user:{reaches}"),
        };
        scenario
    };
    let chosen = [
        pressing("menu: 1", Tone::Tone1, "sam"),
        pressing("menu: 9 (no option)", Tone::Tone9, "olga"),
    ];
    let report = run_scenario_list(&chosen, false).await.unwrap();
    assert!(report.all_ok(), "{}", report.table());
}

/// A caller who hangs up while the menu waits for a key: the call is dropped,
/// nothing is transferred.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_hanging_up_in_the_menu_is_dropped_without_a_transfer() {
    let all = scenarios().unwrap();
    let mut silent = all.iter().find(|s| s.name == "menu: no key, operator").unwrap().clone();
    // Longer than the test: only the hang-up ends the wait.
    silent.presses.clear();
    let mut env = DemoEnvironment::start_configured(
        std::slice::from_ref(&silent),
        transfer_bot::config::StoreSettings::default(),
        |config, _| {
            if let Some(menu) = config.menu.as_mut() {
                menu.timeout = Duration::from_secs(20);
            }
        },
    )
    .await
    .unwrap();
    let call = env.placer.place(&silent, 0).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // Subscribed: the menu listens for a key.
    while !env.emulator.send_tones(&call, &[]).unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the menu never listened for keys"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.emulator.caller_hangs_up(&call).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match env.events.recv().await.map(|e| (e.call_id, e.kind)) {
                Some((id, BotEventKind::Finished { outcome, tried })) if id == call => return (outcome, tried),
                Some(_) => {}
                None => panic!("the bot stopped"),
            }
        }
    })
    .await
    .expect("the call finishes");
    assert!(matches!(outcome.0, CallOutcome::Dropped { .. }), "{outcome:?}");
    assert!(outcome.1.is_empty(), "nothing tried: {outcome:?}");
    let transfers = env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Transfer && r.call_id.as_ref() == Some(&call))
        .count();
    assert_eq!(transfers, 0);
    env.shutdown().await;
}

/// With `client_certificate_file` the bot signs client assertions with the
/// certificate registered on the app: it gets ready and its calls go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_authenticating_with_a_certificate_gets_ready_and_transfers() {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["bot.example.invalid".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = format!("{}{}", cert.pem(), key.serialize_pem());
    let all = scenarios().unwrap();
    let blind = [all.iter().find(|s| s.name == "blind transfer").unwrap().clone()];
    let mut env = DemoEnvironment::start_configured(
        &blind,
        transfer_bot::config::StoreSettings::default(),
        |config, emulator| {
            config.credential = transfer_bot::config::Credential::Certificate(transfer_bot::config::Secret::new(pem));
            emulator
                .register_certificate(&emulator.default_app(), &cert.pem())
                .unwrap();
        },
    )
    .await
    .unwrap();
    let call = env.placer.place(&blind[0], 0).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match env.events.recv().await.map(|e| (e.call_id, e.kind)) {
                Some((id, BotEventKind::Finished { outcome, .. })) if id == call => {
                    assert!(matches!(outcome, CallOutcome::Transferred { .. }), "{outcome:?}");
                    return;
                }
                Some(_) => {}
                None => panic!("the bot stopped"),
            }
        }
    })
    .await
    .expect("the call finishes");
    let tokens: Vec<u16> = env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Token)
        .map(|r| r.status)
        .collect();
    assert_eq!(tokens.last(), Some(&200), "{tokens:?}");
    env.shutdown().await;
}

/// With `admin_listen`, `/healthz`, `/readyz` and `/metrics` are served there
/// and nowhere else: the public listener, which faces the internet with the
/// webhook, answers them 404 and still takes notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_admin_listener_the_public_port_serves_only_the_callback() {
    let blind = scenarios()
        .unwrap()
        .into_iter()
        .filter(|s| s.name == "blind transfer")
        .collect::<Vec<_>>();
    let mut env = tokio::time::timeout(
        Duration::from_secs(20),
        DemoEnvironment::start_configured(&blind, transfer_bot::config::StoreSettings::default(), |config, _| {
            config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        }),
    )
    .await
    .expect("start timed out")
    .expect("the bot starts");
    let admin = env.bot.admin_addr.expect("an admin address");
    assert_ne!(admin, env.bot.addr);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, body) = http_get(admin, path).await;
        assert_eq!(status, 200, "{path} on the admin listener: {body}");
        let (status, _) = http_get(env.bot.addr, path).await;
        assert_eq!(status, 404, "{path} on the public listener");
    }
    let call = env.placer.place(&blind[0], 0).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = env.events.recv().await.unwrap();
            if event.call_id == call && matches!(event.kind, BotEventKind::Finished { .. }) {
                return;
            }
        }
    })
    .await
    .expect("the call through the public listener did not finish");
    let (_, metrics) = http_get(admin, "/metrics").await;
    assert!(metrics.contains("graph_comms_transfers_total"), "{metrics}");
    env.shutdown().await;
}

/// With a federated token file (workload identity federation, as on AKS) the
/// bot sends the token the emulator's app trusts: it gets ready and its calls go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_authenticating_with_a_federated_token_gets_ready_and_transfers() {
    let issuer = "https://oidc.prod-aks.azure.com/11111111-2222-3333-4444-555555555555/";
    let subject = "system:serviceaccount:telephony:transfer-bot";
    let issuer_key = graph_comms_emulator::NotificationSigner::new().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = issuer_key
        .sign_claims(&serde_json::json!({
            "iss": issuer, "sub": subject, "aud": ["api://AzureADTokenExchange"],
            "iat": now, "nbf": now, "exp": now + 3600,
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(&token_file, &token).unwrap();
    let all = scenarios().unwrap();
    let blind = [all.iter().find(|s| s.name == "blind transfer").unwrap().clone()];
    let mut env = DemoEnvironment::start_configured(
        &blind,
        transfer_bot::config::StoreSettings::default(),
        |config, emulator| {
            config.credential = transfer_bot::config::Credential::FederatedToken(token_file.clone());
            emulator
                .register_federated_identity(&emulator.default_app(), issuer, subject, &issuer_key.jwks())
                .unwrap();
        },
    )
    .await
    .unwrap();
    let call = env.placer.place(&blind[0], 0).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match env.events.recv().await.map(|e| (e.call_id, e.kind)) {
                Some((id, BotEventKind::Finished { outcome, .. })) if id == call => {
                    assert!(matches!(outcome, CallOutcome::Transferred { .. }), "{outcome:?}");
                    return;
                }
                Some(_) => {}
                None => panic!("the bot stopped"),
            }
        }
    })
    .await
    .expect("the call finishes");
    let tokens: Vec<u16> = env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Token)
        .map(|r| r.status)
        .collect();
    assert!(!tokens.is_empty() && tokens.iter().all(|s| *s == 200), "{tokens:?}");
    env.shutdown().await;
}
