//! OpenTelemetry trace export end to end: `transfer-bot serve` processes
//! with `[telemetry]` on export to an OTLP/HTTP receiver in this test (the
//! testkit's recording server), the Graph emulator offers a call, and the
//! protobuf `ExportTraceServiceRequest`s the bot sent are decoded and checked:
//! the call's trace id is its `callChainId`, the answer, attempt, hook, Graph
//! request (and, with Redis, commit) spans are there with their attributes
//! and parent links, spans from every instance land in that one trace, and no
//! phone number is sent unmasked. The spans reach the receiver only through
//! the exporter's flush at shutdown (SIGTERM) or its batch timer.

#![cfg(all(feature = "demo", feature = "otlp"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use graph_comms_emulator::{Emulator, EmulatorConfig, Endpoint, IncomingCall, TargetBehavior};
use graph_comms_handler::model::{CallId, CallState, Identity, IdentitySet};
use graph_comms_testkit::receiver::CallbackReceiver;
use graph_comms_testkit::{BotProcess, RedisServer, RoundRobinProxy, free_port};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;
use transfer_bot::demo::cluster::{ServeConfig, serve_config};

const BINARY: &str = env!("CARGO_BIN_EXE_transfer-bot");
const CALLBACK_PATH: &str = "/api/calls";
const CALLED: &str = "otel-route";
/// The caller's number and the PSTN target's: neither may be exported as is.
const CALLER_NUMBER: &str = "+14255550123";
const PHONE_TARGET: &str = "+14255550177";
const PHONE_TARGET_MASKED: &str = "+*******0177";
const USER_TARGET: &str = "otel-alice";
const EXPORT_TOKEN: &str = "Bearer otlp-test-token";
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(20);

/// One exported span, flattened with its resource's attributes.
#[derive(Debug, Clone)]
struct Span {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    attributes: HashMap<String, String>,
    resource: HashMap<String, String>,
}

impl Span {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(list: &[KeyValue]) -> HashMap<String, String> {
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// Every span in the requests the receiver got on `/v1/traces`; each must
/// be protobuf and carry the configured header.
fn exported_spans(receiver: &CallbackReceiver) -> (Vec<Span>, Vec<u8>) {
    let mut spans = Vec::new();
    let mut raw = Vec::new();
    for request in receiver.received_on("/v1/traces") {
        assert_eq!(request.method, "POST");
        assert_eq!(request.content_type.as_deref(), Some("application/x-protobuf"));
        assert_eq!(
            request.authorization.as_deref(),
            Some(EXPORT_TOKEN),
            "the configured header"
        );
        raw.extend_from_slice(&request.body);
        let decoded = ExportTraceServiceRequest::decode(request.body.as_slice()).expect("an OTLP trace request");
        for resource_spans in decoded.resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Span {
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        name: span.name,
                        attributes: attributes(&span.attributes),
                        resource: resource.clone(),
                    });
                }
            }
        }
    }
    (spans, raw)
}

/// The trace id and remote parent span id the docs promise for a chain id:
/// the GUID's hex digits, and its two 64-bit halves XORed.
fn expected_ids(chain: &str) -> (String, String) {
    let digits: String = chain.chars().filter(|c| *c != '-').collect::<String>().to_lowercase();
    let high = u64::from_str_radix(&digits[..16], 16).unwrap();
    let low = u64::from_str_radix(&digits[16..], 16).unwrap();
    (digits, format!("{:016x}", high ^ low))
}

fn chain_id_of(emulator: &Emulator, call: &CallId) -> String {
    emulator
        .notifications(call)
        .iter()
        .find_map(|n| {
            n.body
                .pointer("/value/0/resourceData/callChainId")?
                .as_str()
                .map(str::to_owned)
        })
        .expect("the call's notifications carry its callChainId")
}

/// The phone target declines; the user accepts as `user` says.
async fn emulator(user: TargetBehavior) -> Emulator {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("the emulator starts");
    emulator.script_target(PHONE_TARGET, TargetBehavior::Decline);
    emulator.script_target(USER_TARGET, user);
    emulator
}

/// A `serve` configuration routing [`CALLED`] to the phone target, then the
/// user, with `[telemetry]` exporting to `receiver`.
fn config(
    emulator: &Emulator,
    port: u16,
    callback: &str,
    store: &str,
    receiver: &CallbackReceiver,
    user_mode: UserMode,
) -> String {
    let mode = user_mode.as_str();
    let routes = vec![(
        CALLED.to_owned(),
        format!(
            r#"[{{ kind = "phone", id = "{PHONE_TARGET}" }}, {{ kind = "user", id = "{USER_TARGET}", mode = "{mode}" }}]"#
        ),
    )];
    let mut toml = serve_config(&ServeConfig {
        emulator,
        listen_port: port,
        public_callback_url: callback,
        routes: &routes,
        default_targets: &format!(r#"[{{ kind = "user", id = "{USER_TARGET}" }}]"#),
        menu: None,
        store,
    });
    toml.push_str(&format!(
        "\n[telemetry]\nenabled = true\nendpoint = \"{}\"\nheaders = {{ authorization = \"{EXPORT_TOKEN}\" }}\n",
        receiver.base_url()
    ));
    toml
}

async fn spawn(name: &str, config: &str, secret: &str) -> BotProcess {
    let env = [
        ("TRANSFER_BOT_CLIENT_SECRET", secret),
        // The variables fill in what the table leaves unset.
        ("OTEL_SERVICE_NAME", "otel-test-bot"),
        // Longer than the test: only the flush at shutdown sends spans.
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
    ];
    BotProcess::spawn_with_env(Path::new(BINARY), config, name, &env)
        .await
        .unwrap_or_else(|e| panic!("{name} did not start: {e}"))
}

/// Places one call from [`CALLER_NUMBER`] to [`CALLED`] and waits until it
/// ends (the phone target declines, the user accepts).
async fn place_call(emulator: &Emulator, callback: &str) -> CallId {
    let id = offer_call(emulator, callback).await;
    wait_for_end(emulator, &id).await;
    id
}

async fn offer_call(emulator: &Emulator, callback: &str) -> CallId {
    let app = emulator.default_app();
    let call = IncomingCall::from_phone(&app, callback.to_owned(), CALLER_NUMBER)
        .to(IdentitySet::application_instance(Identity::with_id(CALLED)));
    emulator.place_incoming_call(call).await.expect("the call is offered")
}

async fn wait_for_end(emulator: &Emulator, id: &CallId) {
    emulator
        .wait_for_state(id, CallState::Terminated, Duration::from_secs(30))
        .await
        .expect("the call ends");
}

/// How the user target is transferred to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserMode {
    Blind,
    Consultative,
}

impl UserMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Blind => "blind",
            Self::Consultative => "consultative",
        }
    }
}

/// What every test checks of one call's trace; returns its spans.
fn check_call_trace(spans: &[Span], raw: &[u8], emulator: &Emulator, call: &CallId, user_mode: UserMode) -> Vec<Span> {
    let chain = chain_id_of(emulator, call);
    let (trace_id, remote_parent) = expected_ids(&chain);
    let trace: Vec<Span> = spans.iter().filter(|s| s.trace_id == trace_id).cloned().collect();
    let names: BTreeSet<&str> = trace.iter().map(|s| s.name.as_str()).collect();
    assert!(
        !trace.is_empty(),
        "no span with trace id {trace_id} (chain {chain}); traces: {:?}",
        spans.iter().map(|s| (&s.trace_id, &s.name)).collect::<Vec<_>>()
    );

    // The call spans: children of the chain's remote parent, naming the call.
    let tenant = emulator.default_app().tenant_id.to_string();
    let calls: Vec<&Span> = trace.iter().filter(|s| s.name == "call").collect();
    assert!(!calls.is_empty(), "no call span in {names:?}");
    for span in &calls {
        assert_eq!(span.parent_span_id, remote_parent, "call span {span:?}");
        assert_eq!(span.attr("call_chain_id"), Some(chain.as_str()));
        assert_eq!(span.attr("call_id"), Some(call.dashed().as_str()));
        assert_eq!(span.attr("tenant"), Some(tenant.as_str()));
        assert_eq!(
            span.resource.get("service.name").map(String::as_str),
            Some("otel-test-bot")
        );
    }

    // Every other span's parent is a span of this trace, exported too.
    let ids: HashMap<&str, &Span> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let parent = |span: &Span| -> &Span {
        ids.get(span.parent_span_id.as_str())
            .unwrap_or_else(|| panic!("the parent of {span:?} was not exported"))
    };
    for span in trace.iter().filter(|s| s.name != "call") {
        parent(span);
    }

    // The answer, with its Graph request inside.
    let answer = trace.iter().find(|s| s.name == "answer").expect("an answer span");
    assert_eq!(parent(answer).name, "call");
    let graph: Vec<&Span> = trace.iter().filter(|s| s.name == "graph_request").collect();
    let answer_request = graph
        .iter()
        .find(|s| s.parent_span_id == answer.span_id)
        .expect("the answer's Graph request is its child");
    assert_eq!(answer_request.attr("http.request.method"), Some("POST"));
    assert!(
        answer_request.attr("url.path").unwrap().ends_with("/answer"),
        "{answer_request:?}"
    );
    assert!(
        answer_request
            .attr("http.response.status_code")
            .is_some_and(|status| status.starts_with('2')),
        "{answer_request:?}"
    );
    let graph_host = emulator.graph_base_url();
    let graph_host = graph_host.split("://").nth(1).unwrap().split('/').next().unwrap();
    for request in &graph {
        assert_eq!(request.attr("server.address"), Some(graph_host), "{request:?}");
        assert!(request.attr("http.response.status_code").is_some(), "{request:?}");
    }

    // Both attempts: started (with the POST inside), then their outcomes.
    let started: Vec<&Span> = trace.iter().filter(|s| s.name == "transfer_attempt").collect();
    let phone = started
        .iter()
        .find(|s| s.attr("transfer.target_kind") == Some("phone"))
        .expect("the phone attempt");
    assert_eq!(phone.attr("transfer.mode"), Some("pstn"));
    assert_eq!(phone.attr("transfer.target"), Some(PHONE_TARGET_MASKED));
    assert_eq!(phone.attr("transfer.outcome"), Some("sent"));
    // A consultative attempt starts by placing the consultation call, and
    // sends its POST in a second span of the same attempt once that call answered.
    let user = started
        .iter()
        .find(|s| s.attr("transfer.target_kind") == Some("user") && s.attr("transfer.outcome") == Some("sent"))
        .expect("the user attempt's POST");
    assert_eq!(user.attr("transfer.mode"), Some(user_mode.as_str()));
    assert_eq!(user.attr("transfer.target"), Some(USER_TARGET));
    if user_mode == UserMode::Consultative {
        let consulting = started
            .iter()
            .find(|s| s.attr("transfer.outcome") == Some("consulting"))
            .expect("the consultation's span");
        assert_eq!(consulting.attr("transfer.mode"), Some("consultative"));
        assert_eq!(consulting.attr("transfer.attempt"), user.attr("transfer.attempt"));
        assert!(
            graph
                .iter()
                .any(|s| s.parent_span_id == consulting.span_id && s.attr("action") == Some("create_call")),
            "the consultation call is placed inside {consulting:?}"
        );
    }
    for attempt in [phone, user] {
        let post = graph
            .iter()
            .find(|s| s.parent_span_id == attempt.span_id && s.attr("action") == Some("transfer"))
            .unwrap_or_else(|| panic!("no POST /transfer inside {attempt:?}"));
        assert!(post.attr("url.path").unwrap().ends_with("/transfer"));
    }
    let outcomes: Vec<&Span> = trace.iter().filter(|s| s.name == "transfer_outcome").collect();
    let failed = outcomes
        .iter()
        .find(|s| s.attr("transfer.outcome") == Some("failed"))
        .expect("the phone attempt's failure");
    assert_eq!(failed.attr("transfer.target_kind"), Some("phone"));
    assert_eq!(failed.attr("transfer.attempt"), phone.attr("transfer.attempt"));
    assert!(
        !failed.attr("transfer.cause").unwrap_or_default().is_empty(),
        "{failed:?}"
    );
    let completed = outcomes
        .iter()
        .find(|s| s.attr("transfer.outcome") == Some("completed"))
        .expect("the user attempt's completion");
    assert_eq!(completed.attr("transfer.attempt"), user.attr("transfer.attempt"));

    // Hooks: the outcome hooks run inside their outcome's span.
    let hook = |name: &str| -> Vec<&Span> {
        trace
            .iter()
            .filter(|s| s.name == "hook" && s.attr("hook") == Some(name))
            .collect()
    };
    assert!(!hook("on_incoming_call").is_empty(), "{names:?}");
    for span in hook("on_incoming_call") {
        assert_eq!(span.attr("hook.outcome"), Some("ok"));
        assert_eq!(parent(span).name, "call");
    }
    let on_failed = hook("on_transfer_failed");
    assert!(
        on_failed.iter().any(|s| s.parent_span_id == failed.span_id),
        "{on_failed:?}"
    );
    let on_completed = hook("on_transfer_completed");
    assert!(
        on_completed.iter().any(|s| s.parent_span_id == completed.span_id),
        "{on_completed:?}"
    );

    // No number leaves the bot unmasked, in any attribute of any span.
    let text = String::from_utf8_lossy(raw);
    for number in [CALLER_NUMBER, PHONE_TARGET] {
        let digits = number.trim_start_matches('+');
        assert!(!text.contains(digits), "{number} was exported");
    }
    assert!(text.contains(PHONE_TARGET_MASKED));
    trace
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_spans_are_exported_as_one_trace_named_by_its_chain_id() {
    let receiver = CallbackReceiver::start().await;
    let emulator = emulator(TargetBehavior::Accept).await;
    let secret = emulator.default_app().client_secret;
    let port = free_port().unwrap();
    let callback = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
    let config = config(
        &emulator,
        port,
        &callback,
        "kind = \"memory\"",
        &receiver,
        UserMode::Consultative,
    );
    let mut bot = spawn("otel", &config, &secret).await;

    let call = place_call(&emulator, &callback).await;
    // Nothing yet: the batch timer is longer than the test.
    assert!(receiver.received_on("/v1/traces").is_empty());
    let status = bot.terminate(TERMINATE_TIMEOUT).await.unwrap();
    assert!(status.success(), "{status}; log:\n{}", bot.log_tail(20));

    let (spans, raw) = exported_spans(&receiver);
    let trace = check_call_trace(&spans, &raw, &emulator, &call, UserMode::Consultative);
    assert!(
        trace.iter().all(|s| s.name != "store_commit"),
        "the memory store makes no commit spans"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_every_instances_spans_join_the_calls_trace_with_its_commits() {
    let receiver = CallbackReceiver::start().await;
    // The user answers late, so its outcome reaches an instance with no lease held.
    let emulator = emulator(TargetBehavior::AcceptAfter {
        after: Duration::from_millis(500),
    })
    .await;
    let secret = emulator.default_app().client_secret;
    let redis = RedisServer::start();
    let proxy = RoundRobinProxy::start(Vec::new()).await.unwrap();
    let callback = format!("{}{CALLBACK_PATH}", proxy.url());
    let prefix = format!("otel-{}-{:08x}", std::process::id(), rand::random::<u32>());
    let mut bots = Vec::new();
    for name in ["otel-a", "otel-b"] {
        let store = format!(
            "kind = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"{prefix}\"\ninstance_id = \"{name}\"",
            redis.url()
        );
        let config = config(
            &emulator,
            free_port().unwrap(),
            &callback,
            &store,
            &receiver,
            UserMode::Blind,
        );
        bots.push(spawn(name, &config, &secret).await);
    }
    // Instance a answers and starts the first attempt; every notification
    // after that goes to b, which takes the call once a has let it go.
    proxy.set_upstreams(vec![bots[0].base_url()]);
    let call = offer_call(&emulator, &callback).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !emulator
        .requests()
        .iter()
        .any(|r| r.endpoint == Endpoint::Transfer && r.call_id.as_ref() == Some(&call))
    {
        assert!(tokio::time::Instant::now() < deadline, "no transfer was sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.set_upstreams(vec![bots[1].base_url()]);
    wait_for_end(&emulator, &call).await;
    for bot in &mut bots {
        let status = bot.terminate(TERMINATE_TIMEOUT).await.unwrap();
        assert!(status.success(), "{status}; log:\n{}", bot.log_tail(20));
    }

    let (spans, raw) = exported_spans(&receiver);
    let trace = check_call_trace(&spans, &raw, &emulator, &call, UserMode::Blind);
    let instances: BTreeSet<&str> = trace
        .iter()
        .filter(|s| s.name == "call")
        .filter_map(|s| s.resource.get("service.instance.id").map(String::as_str))
        .collect();
    assert_eq!(
        instances,
        BTreeSet::from(["otel-a", "otel-b"]),
        "both instances handled the call, in its one trace"
    );
    // No instance exported a call span outside the trace (a notification it
    // only handed to the holder makes none).
    let stray: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "call" && !trace.iter().any(|t| t.span_id == s.span_id))
        .collect();
    assert!(stray.is_empty(), "call spans outside the call's trace: {stray:?}");
    let commits: Vec<&Span> = trace.iter().filter(|s| s.name == "store_commit").collect();
    assert!(!commits.is_empty(), "no commit spans");
    for commit in &commits {
        assert_eq!(commit.attr("db.system.name"), Some("redis"));
        assert_eq!(commit.attr("call_id"), Some(call.dashed().as_str()));
        assert!(commit.attr("commit.outcome").is_some(), "{commit:?}");
    }
    assert!(commits.iter().any(|c| c.attr("commit.outcome") == Some("committed")));
    emulator.shutdown().await;
}
