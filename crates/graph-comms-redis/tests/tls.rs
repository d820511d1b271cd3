//! `RedisCallStore` over TLS (`rediss://`), as Azure Cache for Redis (port
//! 6380) and Azure Managed Redis (port 10000) serve it: a private
//! `redis-server` with a TLS port and certificates made by the test, the
//! store contracts run over it, and the refusals a misconfiguration gets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use graph_comms_redis::{ConnectError, RedisCallStore, RedisStoreConfig, RedisTls};
use graph_comms_testkit::records::unique_call_id;
use graph_comms_testkit::{RedisServer, TestPki, shared_contract, store_contract};

struct TlsRedis {
    server: RedisServer,
    pki: TestPki,
    _dir: tempfile::TempDir,
}

fn tls_redis(clients_need_certificates: bool) -> TlsRedis {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate().expect("test certificates");
    let files = pki.write_to(dir.path()).unwrap();
    TlsRedis {
        server: RedisServer::start_tls(&files, clients_need_certificates),
        pki,
        _dir: dir,
    }
}

fn config(url: &str, tag: &str) -> RedisStoreConfig {
    RedisStoreConfig::new(url).prefix(format!("tls:{}", unique_call_id(tag)))
}

/// On the TLS Redis `scripts/test.sh` starts (certificates made by openssl),
/// else on one this test starts (certificates made by the test kit).
#[tokio::test]
async fn every_store_contract_holds_over_tls_with_the_configured_ca() {
    let (url, ca_pem, _private) = match graph_comms_testkit::shared_tls_redis() {
        Some((url, ca_pem)) => (url, ca_pem, None),
        None => {
            let redis = tls_redis(false);
            let url = redis.server.tls_url().unwrap();
            let ca_pem = redis.pki.ca_cert.clone();
            (url, ca_pem, Some(redis))
        }
    };
    assert!(url.starts_with("rediss://"), "{url}");
    let tls = RedisTls::new().ca_pem(ca_pem.as_bytes());
    let store = RedisCallStore::connect(config(&url, "contract").tls(tls.clone()))
        .await
        .expect("a TLS connection trusting the test CA");
    store_contract::run_all(Arc::new(store)).await;
    let shared = RedisCallStore::connect(config(&url, "shared").tls(tls)).await.unwrap();
    shared_contract::run_all(Arc::new(shared)).await;
}

#[tokio::test]
async fn a_server_whose_certificate_no_trusted_ca_signed_is_refused() {
    let redis = tls_redis(false);
    let url = redis.server.tls_url().unwrap();
    // The system's roots do not include the test CA.
    let error = RedisCallStore::connect(config(&url, "untrusted")).await.unwrap_err();
    assert!(matches!(error, ConnectError::Unavailable(_)), "{error}");
    // Another CA's certificate is no better.
    let other = TestPki::generate().unwrap();
    let tls = RedisTls::new().ca_pem(other.ca_cert.as_bytes());
    let error = RedisCallStore::connect(config(&url, "other-ca").tls(tls))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::Unavailable(_)), "{error}");
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let redis = tls_redis(true);
    let url = redis.server.tls_url().unwrap();
    let ca_only = RedisTls::new().ca_pem(redis.pki.ca_cert.as_bytes());
    let error = RedisCallStore::connect(config(&url, "no-client-cert").tls(ca_only.clone()))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::Unavailable(_)), "{error}");
    let with_identity = ca_only.client_identity(redis.pki.client_cert.as_bytes(), redis.pki.client_key.as_bytes());
    let store = RedisCallStore::connect(config(&url, "client-cert").tls(with_identity))
        .await
        .expect("mutual TLS with the client certificate");
    store_contract::load_returns_what_was_saved(Arc::new(store)).await;
}

#[tokio::test]
async fn an_acl_user_and_password_in_the_url_authenticate_over_tls() {
    let redis = tls_redis(false);
    // An ACL user that may run what the store needs, on the plain port.
    let admin = redis::Client::open(redis.server.url()).unwrap();
    let mut connection = admin.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "bot", "on", ">s3cret-pass", "~*", "+@all"][..])
        .query_async(&mut connection)
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "requirepass", "default-pass"][..])
        .query_async(&mut connection)
        .await
        .unwrap();
    let port = redis.server.tls_url().unwrap();
    let port = port.trim_start_matches("rediss://127.0.0.1:").trim_end_matches('/');
    let tls = RedisTls::new().ca_pem(redis.pki.ca_cert.as_bytes());
    let good = format!("rediss://bot:s3cret-pass@127.0.0.1:{port}/");
    let store = RedisCallStore::connect(config(&good, "acl").tls(tls.clone()))
        .await
        .expect("the ACL user authenticates");
    store_contract::load_returns_what_was_saved(Arc::new(store)).await;
    let bad = format!("rediss://bot:wrong@127.0.0.1:{port}/");
    let error = RedisCallStore::connect(config(&bad, "acl-bad").tls(tls))
        .await
        .unwrap_err();
    assert!(!error.to_string().contains("wrong"), "the password leaked: {error}");
}

#[test]
fn tls_settings_with_a_plain_url_are_a_configuration_error() {
    let tls = RedisTls::new().ca_pem(b"-----BEGIN CERTIFICATE-----".to_vec());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let error = runtime
        .block_on(RedisCallStore::connect(
            config("redis://127.0.0.1:1/", "plain").tls(tls),
        ))
        .unwrap_err();
    assert!(
        matches!(error, ConnectError::InvalidConfig(ref m) if m.contains("rediss://")),
        "{error}"
    );
}

/// A Redis Cluster over TLS (Azure Managed Redis serves its OSS-policy
/// cluster only so): every node's certificate is checked against the
/// configured CA, and the contracts hold across the nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_contract_holds_on_a_redis_cluster_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate().expect("test certificates");
    let files = pki.write_to(dir.path()).unwrap();
    let cluster = tokio::task::spawn_blocking(move || graph_comms_testkit::RedisCluster::start_tls(&files))
        .await
        .unwrap();
    let seeds = cluster.urls();
    assert!(seeds.iter().all(|url| url.starts_with("rediss://")), "{seeds:?}");
    let cluster_config =
        |tag: &str| RedisStoreConfig::cluster(seeds.clone()).prefix(format!("tls:{}", unique_call_id(tag)));

    // The system's roots do not include the test CA.
    let error = RedisCallStore::connect(cluster_config("untrusted")).await.unwrap_err();
    assert!(matches!(error, ConnectError::Unavailable(_)), "{error}");

    let tls = RedisTls::new().ca_pem(pki.ca_cert.as_bytes());
    let store = RedisCallStore::connect(cluster_config("contract").tls(tls.clone()))
        .await
        .expect("a TLS cluster connection trusting the test CA");
    assert!(store.connection().is_cluster());
    store_contract::run_all(Arc::new(store)).await;
    let shared = RedisCallStore::connect(cluster_config("shared").tls(tls))
        .await
        .unwrap();
    shared_contract::run_all(Arc::new(shared)).await;
    drop(cluster);
}
