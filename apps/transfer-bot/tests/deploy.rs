//! The deployment files (`deploy/Dockerfile`, `deploy/kubernetes/*.yaml`)
//! agree with the app: the ConfigMap's configuration loads with the
//! environment the Deployment gives it, the ports and probe paths are the
//! ones the app serves, the image runs the production build as the user the
//! pod expects, and the grace period outlasts the drain. Building the image
//! needs a container engine and a registry, which this machine does not
//! have; this test keeps the files from drifting instead.
// figment's Jail closures return figment::Error, which is large.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

use std::time::Duration;

use figment::Jail;
use transfer_bot::config::{Config, StoreBackend};
use transfer_bot::server::{HEALTH_PATH, READY_PATH};

const DOCKERFILE: &str = include_str!("../../../deploy/Dockerfile");
const CONFIGMAP: &str = include_str!("../../../deploy/kubernetes/configmap.yaml");
const DEPLOYMENT: &str = include_str!("../../../deploy/kubernetes/deployment.yaml");
const SERVICE: &str = include_str!("../../../deploy/kubernetes/service.yaml");
const SECRET: &str = include_str!("../../../deploy/kubernetes/secret.example.yaml");
const KUSTOMIZATION: &str = include_str!("../../../deploy/kubernetes/kustomization.yaml");

/// The lines of the block under `key: |`, without its indentation.
fn literal_block(yaml: &str, key: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    assert!(lines.next().is_some(), "no `{key}: |` block");
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.starts_with("    "))
        .collect();
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.iter()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every value of `key: value` lines (quotes removed).
fn values<'a>(yaml: &'a str, key: &str) -> Vec<&'a str> {
    yaml.lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
        .collect()
}

/// `containerPort` by port name in the Deployment.
fn container_port(name: &str) -> u16 {
    let lines: Vec<&str> = DEPLOYMENT.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == format!("- name: {name}"))
        .unwrap_or_else(|| panic!("no container port named {name}"));
    lines[at + 1]
        .trim()
        .strip_prefix("containerPort:")
        .unwrap_or_else(|| panic!("port {name} has no containerPort"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_configmap_loads_with_the_deployments_environment_and_matches_its_ports() {
    let toml = literal_block(CONFIGMAP, "transfer-bot.toml");
    let env_vars: Vec<&str> = values(DEPLOYMENT, "name")
        .into_iter()
        .filter(|n| n.starts_with("TRANSFER_BOT_"))
        .collect();
    assert!(
        env_vars.contains(&"TRANSFER_BOT_STORE__REDIS_URL"),
        "the Redis URL comes from a Secret: {env_vars:?}"
    );
    Jail::expect_with(|jail| {
        jail.create_file("transfer-bot.toml", &toml)?;
        jail.create_file("federated-token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")?;
        for var in &env_vars {
            let value = match *var {
                "TRANSFER_BOT_STORE__REDIS_URL" => "rediss://:key@example.redis.cache.windows.net:6380/0",
                other => panic!("the Deployment sets {other}; give the test a value for it"),
            };
            jail.set_env(var, value);
        }
        // What AKS injects into pods labelled azure.workload.identity/use.
        assert!(DEPLOYMENT.contains("azure.workload.identity/use: \"true\""));
        jail.set_env("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000000");
        jail.set_env("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000000");
        jail.set_env("AZURE_FEDERATED_TOKEN_FILE", "federated-token");
        jail.set_env("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/");
        let config = Config::load(Some(std::path::Path::new("transfer-bot.toml")))
            .unwrap_or_else(|errors| panic!("the ConfigMap's configuration does not load: {errors}"));
        assert_eq!(config.listen.port(), container_port("webhook"));
        let admin = config.admin_listen.expect("the ConfigMap sets admin_listen");
        assert_eq!(admin.port(), container_port("admin"));
        assert!(matches!(&config.store.backend, StoreBackend::Redis(url) if url.is_tls()));
        // The root file system is read-only: the journal needs a mounted volume.
        let journal = config
            .store
            .outage_journal_dir
            .expect("the ConfigMap sets outage_journal_dir");
        assert!(
            values(DEPLOYMENT, "mountPath").contains(&journal.to_str().unwrap()),
            "{} is not a mounted volume",
            journal.display()
        );
        Ok(())
    });
}

#[test]
fn probes_use_the_admin_port_and_the_paths_the_app_serves() {
    let paths = values(DEPLOYMENT, "path");
    assert_eq!(paths, [READY_PATH, HEALTH_PATH], "readiness then liveness");
    let probe_ports: Vec<&str> = DEPLOYMENT
        .lines()
        .zip(DEPLOYMENT.lines().skip(1))
        .filter(|(l, _)| l.trim().starts_with("path:"))
        .map(|(_, next)| next.trim().trim_start_matches("port:").trim())
        .collect();
    assert_eq!(probe_ports, ["admin", "admin"]);
    // The public Service exposes the webhook only; the admin port (/metrics) has its own.
    let target_ports = values(SERVICE, "targetPort");
    assert_eq!(target_ports, ["webhook", "admin"]);
    let services = values(SERVICE, "name");
    assert_eq!(
        services[0], "transfer-bot",
        "the public Service comes first: {services:?}"
    );
    assert!(services.contains(&"transfer-bot-admin"), "{services:?}");
}

#[test]
fn the_image_runs_the_production_build_as_the_pods_user_with_the_mounted_config() {
    assert!(
        DOCKERFILE.contains("--no-default-features"),
        "no emulator or test kit in production"
    );
    assert!(DOCKERFILE.contains("-p transfer-bot"));
    let build = DOCKERFILE
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build line");
    // Trace export is built in (off until configured); the demo is not.
    assert!(build.contains("--features otlp"), "{build}");
    assert!(!build.contains("demo"), "{build}");
    let user = DOCKERFILE
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    let uid = user.split(':').next().unwrap().trim();
    assert_ne!(uid, "0", "the image runs as root");
    assert_eq!(values(DEPLOYMENT, "runAsUser"), [uid]);
    let exposed: Vec<u16> = DOCKERFILE
        .lines()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(|l| l.split_whitespace().map(|p| p.parse::<u16>().unwrap()))
        .collect();
    assert_eq!(exposed, [container_port("webhook"), container_port("admin")]);
    let mount = values(DEPLOYMENT, "mountPath");
    assert_eq!(mount.len(), 2, "the configuration and the outage journal: {mount:?}");
    let config_path = format!("{}/transfer-bot.toml", mount[0]);
    let entrypoint = DOCKERFILE
        .lines()
        .find(|l| l.starts_with("ENTRYPOINT"))
        .expect("an ENTRYPOINT");
    assert!(entrypoint.contains("\"serve\""), "{entrypoint}");
    assert!(
        entrypoint.contains(&format!("\"{config_path}\"")),
        "{entrypoint} vs {config_path}"
    );
}

#[test]
fn the_grace_period_outlasts_the_pause_and_the_drain() {
    let grace: u64 = values(DEPLOYMENT, "terminationGracePeriodSeconds")[0].parse().unwrap();
    let pause: u64 = values(DEPLOYMENT, "seconds")[0].parse().unwrap();
    let drain = graph_comms_handler::Timings::default().shutdown_deadline;
    assert!(
        Duration::from_secs(grace) > Duration::from_secs(pause) + drain,
        "{grace} s grace, {pause} s preStop, {drain:?} drain"
    );
    let replicas: u32 = values(DEPLOYMENT, "replicas")[0].parse().unwrap();
    assert_eq!(replicas, 3);
}

#[test]
fn the_secret_and_every_manifest_are_where_the_others_say() {
    let secret_names = values(DEPLOYMENT, "key");
    assert_eq!(secret_names, ["url"]);
    assert!(SECRET.contains("name: transfer-bot-redis") && SECRET.contains("url:"));
    assert!(DEPLOYMENT.contains("name: transfer-bot-redis"));
    for resource in KUSTOMIZATION.lines().filter_map(|l| l.trim().strip_prefix("- ")) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/kubernetes")
            .join(resource);
        assert!(path.exists(), "kustomization lists {resource}, which is missing");
    }
}
