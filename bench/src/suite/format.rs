//! Figures as the report shows them: medians with their range, ratios,
//! microseconds, verdicts and the servers' labels.

use serde_json::Value;

use crate::server::Mode;

/// The median of repeated measurements and their range.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spread {
    pub(super) median: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

impl Spread {
    pub(super) fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        Self {
            median: median(values.clone()),
            min: values.iter().copied().reduce(f64::min).unwrap_or(f64::NAN),
            max: values.iter().copied().reduce(f64::max).unwrap_or(f64::NAN),
        }
    }

    /// `median (min-max)`, each divided by `scale` and shown with `decimals`.
    pub(super) fn show(&self, scale: f64, decimals: usize, unit: &str) -> String {
        if !self.median.is_finite() {
            return "n/a".into();
        }
        format!(
            "{:.d$}{unit} ({:.d$}-{:.d$})",
            self.median / scale,
            self.min / scale,
            self.max / scale,
            d = decimals
        )
    }
}

pub(super) fn ratio(value: f64, baseline: f64) -> String {
    if baseline > 0.0 && value.is_finite() {
        format!("{:.2}x", value / baseline)
    } else {
        "n/a".into()
    }
}

pub(super) fn us(ns: &Value) -> String {
    ns.as_f64()
        .map_or_else(|| "n/a".into(), |v| format!("{:.0} µs", v / 1000.0))
}

pub(super) fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**MISSED**" }
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub(super) fn label(mode: Mode) -> &'static str {
    match mode {
        Mode::Bare => "bare axum handler (baseline)",
        Mode::Full => "full path, token cache on",
        Mode::Uncached => "full path, token cache off (RSA per request)",
        Mode::Redis => "full path, calls shared through Redis",
    }
}
