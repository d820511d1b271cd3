//! The `[telemetry]` table: OpenTelemetry trace export.

use super::raw::RawTelemetry;
use super::*;

/// The OTLP/HTTP path for traces, appended to a base endpoint.
const TRACES_PATH: &str = "/v1/traces";

pub(super) fn validate_telemetry(errors: &mut Vec<ConfigError>, raw: RawTelemetry) -> Option<TelemetrySettings> {
    let before = errors.len();
    let endpoint = raw.endpoint.map(|e| e.trim().to_owned()).and_then(|endpoint| {
        // Plain http is normal for a collector beside the bot (a sidecar, a
        // cluster service), so it is not limited to loopback as Graph's URLs are.
        match url::Url::parse(&endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(traces_url(&endpoint)),
            Ok(url) => {
                errors.push(err(
                    "telemetry.endpoint",
                    format!("{endpoint:?} has scheme {:?}; expected http or https", url.scheme()),
                ));
                None
            }
            Err(e) => {
                errors.push(err(
                    "telemetry.endpoint",
                    format!("{endpoint:?} is not a valid URL: {e}"),
                ));
                None
            }
        }
    });
    let service_name = raw.service_name.map(|n| n.trim().to_owned());
    if service_name.as_deref() == Some("") {
        errors.push(err("telemetry.service_name", "must not be empty"));
    }
    let headers = raw.headers.unwrap_or_default();
    for (name, value) in &headers {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
            errors.push(err(format!("telemetry.headers.{name}"), "is not a valid header name"));
        }
        if value.bytes().any(|b| b.is_ascii_control()) {
            // The value is not shown: it is usually a credential.
            errors.push(err(format!("telemetry.headers.{name}"), "has control characters"));
        }
    }
    if let Some(ratio) = raw.sample_ratio
        && !(0.0..=1.0).contains(&ratio)
    {
        errors.push(err(
            "telemetry.sample_ratio",
            format!("{ratio} is not between 0.0 and 1.0"),
        ));
    }
    (errors.len() == before).then_some(TelemetrySettings {
        enabled: raw.enabled,
        endpoint,
        service_name,
        headers,
        sample_ratio: raw.sample_ratio,
    })
}

/// `endpoint` with [`TRACES_PATH`], as `OTEL_EXPORTER_OTLP_ENDPOINT` is read.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        base.to_owned()
    } else {
        format!("{base}{TRACES_PATH}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_appended_once() {
        assert_eq!(traces_url("http://collector:4318"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("http://collector:4318/"), "http://collector:4318/v1/traces");
        assert_eq!(
            traces_url("https://c.example/otlp/v1/traces"),
            "https://c.example/otlp/v1/traces"
        );
    }

    #[test]
    fn bad_values_are_named_by_key() {
        let mut errors = Vec::new();
        let raw = RawTelemetry {
            endpoint: Some("ftp://collector".into()),
            service_name: Some(" ".into()),
            headers: Some(BTreeMap::from([("bad name".into(), "x".into())])),
            sample_ratio: Some(1.5),
            ..RawTelemetry::default()
        };
        assert!(validate_telemetry(&mut errors, raw).is_none());
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "telemetry.endpoint",
                "telemetry.service_name",
                "telemetry.headers.bad name",
                "telemetry.sample_ratio"
            ]
        );
    }
}
