//! Configuration loading: layering (defaults, file, environment with `__`
//! nesting), and one test per kind of validation error.
// figment's Jail closures return figment::Error, which is large.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

use std::path::Path;
use std::time::Duration;

use figment::Jail;
use transfer_bot::config::{
    Config, ConfigErrors, Credential, DEFAULT_CONFIG_FILE, LogFormat, SECRET_ENV, StoreBackend,
};
use transfer_bot::routing::{Destination, TransferMode};

const EXAMPLE: &str = include_str!("../transfer-bot.example.toml");

const MINIMAL: &str = r#"
tenant_id = "tenant-1"
app_id = "app-1"
public_callback_url = "https://bot.example.com/api/calls"

[[default_targets]]
kind = "user"
id = "operator"
"#;

fn load_errors(file: Option<&Path>) -> ConfigErrors {
    match Config::load(file) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(errors) => errors,
    }
}

fn problem(errors: &ConfigErrors, key: &str) -> String {
    errors
        .0
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.problem.clone())
        .unwrap_or_else(|| panic!("no error for {key}: {errors}"))
}

#[test]
fn the_example_file_parses_and_validates() {
    Jail::expect_with(|jail| {
        jail.create_file("example.toml", EXAMPLE)?;
        jail.set_env(SECRET_ENV, "s3cret");
        let config = Config::load(Some(Path::new("example.toml"))).unwrap();
        assert_eq!(config.app_id.as_str(), "66666666-7777-8888-9999-000000000000");
        assert_eq!(config.credential.secret().unwrap().expose(), "s3cret");
        assert_eq!(config.routing.routes.len(), 1);
        let sales = &config.routing.routes[0].targets;
        assert_eq!(sales[0].mode, TransferMode::Consultative);
        assert!(matches!(sales[1].destination, Destination::Phone(_)));
        assert_eq!(config.routing.default_targets.len(), 2);
        assert_eq!(config.keep_alive_interval, Duration::from_secs(900));
        assert!(config.apology_prompt_uri.is_some());
        assert_eq!(config.store.backend, StoreBackend::Memory);
        assert_eq!(config.store.key_prefix, "graph-comms");
        Ok(())
    });
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_CONFIG_FILE, MINIMAL)?;
        jail.set_env(SECRET_ENV, "s3cret");
        let config = Config::load(None).unwrap();
        assert_eq!(config.graph_base_url, "https://graph.microsoft.com/v1.0");
        assert_eq!(config.callback_path, "/api/calls");
        assert_eq!(config.listen.port(), 8080);
        assert_eq!(config.transfer_timeout, Duration::from_secs(60));
        assert_eq!(config.log_format, LogFormat::Plain);
        assert!(config.hold_prompt_uri.is_none());
        Ok(())
    });
}

#[test]
fn missing_keys_are_all_reported_by_name() {
    Jail::expect_with(|_jail| {
        // No file (the default one may be absent) and no environment.
        let errors = load_errors(None);
        for key in [
            "tenant_id",
            "app_id",
            "client_secret",
            "public_callback_url",
            "default_targets",
        ] {
            assert!(problem(&errors, key).contains("missing"), "{key}: {errors}");
        }
        Ok(())
    });
}

#[test]
fn an_explicit_config_file_must_exist() {
    Jail::expect_with(|_jail| {
        let errors = load_errors(Some(Path::new("nope.toml")));
        assert!(problem(&errors, "--config").contains("nope.toml"));
        Ok(())
    });
}

#[test]
fn bad_urls_name_their_key() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "bot.toml",
            &format!("graph_base_url = \"http://graph.example.com/v1.0\"\nhold_prompt_uri = \"not a url\"\n{MINIMAL}")
                .replace("https://bot.example.com/api/calls", "ftp://bot.example.com/x"),
        )?;
        jail.set_env(SECRET_ENV, "s3cret");
        let errors = load_errors(Some(Path::new("bot.toml")));
        assert!(problem(&errors, "graph_base_url").contains("https"));
        assert!(problem(&errors, "hold_prompt_uri").contains("not a valid URL"));
        assert!(problem(&errors, "public_callback_url").contains("ftp"));
        assert_eq!(errors.0.len(), 3, "{errors}");
        Ok(())
    });
}

#[test]
fn bad_e164_numbers_name_the_target() {
    Jail::expect_with(|jail| {
        let file = format!(
            "{MINIMAL}\n[[default_targets]]\nkind = \"phone\"\nid = \"4255550100\"\n\n[[default_targets]]\nkind = \"phone\"\nid = \"+0123\"\n"
        );
        jail.create_file("bot.toml", &file)?;
        jail.set_env(SECRET_ENV, "s3cret");
        let errors = load_errors(Some(Path::new("bot.toml")));
        assert!(problem(&errors, "default_targets[1].id").contains("E.164"));
        assert!(problem(&errors, "default_targets[2].id").contains("E.164"));
        // The rejected number itself stays out of the message.
        assert!(!errors.to_string().contains("4255550100"));
        Ok(())
    });
}

#[test]
fn a_secret_in_the_file_is_refused() {
    Jail::expect_with(|jail| {
        jail.create_file("bot.toml", &format!("client_secret = \"oops\"\n{MINIMAL}"))?;
        let errors = load_errors(Some(Path::new("bot.toml")));
        let why = problem(&errors, "client_secret");
        assert!(why.contains("must not be kept in the config file"), "{why}");
        assert!(!errors.to_string().contains("oops"));
        Ok(())
    });
}

#[test]
fn the_secret_can_come_from_a_file() {
    Jail::expect_with(|jail| {
        jail.create_file("secret.txt", "from-file\n")?;
        jail.create_file("bot.toml", &format!("client_secret_file = \"secret.txt\"\n{MINIMAL}"))?;
        let config = Config::load(Some(Path::new("bot.toml"))).unwrap();
        assert_eq!(config.credential.secret().unwrap().expose(), "from-file");
        // Both sources at once is ambiguous.
        jail.set_env(SECRET_ENV, "from-env");
        assert!(problem(&load_errors(Some(Path::new("bot.toml"))), "client_secret").contains("only one"));
        Ok(())
    });
}

#[test]
fn environment_overrides_the_file_with_nested_keys() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "bot.toml",
            &format!("{MINIMAL}\n[graph_client]\nrequest_timeout_secs = 30\nuser_agent = \"from-file\"\n"),
        )?;
        jail.set_env(SECRET_ENV, "s3cret");
        jail.set_env("TRANSFER_BOT_GRAPH_CLIENT__REQUEST_TIMEOUT_SECS", "7");
        jail.set_env("TRANSFER_BOT_TENANT_ID", "tenant-from-env");
        jail.set_env("TRANSFER_BOT_LOG_FORMAT", "json");
        jail.set_env("TRANSFER_BOT_APP_ID", "12345");
        let config = Config::load(Some(Path::new("bot.toml"))).unwrap();
        assert_eq!(config.graph_client.request_timeout, Duration::from_secs(7));
        assert_eq!(
            config.graph_client.user_agent, "from-file",
            "the rest of the table is kept"
        );
        assert_eq!(config.tenant_id.as_str(), "tenant-from-env");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.app_id.as_str(), "12345", "numeric-looking ids stay text");
        Ok(())
    });
}

#[test]
fn empty_target_lists_and_unknown_values_are_refused() {
    Jail::expect_with(|jail| {
        let file = r#"
tenant_id = "t"
app_id = "a"
public_callback_url = "https://bot.example.com/api/calls"
default_targets = []
listen = "nowhere"
log_format = "xml"
keep_alive_interval_secs = 3600
tenat_id = "typo"

[[routes]]
match_called_id = "sales"
targets = []

[[routes]]
match_called_id = "support"
targets = [{ kind = "robot", id = "r2" }, { kind = "user", id = "u", mode = "sideways" }]
"#;
        jail.create_file("bot.toml", file)?;
        jail.set_env(SECRET_ENV, "s3cret");
        let errors = load_errors(Some(Path::new("bot.toml")));
        assert!(problem(&errors, "default_targets").contains("empty"));
        assert!(problem(&errors, "routes[0].targets").contains("empty"));
        assert!(problem(&errors, "routes[1].targets[0].kind").contains("robot"));
        assert!(problem(&errors, "routes[1].targets[1].mode").contains("sideways"));
        assert!(problem(&errors, "listen").contains("socket address"));
        assert!(problem(&errors, "log_format").contains("xml"));
        assert!(problem(&errors, "keep_alive_interval_secs").contains("out of range"));
        assert!(problem(&errors, "tenat_id").contains("unknown"));
        Ok(())
    });
}

#[test]
fn the_store_defaults_to_memory() {
    Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_CONFIG_FILE, MINIMAL)?;
        jail.set_env(SECRET_ENV, "s3cret");
        let config = Config::load(None).unwrap();
        assert_eq!(config.store.backend, StoreBackend::Memory);
        assert_eq!(config.store.kind(), "memory");
        assert_eq!(config.store.key_prefix, "graph-comms");
        let id = &config.store.instance_id;
        assert!(!id.is_empty() && id.len() <= 64, "{id}");
        assert!(
            id.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
            "{id}"
        );
        Ok(())
    });
}

#[test]
fn a_redis_store_comes_from_the_file_and_the_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "bot.toml",
            &format!("{MINIMAL}\n[store]\nkind = \"redis\"\nkey_prefix = \"receptionist\"\n"),
        )?;
        jail.set_env(SECRET_ENV, "s3cret");
        jail.set_env(
            "TRANSFER_BOT_STORE__REDIS_URL",
            "redis://bot:hunter2@redis.internal:6380/3",
        );
        jail.set_env("TRANSFER_BOT_STORE__INSTANCE_ID", "12345");
        let config = Config::load(Some(Path::new("bot.toml"))).unwrap();
        let StoreBackend::Redis(url) = &config.store.backend else {
            panic!("expected redis: {:?}", config.store);
        };
        assert_eq!(url.expose(), "redis://bot:hunter2@redis.internal:6380/3");
        assert_eq!(config.store.key_prefix, "receptionist");
        assert_eq!(config.store.instance_id, "12345", "numeric-looking ids stay text");
        // The password shows nowhere in the printed configuration.
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("redis://bot:***@redis.internal:6380/3"), "{printed}");
        Ok(())
    });
}

#[test]
fn an_unknown_store_kind_is_refused() {
    Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_CONFIG_FILE, &format!("{MINIMAL}\n[store]\nkind = \"mysql\"\n"))?;
        jail.set_env(SECRET_ENV, "s3cret");
        let errors = load_errors(None);
        assert_eq!(problem(&errors, "store.kind"), "\"mysql\" is not one of memory, redis");
        assert_eq!(
            errors.to_string().lines().nth(1).unwrap().trim(),
            "- store.kind: \"mysql\" is not one of memory, redis"
        );
        Ok(())
    });
}

#[test]
fn a_redis_store_needs_its_url() {
    Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_CONFIG_FILE, MINIMAL)?;
        jail.set_env(SECRET_ENV, "s3cret");
        jail.set_env("TRANSFER_BOT_STORE__KIND", "redis");
        let errors = load_errors(None);
        assert!(problem(&errors, "store.redis_url").contains("missing"), "{errors}");
        assert_eq!(errors.0.len(), 1, "{errors}");
        jail.set_env("TRANSFER_BOT_STORE__REDIS_URL", "");
        assert!(problem(&load_errors(None), "store.redis_url").contains("empty"));
        Ok(())
    });
}

#[test]
fn bad_redis_urls_name_the_key_and_hide_the_password() {
    Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_CONFIG_FILE, &format!("{MINIMAL}\n[store]\nkind = \"redis\"\n"))?;
        jail.set_env(SECRET_ENV, "s3cret");
        for (url, expected) in [
            ("http://user:hunter2@redis.internal:6379/", "expected redis or rediss"),
            (
                "redis://:hunter2@redis.internal:6379/not-a-db",
                "not a usable Redis URL",
            ),
            ("redis://:hunter2@redis.internal:99999/", "not a valid URL"),
            ("redis.internal:6379", "expected redis or rediss"),
        ] {
            jail.set_env("TRANSFER_BOT_STORE__REDIS_URL", url);
            let errors = load_errors(None);
            let why = problem(&errors, "store.redis_url");
            assert!(why.contains(expected), "{url}: {why}");
            assert!(!errors.to_string().contains("hunter2"), "{url}: {errors}");
            assert_eq!(errors.0.len(), 1, "{url}: {errors}");
        }
        Ok(())
    });
}

#[test]
fn bad_key_prefixes_and_instance_ids_name_their_key() {
    Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_CONFIG_FILE, MINIMAL)?;
        jail.set_env(SECRET_ENV, "s3cret");
        for (prefix, expected) in [
            ("", "empty"),
            ("a{b}", "must not contain"),
            ("two words", "must not contain"),
        ] {
            jail.set_env("TRANSFER_BOT_STORE__KEY_PREFIX", prefix);
            let why = problem(&load_errors(None), "store.key_prefix");
            assert!(why.contains(expected), "{prefix:?}: {why}");
        }
        jail.set_env("TRANSFER_BOT_STORE__KEY_PREFIX", "ok");
        let long = "x".repeat(65);
        for (id, expected) in [
            ("", "empty"),
            (long.as_str(), "at most 64"),
            ("bot/1", "only letters, digits"),
            ("bot 1", "only letters, digits"),
        ] {
            jail.set_env("TRANSFER_BOT_STORE__INSTANCE_ID", id);
            let why = problem(&load_errors(None), "store.instance_id");
            assert!(why.contains(expected), "{id:?}: {why}");
        }
        jail.set_env("TRANSFER_BOT_STORE__INSTANCE_ID", "x".repeat(64));
        assert_eq!(Config::load(None).unwrap().store.instance_id.len(), 64);
        Ok(())
    });
}

#[test]
fn lease_times_outside_their_range_name_their_key() {
    Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_CONFIG_FILE, MINIMAL)?;
        jail.set_env(SECRET_ENV, "s3cret");
        for ms in ["0", "299", "300001"] {
            jail.set_env("TRANSFER_BOT_STORE__LEASE_TTL_MS", ms);
            let why = problem(&load_errors(None), "store.lease_ttl_ms");
            assert!(why.contains("outside 300..=300000"), "{ms}: {why}");
        }
        jail.set_env("TRANSFER_BOT_STORE__LEASE_TTL_MS", "2000");
        let config = Config::load(None).unwrap();
        assert_eq!(config.store.lease_ttl, std::time::Duration::from_secs(2));
        Ok(())
    });
}

#[test]
fn the_server_table_is_read_from_the_file_and_the_environment() {
    Jail::expect_with(|jail| {
        let file = format!("{MINIMAL}\n[server]\nheader_read_timeout_ms = 20000\n");
        jail.create_file(DEFAULT_CONFIG_FILE, &file)?;
        jail.set_env(SECRET_ENV, "s3cret");
        jail.set_env("TRANSFER_BOT_SERVER__MAX_CONNECTIONS", "64");
        let config = Config::load(None).unwrap();
        assert_eq!(config.server.header_read_timeout, Duration::from_secs(20));
        assert_eq!(config.server.request_timeout, Duration::from_secs(30));
        assert_eq!(config.server.max_connections, 64);
        jail.set_env("TRANSFER_BOT_SERVER__REQUEST_TIMEOUT_MS", "50");
        let why = problem(&load_errors(None), "server.request_timeout_ms");
        assert!(why.contains("outside 100..=600000"), "{why}");
        jail.set_env("TRANSFER_BOT_SERVER__REQUEST_TIMEOUT_MS", "1000");
        jail.set_env("TRANSFER_BOT_SERVER__MAX_REQUESTS", "1");
        assert!(load_errors(None).mentions("server.max_requests"));
        Ok(())
    });
}

#[test]
fn unknown_keys_in_the_store_table_are_refused() {
    Jail::expect_with(|jail| {
        jail.create_file(
            DEFAULT_CONFIG_FILE,
            &format!("{MINIMAL}\n[store]\nredis_uri = \"redis://h/\"\n"),
        )?;
        jail.set_env(SECRET_ENV, "s3cret");
        let errors = load_errors(None);
        assert!(
            problem(&errors, "store.redis_uri").contains("unknown field"),
            "{errors}"
        );
        Ok(())
    });
}

#[test]
fn a_redis_url_without_the_redis_kind_is_refused() {
    Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_CONFIG_FILE, MINIMAL)?;
        jail.set_env(SECRET_ENV, "s3cret");
        jail.set_env("TRANSFER_BOT_STORE__REDIS_URL", "redis://:hunter2@redis.internal:6379/");
        let errors = load_errors(None);
        assert!(
            problem(&errors, "store.redis_url").contains("store.kind is memory"),
            "{errors}"
        );
        assert!(!errors.to_string().contains("hunter2"));
        Ok(())
    });
}

const MENU: &str = r#"
[menu]
match_called_id = "front-desk"
prompt_uri = "https://bot.example.com/audio/menu.wav"
timeout_ms = 4000
reprompts = 2
operator_targets = [{ kind = "user", id = "operator" }]

[[menu.options]]
digit = "1"
targets = [{ kind = "user", id = "sales" }]

[[menu.options]]
digit = 2
targets = [{ kind = "user", id = "support" }, { kind = "phone", id = "+14255550100" }]
"#;

#[test]
fn a_menu_section_becomes_the_auto_attendant() {
    Jail::expect_with(|jail| {
        jail.create_file("bot.toml", &format!("{MINIMAL}\n{MENU}"))?;
        jail.set_env(SECRET_ENV, "s3cret");
        let config = Config::load(Some(Path::new("bot.toml"))).unwrap();
        let menu = config.menu.expect("the menu");
        assert_eq!(menu.match_called_id.as_deref(), Some("front-desk"));
        assert_eq!(menu.timeout, Duration::from_secs(4));
        assert_eq!(menu.reprompts, 2);
        let keys: Vec<char> = menu.options.iter().map(|o| o.key).collect();
        assert_eq!(keys, vec!['1', '2'], "a bare number is a key too");
        assert_eq!(menu.options[1].targets.len(), 2);
        assert_eq!(menu.operator.map(|o| o.len()), Some(1));
        Ok(())
    });
}

#[test]
fn an_invalid_menu_names_each_bad_key() {
    Jail::expect_with(|jail| {
        let menu = r#"
[menu]
prompt_uri = "not a url"
timeout_ms = 100
reprompts = 9

[[menu.options]]
digit = "12"
targets = [{ kind = "user", id = "a" }]

[[menu.options]]
digit = "3"
targets = []

[[menu.options]]
digit = "3"
targets = [{ kind = "user", id = "b" }]
"#;
        jail.create_file("bot.toml", &format!("{MINIMAL}\n{menu}"))?;
        jail.set_env(SECRET_ENV, "s3cret");
        let errors = load_errors(Some(Path::new("bot.toml")));
        assert!(
            problem(&errors, "menu.prompt_uri").contains("not a valid URL"),
            "{errors}"
        );
        assert!(problem(&errors, "menu.timeout_ms").contains("500..=60000"));
        assert!(problem(&errors, "menu.reprompts").contains("more than 5"));
        assert!(problem(&errors, "menu.options[0].digit").contains("one keypad key"));
        assert!(problem(&errors, "menu.options[1].targets").contains("empty"));
        assert!(problem(&errors, "menu.options[2].digit").contains("already used by menu.options[1]"));
        Ok(())
    });
}

#[test]
fn a_menu_longer_than_the_hook_timeout_is_refused() {
    Jail::expect_with(|jail| {
        let file =
            format!("hook_timeout_secs = 10\n{MINIMAL}\n{MENU}").replace("timeout_ms = 4000", "timeout_ms = 5000");
        jail.create_file("bot.toml", &file)?;
        jail.set_env(SECRET_ENV, "s3cret");
        let errors = load_errors(Some(Path::new("bot.toml")));
        assert!(
            problem(&errors, "menu.timeout_ms").contains("hook_timeout_secs"),
            "{errors}"
        );
        Ok(())
    });
}

#[test]
fn a_menu_without_options_is_refused() {
    Jail::expect_with(|jail| {
        let file = format!("{MINIMAL}\n[menu]\nprompt_uri = \"https://bot.example.com/m.wav\"\n");
        jail.create_file("bot.toml", &file)?;
        jail.set_env(SECRET_ENV, "s3cret");
        let errors = load_errors(Some(Path::new("bot.toml")));
        assert!(
            problem(&errors, "menu.options").contains("at least one option"),
            "{errors}"
        );
        Ok(())
    });
}

#[test]
fn allowed_tenants_must_be_tenant_ids() {
    Jail::expect_with(|jail| {
        let file = format!("allowed_tenants = [\"2b0f6a3e-6f2a-4f4e-9d1f-8c4f5e0b7a11\", \"contoso\"]\n{MINIMAL}");
        jail.create_file("bot.toml", &file)?;
        jail.set_env(SECRET_ENV, "s3cret");
        let errors = load_errors(Some(Path::new("bot.toml")));
        assert!(problem(&errors, "allowed_tenants[1]").contains("GUID"), "{errors}");
        assert_eq!(errors.0.len(), 1, "{errors}");

        jail.create_file("ok.toml", &file.replace(", \"contoso\"", ""))?;
        let config = Config::load(Some(Path::new("ok.toml"))).unwrap();
        assert_eq!(config.allowed_tenants.map(|t| t.len()), Some(1));
        Ok(())
    });
}

#[test]
fn a_consultative_phone_target_needs_the_resource_account() {
    Jail::expect_with(|jail| {
        let file = format!(
            "{MINIMAL}\n[[routes]]\nmatch_called_id = \"desk\"\ntargets = [{{ kind = \"user\", id = \"u\" }}, {{ kind = \"phone\", id = \"+14255550100\", mode = \"consultative\" }}]\n"
        );
        jail.create_file("bot.toml", &file)?;
        jail.set_env(SECRET_ENV, "s3cret");
        let errors = load_errors(Some(Path::new("bot.toml")));
        assert!(
            problem(&errors, "routes[0].targets[1].mode").contains("application_instance_id"),
            "{errors}"
        );
        assert_eq!(errors.0.len(), 1, "{errors}");

        jail.create_file(
            "ok.toml",
            &format!("application_instance_id = \"resource-account\"\n{file}"),
        )?;
        let config = Config::load(Some(Path::new("ok.toml"))).unwrap();
        assert_eq!(config.application_instance_id.as_deref(), Some("resource-account"));
        Ok(())
    });
}

/// A self-signed certificate and its PKCS#8 key, as one PEM text.
fn certificate_pem() -> String {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["bot.example.invalid".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    format!("{}{}", cert.pem(), key.serialize_pem())
}

#[test]
fn a_certificate_file_replaces_the_secret() {
    let pem = certificate_pem();
    Jail::expect_with(|jail| {
        jail.create_file("bot.pem", &pem)?;
        jail.create_file("bot.toml", &format!("client_certificate_file = \"bot.pem\"\n{MINIMAL}"))?;
        let config = Config::load(Some(Path::new("bot.toml"))).unwrap();
        assert!(matches!(config.credential, Credential::Certificate(_)));
        assert!(!format!("{config:?}").contains("PRIVATE KEY"), "the key is redacted");
        // A secret as well is ambiguous.
        jail.set_env(SECRET_ENV, "from-env");
        let why = problem(&load_errors(Some(Path::new("bot.toml"))), "client_certificate_file");
        assert!(why.contains("not both"), "{why}");
        Ok(())
    });
}

#[test]
fn an_unusable_certificate_file_names_the_key() {
    let pem = certificate_pem();
    let without_key = pem[..pem.find("-----BEGIN PRIVATE KEY").unwrap()].to_owned();
    Jail::expect_with(|jail| {
        jail.create_file("cert-only.pem", &without_key)?;
        jail.create_file(
            "bot.toml",
            &format!("client_certificate_file = \"cert-only.pem\"\n{MINIMAL}"),
        )?;
        let why = problem(&load_errors(Some(Path::new("bot.toml"))), "client_certificate_file");
        assert!(why.contains("PRIVATE KEY"), "{why}");
        jail.create_file(
            "bot.toml",
            &format!("client_certificate_file = \"missing.pem\"\n{MINIMAL}"),
        )?;
        let why = problem(&load_errors(Some(Path::new("bot.toml"))), "client_certificate_file");
        assert!(why.contains("cannot read missing.pem"), "{why}");
        Ok(())
    });
}

/// `rediss://` (TLS) is accepted, with the system's roots or a CA file; TLS
/// files need a `rediss://` URL and are read at start-up.
#[test]
fn tls_redis_settings_are_read_at_start_up_and_name_their_key() {
    Jail::expect_with(|jail| {
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        jail.create_file("ca.pem", ca)?;
        jail.create_file("not-pem.txt", "hello")?;
        jail.create_file(DEFAULT_CONFIG_FILE, &format!("{MINIMAL}\n[store]\nkind = \"redis\"\n"))?;
        jail.set_env(SECRET_ENV, "s3cret");
        jail.set_env(
            "TRANSFER_BOT_STORE__REDIS_URL",
            "rediss://:hunter2@redis.internal:6380/",
        );
        let config = transfer_bot::config::Config::load(None).expect("rediss:// loads");
        assert_eq!(config.store.tls, transfer_bot::config::StoreTls::default());
        assert!(!format!("{config:?}").contains("hunter2"));

        jail.set_env("TRANSFER_BOT_STORE__TLS_CA_FILE", "ca.pem");
        let config = transfer_bot::config::Config::load(None).expect("a CA file loads");
        assert_eq!(config.store.tls.ca_pem.as_deref(), Some(ca));

        jail.set_env("TRANSFER_BOT_STORE__TLS_CA_FILE", "not-pem.txt");
        let why = problem(&load_errors(None), "store.tls_ca_file");
        assert!(why.contains("no PEM"), "{why}");
        jail.set_env("TRANSFER_BOT_STORE__TLS_CA_FILE", "missing.pem");
        let why = problem(&load_errors(None), "store.tls_ca_file");
        assert!(why.contains("cannot read"), "{why}");

        jail.set_env("TRANSFER_BOT_STORE__TLS_CA_FILE", "ca.pem");
        jail.set_env("TRANSFER_BOT_STORE__TLS_CLIENT_CERT_FILE", "ca.pem");
        let why = problem(&load_errors(None), "store.tls_client_key_file");
        assert!(why.contains("needs its key"), "{why}");

        jail.set_env("TRANSFER_BOT_STORE__REDIS_URL", "redis://redis.internal:6379/");
        let why = problem(&load_errors(None), "store.tls_ca_file");
        assert!(why.contains("rediss://"), "{why}");
        Ok(())
    });
}

/// [`MINIMAL`] without `tenant_id` and `app_id`, which workload identity can supply.
fn minimal_without_ids() -> String {
    MINIMAL.replace("tenant_id = \"tenant-1\"\napp_id = \"app-1\"\n", "")
}

#[test]
fn a_client_assertion_file_is_a_federated_credential() {
    Jail::expect_with(|jail| {
        jail.create_file("token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n")?;
        jail.create_file("bot.toml", &format!("client_assertion_file = \"token\"\n{MINIMAL}"))?;
        let config = Config::load(Some(Path::new("bot.toml"))).unwrap();
        assert!(
            matches!(&config.credential, Credential::FederatedToken(path) if path == Path::new("token")),
            "{:?}",
            config.credential
        );
        assert!(config.credential.secret().is_none());
        assert_eq!(config.tenant_id.as_str(), "tenant-1");
        assert_eq!(config.login_base_url, "https://login.microsoftonline.com");
        // Checked at start-up: an empty or unreadable file names the key.
        jail.create_file("token", " \n")?;
        let why = problem(&load_errors(Some(Path::new("bot.toml"))), "client_assertion_file");
        assert!(why.contains("token (from client_assertion_file) is empty"), "{why}");
        jail.create_file("bot.toml", &format!("client_assertion_file = \"gone\"\n{MINIMAL}"))?;
        let why = problem(&load_errors(Some(Path::new("bot.toml"))), "client_assertion_file");
        assert!(why.contains("cannot read gone"), "{why}");
        Ok(())
    });
}

#[test]
fn workload_identity_takes_what_is_not_set_from_the_aks_environment() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file("azure-identity-token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")?;
        jail.create_file(
            "bot.toml",
            &format!("workload_identity = true\n{}", minimal_without_ids()),
        )?;
        jail.set_env("AZURE_CLIENT_ID", "aks-client-id");
        jail.set_env("AZURE_TENANT_ID", "aks-tenant-id");
        jail.set_env("AZURE_FEDERATED_TOKEN_FILE", "azure-identity-token");
        jail.set_env("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/");
        let config = Config::load(Some(Path::new("bot.toml"))).unwrap();
        assert_eq!(config.app_id.as_str(), "aks-client-id");
        assert_eq!(config.tenant_id.as_str(), "aks-tenant-id");
        assert!(
            matches!(&config.credential, Credential::FederatedToken(path) if path == Path::new("azure-identity-token")),
            "{:?}",
            config.credential
        );
        assert_eq!(config.login_base_url, "https://login.microsoftonline.us/");

        // Keys set explicitly win over the environment.
        jail.create_file("other-token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")?;
        jail.create_file(
            "bot.toml",
            &format!(
                "workload_identity = true\nclient_assertion_file = \"other-token\"\nlogin_base_url = \"https://login.example.com\"\n{MINIMAL}"
            ),
        )?;
        let config = Config::load(Some(Path::new("bot.toml"))).unwrap();
        assert_eq!(config.app_id.as_str(), "app-1");
        assert_eq!(config.tenant_id.as_str(), "tenant-1");
        assert!(matches!(&config.credential, Credential::FederatedToken(path) if path == Path::new("other-token")));
        assert_eq!(config.login_base_url, "https://login.example.com");

        // The switch can come from the environment too.
        jail.create_file("bot.toml", &minimal_without_ids())?;
        jail.set_env("TRANSFER_BOT_WORKLOAD_IDENTITY", "true");
        let config = Config::load(Some(Path::new("bot.toml"))).unwrap();
        assert_eq!(config.app_id.as_str(), "aks-client-id");
        Ok(())
    });
}

#[test]
fn workload_identity_without_its_environment_names_each_missing_key() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file(
            "bot.toml",
            &format!("workload_identity = true\n{}", minimal_without_ids()),
        )?;
        let errors = load_errors(Some(Path::new("bot.toml")));
        for (key, variable) in [
            ("tenant_id", "AZURE_TENANT_ID"),
            ("app_id", "AZURE_CLIENT_ID"),
            ("client_assertion_file", "AZURE_FEDERATED_TOKEN_FILE"),
        ] {
            let why = problem(&errors, key);
            assert!(why.contains("missing") && why.contains(variable), "{key}: {why}");
        }
        assert!(!errors.mentions("client_secret"), "{errors}");
        // An unreadable file named by the environment says where the path came from.
        jail.set_env("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/azure-identity-token");
        let why = problem(&load_errors(Some(Path::new("bot.toml"))), "client_assertion_file");
        assert!(why.contains("from AZURE_FEDERATED_TOKEN_FILE"), "{why}");
        // Without workload_identity the AKS variables are not read.
        jail.set_env("AZURE_CLIENT_ID", "aks-client-id");
        jail.set_env("AZURE_TENANT_ID", "aks-tenant-id");
        jail.create_file("token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")?;
        jail.create_file(
            "bot.toml",
            &format!("client_assertion_file = \"token\"\n{}", minimal_without_ids()),
        )?;
        let errors = load_errors(Some(Path::new("bot.toml")));
        assert_eq!(problem(&errors, "tenant_id"), "missing (required)");
        assert_eq!(problem(&errors, "app_id"), "missing (required)");
        Ok(())
    });
}

#[test]
fn exactly_one_credential_may_be_configured() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file("token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")?;
        jail.create_file("bot.toml", &format!("client_assertion_file = \"token\"\n{MINIMAL}"))?;
        jail.set_env(SECRET_ENV, "s3cret");
        let why = problem(&load_errors(Some(Path::new("bot.toml"))), "client_assertion_file");
        assert!(
            why.contains(SECRET_ENV) && why.contains("exactly one credential"),
            "{why}"
        );
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file(
            "bot.toml",
            &format!(
                "workload_identity = true\nclient_certificate_file = \"bot.pem\"\nclient_secret_file = \"secret\"\n{MINIMAL}"
            ),
        )?;
        let errors = load_errors(Some(Path::new("bot.toml")));
        let why = problem(&errors, "workload_identity");
        assert!(
            why.contains("client_secret_file and client_certificate_file are set"),
            "{why}"
        );
        assert_eq!(errors.0.len(), 1, "{errors}");
        // With none at all, the error lists every way to set one.
        jail.create_file("bot.toml", MINIMAL)?;
        let why = problem(&load_errors(Some(Path::new("bot.toml"))), "client_secret");
        assert!(
            why.contains("client_certificate_file, client_assertion_file or workload_identity = true"),
            "{why}"
        );
        Ok(())
    });
}

#[test]
fn a_redis_cluster_is_a_seed_url_in_database_zero_with_the_redis_kind() {
    Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_CONFIG_FILE, MINIMAL)?;
        jail.set_env(SECRET_ENV, "s3cret");
        jail.set_env("TRANSFER_BOT_STORE__REDIS_CLUSTER", "true");
        let why = problem(&load_errors(None), "store.redis_cluster");
        assert!(why.contains("store.kind is memory"), "{why}");

        jail.set_env("TRANSFER_BOT_STORE__KIND", "redis");
        jail.set_env(
            "TRANSFER_BOT_STORE__REDIS_URL",
            "rediss://:key@cache.example.net:10000/2",
        );
        let why = problem(&load_errors(None), "store.redis_url");
        assert!(why.contains("database 0 only") && !why.contains("key@"), "{why}");

        jail.set_env("TRANSFER_BOT_STORE__REDIS_URL", "rediss://:key@cache.example.net:10000");
        let config = Config::load(None).unwrap();
        assert!(config.store.redis_cluster);
        jail.set_env("TRANSFER_BOT_STORE__REDIS_CLUSTER", "false");
        assert!(!Config::load(None).unwrap().store.redis_cluster);
        Ok(())
    });
}
