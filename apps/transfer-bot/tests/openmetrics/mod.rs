//! A small, strict OpenMetrics text parser for the `/metrics` tests, and the
//! checks on label values that must hold for any scrape.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

/// One metric family: its `# TYPE`, and whether it has `# HELP` and `# UNIT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Family {
    pub(crate) kind: String,
    pub(crate) help: String,
    pub(crate) unit: Option<String>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    /// The family it belongs to.
    pub(crate) family: String,
    /// The sample's own name (`<family>_total`, `<family>_bucket`, ...).
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

/// A parsed exposition.
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    pub(crate) families: BTreeMap<String, Family>,
    pub(crate) samples: Vec<Sample>,
}

impl Scrape {
    /// The samples of one family.
    pub(crate) fn of<'a>(&'a self, family: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.family == family)
    }

    /// The sum of a family's samples named `name` (every label set).
    pub(crate) fn sum(&self, name: &str) -> f64 {
        self.samples.iter().filter(|s| s.name == name).map(|s| s.value).sum()
    }

    /// The value of the sample `name` with exactly these labels.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .map(|s| s.value)
    }
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if text.is_empty() || text.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E') => {
            Err(format!("not a number: {text:?}"))
        }
        _ => text.parse().map_err(|e| format!("not a number: {text:?} ({e})")),
    }
}

/// Label names and values, in order.
type Labels = Vec<(String, String)>;

/// `{a="x",b="y"}` at the start of `text`: the labels and the rest.
fn parse_labels(text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = text.strip_prefix('{').ok_or("labels must start with '{'")?;
    if let Some(after) = rest.strip_prefix('}') {
        return Ok((labels, after));
    }
    loop {
        let eq = rest.find('=').ok_or("a label without '='")?;
        let name = &rest[..eq];
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or("label values must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("an unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("a bad escape {other:?}")),
                },
                Some((_, '\n')) => return Err("a raw newline in a label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _): &(String, String)| n == name) {
            return Err(format!("label {name} twice"));
        }
        labels.push((name.to_owned(), value));
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        rest = rest.strip_prefix(',').ok_or("labels must be separated by ','")?;
    }
}

/// The sample names a family of this type may have.
fn sample_belongs(family: &str, kind: &str, sample: &str, labels: &[(String, String)]) -> bool {
    let suffix = sample.strip_prefix(family);
    match (kind, suffix) {
        ("counter", Some("_total" | "_created")) => true,
        ("gauge" | "unknown", Some("")) => true,
        ("info", Some("_info")) => true,
        ("histogram", Some("_bucket")) => labels.iter().any(|(n, _)| n == "le"),
        ("histogram", Some("_sum" | "_count" | "_created")) => true,
        _ => false,
    }
}

/// Parses an OpenMetrics text exposition strictly: descriptors (`# HELP`,
/// `# TYPE`, `# UNIT`) before their samples, one `# TYPE` and `# HELP` per
/// family, each sample named after the family it follows, valid names, quoted
/// and escaped label values, float values, no series twice, `# EOF` last.
pub(crate) fn parse(text: &str) -> Result<Scrape, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .ok_or("an OpenMetrics exposition ends with '# EOF'")?;
    let mut scrape = Scrape::default();
    let mut current: Option<String> = None;
    let mut pending_help: Option<(String, String)> = None;
    let mut series = BTreeSet::new();
    for (number, line) in body.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", number + 1);
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (keyword, name, rest) = (parts.next(), parts.next(), parts.next());
            let (Some(keyword), Some(name)) = (keyword, name) else {
                return Err(at("a bare comment".into()));
            };
            if !valid_metric_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            let rest = rest.unwrap_or_default();
            match keyword {
                "HELP" => {
                    if scrape.families.contains_key(name) || pending_help.is_some() {
                        return Err(at("a family twice, or HELP without its TYPE".into()));
                    }
                    if rest.trim().is_empty() {
                        return Err(at("empty HELP".into()));
                    }
                    pending_help = Some((name.to_owned(), rest.to_owned()));
                }
                "TYPE" => {
                    if !matches!(
                        rest,
                        "counter"
                            | "gauge"
                            | "histogram"
                            | "info"
                            | "unknown"
                            | "summary"
                            | "stateset"
                            | "gaugehistogram"
                    ) {
                        return Err(at(format!("unknown type {rest:?}")));
                    }
                    let help = match pending_help.take() {
                        Some((help_name, help)) if help_name == name => help,
                        _ => return Err(at("TYPE without a HELP just before it".into())),
                    };
                    if scrape.families.contains_key(name) {
                        return Err(at("a family twice".into()));
                    }
                    current = Some(name.to_owned());
                    scrape.families.insert(
                        name.to_owned(),
                        Family {
                            kind: rest.to_owned(),
                            help,
                            unit: None,
                        },
                    );
                }
                "UNIT" => {
                    let family = scrape
                        .families
                        .get_mut(name)
                        .filter(|_| current.as_deref() == Some(name))
                        .ok_or_else(|| at("UNIT before its TYPE".into()))?;
                    if !name.ends_with(&format!("_{rest}")) {
                        return Err(at("the family name must end with its unit".into()));
                    }
                    family.unit = Some(rest.to_owned());
                }
                other => return Err(at(format!("unknown descriptor {other:?}"))),
            }
            continue;
        }
        if pending_help.is_some() || line.starts_with('#') || line.is_empty() {
            return Err(at("not a sample or descriptor".into()));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !valid_metric_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("one space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap_or_default()).map_err(at)?;
        if let Some(extra) = fields.next() {
            // Only a timestamp may follow (no exemplars here).
            parse_value(extra).map_err(at)?;
            if fields.next().is_some() {
                return Err(at("trailing fields".into()));
            }
        }
        let family = current.clone().ok_or_else(|| at("a sample before any TYPE".into()))?;
        let kind = &scrape
            .families
            .get(&family)
            .ok_or_else(|| at(format!("family {family} has no TYPE")))?
            .kind;
        if !sample_belongs(&family, kind, name, &labels) {
            return Err(at(format!(
                "sample {name} does not belong to the {kind} family {family}"
            )));
        }
        let mut key: Vec<_> = labels.clone();
        key.sort();
        if !series.insert((name.to_owned(), key)) {
            return Err(at("a series twice".into()));
        }
        scrape.samples.push(Sample {
            family,
            name: name.to_owned(),
            labels,
            value,
        });
    }
    if let Some((name, _)) = pending_help {
        return Err(format!("HELP without TYPE for {name}"));
    }
    Ok(scrape)
}

/// Whether `value` holds `8-4-4-4-12` hex digits anywhere (a GUID: call,
/// user or tenant ids).
pub(crate) fn contains_guid(value: &str) -> bool {
    let bytes = value.as_bytes();
    let shape = [8, 4, 4, 4, 12];
    (0..bytes.len()).any(|start| {
        let mut i = start;
        for (n, len) in shape.iter().enumerate() {
            if n > 0 {
                if bytes.get(i) != Some(&b'-') {
                    return false;
                }
                i += 1;
            }
            for _ in 0..*len {
                if !bytes.get(i).is_some_and(u8::is_ascii_hexdigit) {
                    return false;
                }
                i += 1;
            }
        }
        true
    })
}

/// Label values that look like a phone number (7 or more digits) or a GUID.
pub(crate) fn identifying_label_values(scrape: &Scrape) -> Vec<String> {
    scrape
        .samples
        .iter()
        .flat_map(|s| s.labels.iter().map(move |(k, v)| (s, k, v)))
        .filter(|(_, _, v)| v.chars().filter(char::is_ascii_digit).count() >= 7 || contains_guid(v))
        .map(|(s, k, v)| format!("{}{{{k}={v:?}}}", s.name))
        .collect()
}

#[test]
fn the_parser_refuses_what_is_not_openmetrics() {
    let good = "# HELP a_b A.\n# TYPE a_b counter\na_b_total{x=\"1\"} 2\n# EOF\n";
    let scrape = parse(good).unwrap();
    assert_eq!(scrape.value("a_b_total", &[("x", "1")]), Some(2.0));
    for bad in [
        "# HELP a_b A.\n# TYPE a_b counter\na_b_total 2\n",
        "# TYPE a_b counter\na_b_total 2\n# EOF\n",
        "# HELP a_b A.\n# TYPE a_b counter\na_b 2\n# EOF\n",
        "# HELP a_b A.\n# TYPE a_b counter\na_b_total{x=1} 2\n# EOF\n",
        "# HELP a_b A.\n# TYPE a_b counter\na_b_total two\n# EOF\n",
        "# HELP a_b A.\n# TYPE a_b counter\na_b_total 2\na_b_total 3\n# EOF\n",
        "# HELP a_b A.\n# TYPE a_b counter\n# HELP a_b A.\n# TYPE a_b counter\n# EOF\n",
        "# HELP 1a A.\n# TYPE 1a gauge\n1a 2\n# EOF\n",
        "c 2\n# EOF\n",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
    assert!(contains_guid("call-72f988bf-86f1-41af-91ab-2d7cd011db47"));
    assert!(!contains_guid("72f988bf-86f1-41af-91ab"));
}
