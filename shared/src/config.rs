//! Plugin configuration: the JSON that Envoy's `configuration` field or Istio's `pluginConfig`
//! delivers. Two stages: serde checks the shape (every struct `deny_unknown_fields`), then each
//! filter compiles it into a checked, immutable config. Either stage fails with a [`ConfigError`]
//! naming the field, logged once, and the root context refuses to start.

use crate::json_path;
use serde::de::DeserializeOwned;
use std::fmt;

/// A rejected configuration: which field (a JSON path such as `rules[2].capacity`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Puts `prefix` in front of the field path: `rules[2]` + `capacity` → `rules[2].capacity`.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = join_path(prefix, &self.field);
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Joins JSON path segments the way the errors print them (`a.b`, `a[2]`).
pub fn join_path(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if field.starts_with('[') => format!("{prefix}{field}"),
        (false, false) => format!("{prefix}.{field}"),
    }
}

/// The one header-name rule of every filter: an RFC 9110 token in lower case (how Envoy and
/// HTTP/2 carry names), never a pseudo-header.
pub fn header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    let token =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.is_empty() && name.bytes().all(token) {
        Ok(name.to_string())
    } else {
        Err(ConfigError::new(field, "must be a lower-case header name"))
    }
}

/// The one name rule of every filter, for what names metrics and rules (providers, rules,
/// API-key sets): 1-64 characters of a-z, 0-9, `_` or `-`, so a metric name built from it is
/// the same in Envoy's stats and in Prometheus.
pub fn name(field: &str, name: &str) -> Result<String, ConfigError> {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    if !name.is_empty() && name.len() <= 64 && name.bytes().all(ok) {
        Ok(name.to_string())
    } else {
        Err(ConfigError::new(
            field,
            "must be 1-64 characters of a-z, 0-9, '_' or '-'",
        ))
    }
}

/// Parses the plugin configuration. Absent or blank bytes mean `{}`, i.e. every documented
/// default. The error's field is the JSON path where serde stopped.
pub fn parse<T: DeserializeOwned>(bytes: Option<&[u8]>) -> Result<T, ConfigError> {
    let bytes = match bytes {
        Some(b) if !b.iter().all(u8::is_ascii_whitespace) => b,
        _ => b"{}".as_slice(),
    };
    // Serde would accept a struct written as an array; a plugin configuration is an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ConfigError::new(
            "",
            "the configuration must be a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|err| {
        let offset = json_path::offset_of(bytes, err.line(), err.column());
        ConfigError::new(json_path::path_at(bytes, offset), serde_reason(&err))
    })
}

/// serde_json's message without its " at line 1 column 9" suffix: the path says where.
fn serde_reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text.get(..at).unwrap_or(&text).to_string(),
        None => text,
    }
}

/// Parses and compiles a filter's configuration; on error logs one line naming the field and
/// returns `None` so the root context can return `false` from `on_configure`.
pub fn load<T, C>(
    filter: &str,
    bytes: Option<&[u8]>,
    compile: impl FnOnce(T) -> Result<C, ConfigError>,
) -> Option<C>
where
    T: DeserializeOwned,
{
    match parse(bytes).and_then(compile) {
        Ok(config) => Some(config),
        Err(err) => {
            log::error!(
                "wasmgate {filter}: invalid plugin configuration: {}",
                err.within(filter)
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        ratio: f64,
        rules: Vec<Rule>,
    }

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        capacity: u32,
    }

    #[test]
    fn empty_or_blank_configuration_means_defaults() {
        for bytes in [None, Some(&b""[..]), Some(&b" \n"[..])] {
            assert_eq!(parse::<Sample>(bytes), Ok(Sample::default()));
        }
    }

    #[test]
    fn unknown_field_is_named_with_its_path() {
        let err = parse::<Sample>(Some(br#"{"rules":[{"capacity":1},{"capacty":2}]}"#))
            .err()
            .unwrap_or_else(|| ConfigError::new("?", "parsed"));
        assert_eq!(err.field, "rules[1].capacty");
        assert!(err.reason.starts_with("unknown field `capacty`"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_field_without_line_numbers() {
        let err = parse::<Sample>(Some(br#"{"ratio":"high"}"#))
            .err()
            .unwrap_or_else(|| ConfigError::new("?", "parsed"));
        assert_eq!(err.field, "ratio");
        assert_eq!(err.reason, "invalid type: string \"high\", expected f64");
    }

    #[test]
    fn trailing_garbage_and_non_objects_are_rejected() {
        assert!(parse::<Sample>(Some(b"{} x")).is_err());
        assert!(parse::<Sample>(Some(b"[1]")).is_err());
    }

    #[test]
    fn names_are_lower_case_and_bounded() {
        assert_eq!(name("n", "per-user_2"), Ok("per-user_2".to_string()));
        for bad in ["", "Per-User", "a.b", "a b", &"x".repeat(65)] {
            assert!(name("n", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn within_prefixes_the_path() {
        let err = ConfigError::new("rules[2].capacity", "must be > 0").within("ratelimit");
        assert_eq!(err.to_string(), "ratelimit.rules[2].capacity: must be > 0");
        assert_eq!(join_path("a", "[1]"), "a[1]");
        assert_eq!(join_path("", "x"), "x");
    }

    #[test]
    fn load_returns_none_on_compile_error() {
        let out: Option<u32> = load::<Sample, u32>("t", None, |_| Err(ConfigError::new("x", "no")));
        assert_eq!(out, None);
    }
}
