//! The tracing plugin configuration: serde shape with documented defaults (`docs/tracing.md`),
//! then a compile step into a checked [`TracingConfig`] whose errors name the field.

use crate::sampling::Sampler;
use crate::{b3, propagation};
use serde::Deserialize;
use wasmgate_shared::ConfigError;

/// A trace context header format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// W3C Trace Context: `traceparent` and `tracestate`.
    W3c,
    /// Zipkin B3 single header: `b3`.
    B3,
    /// Zipkin B3 multi headers: `X-B3-TraceId`, `X-B3-SpanId`, ….
    B3multi,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTracingConfig {
    /// Formats read from requests, first valid one wins. Default `["w3c", "b3", "b3multi"]`.
    pub extract: Vec<Format>,
    /// Formats written upstream. Default `["w3c"]`.
    pub inject: Vec<Format>,
    /// Share of new traces (and of traces arriving without a decision) that are sampled.
    /// Default `1.0`.
    pub sampling_ratio: f64,
    /// Continue the caller's trace and keep its request id. Default `true`; set `false` at
    /// an edge that faces untrusted clients.
    pub trust_incoming: bool,
    /// With `trust_incoming: false`, the header that carries the client's own (valid) trace id
    /// upstream. Default none.
    pub client_trace_id_header: Option<String>,
    /// The request id header. Default `x-request-id`.
    pub request_id_header: String,
    /// Headers sent back to the client.
    pub response: RawResponseHeaders,
}

impl Default for RawTracingConfig {
    fn default() -> Self {
        Self {
            extract: vec![Format::W3c, Format::B3, Format::B3multi],
            inject: vec![Format::W3c],
            sampling_ratio: 1.0,
            trust_incoming: true,
            client_trace_id_header: None,
            request_id_header: "x-request-id".to_string(),
            response: RawResponseHeaders::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawResponseHeaders {
    /// Send `traceresponse: 00-<trace-id>-<gateway span-id>-<flags>`. Default `false`.
    pub traceresponse: bool,
    /// Header carrying the 32-hex trace id. Default none.
    pub trace_id_header: Option<String>,
    /// Header carrying the request id. Default none.
    pub request_id_header: Option<String>,
}

/// The checked configuration every request reads.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    pub extract: Vec<Format>,
    pub inject: Vec<Format>,
    pub sampler: Sampler,
    pub trust_incoming: bool,
    pub client_trace_id_header: Option<String>,
    /// Lower case, like every header name here.
    pub request_id_header: String,
    pub traceresponse: bool,
    pub response_trace_id_header: Option<String>,
    pub response_request_id_header: Option<String>,
}

impl TracingConfig {
    pub fn injects(&self, format: Format) -> bool {
        self.inject.contains(&format)
    }
}

impl RawTracingConfig {
    pub fn compile(self) -> Result<TracingConfig, ConfigError> {
        let extract = formats("extract", self.extract)?;
        let inject = formats("inject", self.inject)?;
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            return Err(ConfigError::new(
                "sampling_ratio",
                "must be between 0 and 1",
            ));
        }
        let client_trace_id_header = self
            .client_trace_id_header
            .map(|name| header_name("client_trace_id_header", &name))
            .transpose()?;
        if client_trace_id_header.is_some() && self.trust_incoming {
            return Err(ConfigError::new(
                "client_trace_id_header",
                "only applies with trust_incoming: false",
            ));
        }
        let optional =
            |field: &str, name: Option<String>| name.map(|n| header_name(field, &n)).transpose();
        Ok(TracingConfig {
            extract,
            inject,
            sampler: Sampler::new(self.sampling_ratio),
            trust_incoming: self.trust_incoming,
            client_trace_id_header,
            request_id_header: header_name("request_id_header", &self.request_id_header)?,
            traceresponse: self.response.traceresponse,
            response_trace_id_header: optional(
                "response.trace_id_header",
                self.response.trace_id_header,
            )?,
            response_request_id_header: optional(
                "response.request_id_header",
                self.response.request_id_header,
            )?,
        })
    }
}

fn formats(field: &str, list: Vec<Format>) -> Result<Vec<Format>, ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::new(field, "must name at least one format"));
    }
    for (i, format) in list.iter().enumerate() {
        if list.iter().take(i).any(|f| f == format) {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                "duplicate format",
            ));
        }
    }
    Ok(list)
}

/// The one header-name rule of every filter ([`wasmgate_shared::config::header_name`]), and
/// not a header the filter itself manages.
fn header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    let name = wasmgate_shared::config::header_name(field, name)?;
    let managed = [
        propagation::TRACEPARENT,
        propagation::TRACESTATE,
        b3::SINGLE,
    ];
    if managed.contains(&name.as_str()) || b3::MULTI.contains(&name.as_str()) {
        return Err(ConfigError::new(
            field,
            "must not be a trace context header",
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgate_shared::config::parse;

    fn compile(json: &str) -> Result<TracingConfig, ConfigError> {
        parse::<RawTracingConfig>(Some(json.as_bytes()))?.compile()
    }

    fn error(json: &str) -> String {
        match compile(json) {
            Ok(config) => panic!("{json} compiled to {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn empty_config_is_the_documented_defaults() {
        let config = compile("{}").unwrap();
        assert_eq!(config.extract, [Format::W3c, Format::B3, Format::B3multi]);
        assert_eq!(config.inject, [Format::W3c]);
        assert_eq!(config.sampler, Sampler::new(1.0));
        assert!(config.trust_incoming);
        assert_eq!(config.client_trace_id_header, None);
        assert_eq!(config.request_id_header, "x-request-id");
        assert!(!config.traceresponse);
        assert_eq!(config.response_trace_id_header, None);
        assert_eq!(config.response_request_id_header, None);
    }

    #[test]
    fn header_names_follow_the_one_rule_of_every_filter() {
        let err = compile(r#"{"request_id_header":"X-Request-Id"}"#).unwrap_err();
        assert_eq!(err.field, "request_id_header");
        assert_eq!(err.reason, "must be a lower-case header name");
    }

    #[test]
    fn full_config_compiles() {
        let config = compile(
            r#"{"extract":["b3multi","w3c"],"inject":["w3c","b3","b3multi"],"sampling_ratio":0.25,
                "trust_incoming":false,"client_trace_id_header":"x-client-trace-id",
                "request_id_header":"x-correlation-id",
                "response":{"traceresponse":true,"trace_id_header":"x-trace-id","request_id_header":"x-request-id"}}"#,
        )
        .unwrap();
        assert_eq!(config.extract, [Format::B3multi, Format::W3c]);
        assert!(config.injects(Format::B3) && config.injects(Format::B3multi));
        assert_eq!(config.sampler, Sampler::new(0.25));
        assert_eq!(
            config.client_trace_id_header.as_deref(),
            Some("x-client-trace-id")
        );
        assert_eq!(config.request_id_header, "x-correlation-id");
        assert!(config.traceresponse);
        assert_eq!(
            config.response_trace_id_header.as_deref(),
            Some("x-trace-id")
        );
        assert_eq!(
            config.response_request_id_header.as_deref(),
            Some("x-request-id")
        );
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (
                r#"{"extract":[]}"#,
                "extract: must name at least one format",
            ),
            (r#"{"inject":[]}"#, "inject: must name at least one format"),
            (
                r#"{"inject":["w3c","b3","w3c"]}"#,
                "inject[2]: duplicate format",
            ),
            (r#"{"extract":["b3","b3"]}"#, "extract[1]: duplicate format"),
            (
                r#"{"sampling_ratio":1.5}"#,
                "sampling_ratio: must be between 0 and 1",
            ),
            (
                r#"{"sampling_ratio":-0.1}"#,
                "sampling_ratio: must be between 0 and 1",
            ),
            (
                r#"{"request_id_header":""}"#,
                "request_id_header: must be a lower-case header name",
            ),
            (
                r#"{"request_id_header":"x id"}"#,
                "request_id_header: must be a lower-case header name",
            ),
            (
                r#"{"request_id_header":":path"}"#,
                "request_id_header: must be a lower-case header name",
            ),
            (
                r#"{"request_id_header":"traceparent"}"#,
                "request_id_header: must not be a trace context header",
            ),
            (
                r#"{"trust_incoming":false,"client_trace_id_header":"x-b3-traceid"}"#,
                "client_trace_id_header: must not be a trace context header",
            ),
            (
                r#"{"client_trace_id_header":"x-client-trace"}"#,
                "client_trace_id_header: only applies with trust_incoming: false",
            ),
            (
                r#"{"response":{"trace_id_header":"tracestate"}}"#,
                "response.trace_id_header: must not be a trace context header",
            ),
            (
                r#"{"response":{"request_id_header":"a/b"}}"#,
                "response.request_id_header: must be a lower-case header name",
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(error(json), expected, "{json}");
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        assert!(
            error(r#"{"inject":["jaeger"]}"#).starts_with("inject[0]: unknown variant `jaeger`")
        );
        assert!(
            error(r#"{"samplingratio":1}"#).starts_with(": unknown field `samplingratio`")
                || error(r#"{"samplingratio":1}"#).starts_with("samplingratio: unknown field")
        );
        assert!(error(r#"{"response":{"trace_id":"x"}}"#)
            .starts_with("response.trace_id: unknown field"));
        assert!(error(r#"{"sampling_ratio":"all"}"#).starts_with("sampling_ratio: invalid type"));
    }
}
