//! The tracing plugin configuration: serde shape with documented defaults (`docs/tracing.md`),
//! then a compile step into a checked [`TracingConfig`] whose errors name the field.

use crate::export_config::{ExportConfig, RawExport};
use crate::sampling::Sampler;
use crate::{b3, propagation};
use serde::Deserialize;
use wasmgate_shared::ConfigError;

/// Which W3C Trace Context rules `traceparent` and `tracestate` follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum W3cLevel {
    /// Trace Context Level 1 (2020): only the sampled flag; `tracestate` keys are
    /// `simple-key` or `tenant@system`; a duplicated key drops the list.
    One,
    /// Level 2: the random-trace-id flag; any key of `a-z0-9_-*/@` up to 256 characters;
    /// the first of duplicated keys is kept (the W3C test suite's strict mode).
    Two,
}

/// A trace context header format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawTracingConfig {
    /// The JSON Schema of this configuration (`docs/schemas/`), for editors; ignored.
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
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
    /// W3C Trace Context level, `1` or `2`. Default `2`.
    pub w3c_level: u8,
    /// Export the gateway's span over OTLP/HTTP. Default none (no export).
    pub export: Option<RawExport>,
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
            w3c_level: 2,
            export: None,
            schema: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    pub w3c_level: W3cLevel,
    pub export: Option<ExportConfig>,
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
        let w3c_level = match self.w3c_level {
            1 => W3cLevel::One,
            2 => W3cLevel::Two,
            _ => return Err(ConfigError::new("w3c_level", "must be 1 or 2")),
        };
        let export = self
            .export
            .map(|e| e.compile().map_err(|err| err.within("export")))
            .transpose()?;
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
            w3c_level,
            export,
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
        assert_eq!(config.w3c_level, W3cLevel::Two);
        assert_eq!(config.export, None);
    }

    #[test]
    fn export_defaults_and_fields() {
        let config = compile(r#"{"export":{"cluster":"otel"}}"#).unwrap();
        let export = config.export.unwrap();
        assert_eq!(export.cluster, "otel");
        assert_eq!(export.authority, "otel");
        assert_eq!(export.path, "/v1/traces");
        assert_eq!(export.service_name, "wasmgate");
        assert_eq!(export.batch_max_spans, 512);
        assert_eq!(export.batch_interval.as_millis(), 1000);
        assert_eq!(export.queue_max_spans, 2048);
        assert_eq!(export.timeout.as_millis(), 5000);
        assert!(export.headers.is_empty() && export.claims.is_empty());

        let config = compile(
            r#"{"w3c_level":1,"export":{"cluster":"otel","authority":"collector:4318",
                "path":"/otlp/v1/traces","service_name":"edge","batch_max_spans":10,
                "batch_interval_ms":200,"queue_max_spans":100,"timeout_ms":250,
                "headers":{"x-tenant":"acme"},"claims":["tenant"]}}"#,
        )
        .unwrap();
        assert_eq!(config.w3c_level, W3cLevel::One);
        let export = config.export.unwrap();
        assert_eq!(export.authority, "collector:4318");
        assert_eq!(export.headers, [("x-tenant".into(), "acme".into())]);
        assert_eq!(export.claims, ["tenant"]);
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
            (r#"{"w3c_level":3}"#, "w3c_level: must be 1 or 2"),
            (
                r#"{"export":{}}"#,
                "export.cluster: must name the collector's cluster",
            ),
            (
                r#"{"export":{"cluster":"c","path":"v1/traces"}}"#,
                "export.path: must be a path starting with '/'",
            ),
            (
                r#"{"export":{"cluster":"c","authority":"a b"}}"#,
                "export.authority: must be a host[:port]",
            ),
            (
                r#"{"export":{"cluster":"c","service_name":""}}"#,
                "export.service_name: must not be empty",
            ),
            (
                r#"{"export":{"cluster":"c","queue_max_spans":0}}"#,
                "export.queue_max_spans: must be between 1 and 16384",
            ),
            (
                r#"{"export":{"cluster":"c","queue_max_spans":10,"batch_max_spans":11}}"#,
                "export.batch_max_spans: must be between 1 and queue_max_spans",
            ),
            (
                r#"{"export":{"cluster":"c","batch_interval_ms":5}}"#,
                "export.batch_interval_ms: must be between 10 and 60000",
            ),
            (
                r#"{"export":{"cluster":"c","timeout_ms":0}}"#,
                "export.timeout_ms: must be between 1 and 60000",
            ),
            (
                r#"{"export":{"cluster":"c","headers":{"X-Key":"v"}}}"#,
                "export.headers.X-Key: must be a lower-case header name",
            ),
            (
                r#"{"export":{"cluster":"c","headers":{"content-type":"text/plain"}}}"#,
                "export.headers.content-type: is set by the exporter",
            ),
            (
                r#"{"export":{"cluster":"c","headers":{"x-key":"a\nb"}}}"#,
                "export.headers.x-key: must be printable ASCII",
            ),
            (
                r#"{"export":{"cluster":"c","claims":[""]}}"#,
                "export.claims[0]: must be a claim name of 1-64 characters",
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
