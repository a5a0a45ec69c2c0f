//! Configuration of span export (`export` in the tracing config): where the OTLP/HTTP
//! collector is, how spans are batched, what a span may carry. Every field is documented in
//! docs/tracing.md with its default.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use wasmgate_shared::ConfigError;

pub const DEFAULT_PATH: &str = "/v1/traces";
pub const DEFAULT_SERVICE_NAME: &str = "wasmgate";
pub const DEFAULT_BATCH_MAX_SPANS: usize = 512;
pub const DEFAULT_BATCH_INTERVAL_MS: u64 = 1000;
pub const DEFAULT_QUEUE_MAX_SPANS: usize = 2048;
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// A worker's queue is bounded memory: at most this many spans wait (≈ 0.5 KiB each, at most
/// a few KiB: text attributes are cut at [`crate::otlp::MAX_TEXT_BYTES`]).
pub const MAX_QUEUE_SPANS: usize = 16_384;
pub const MAX_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawExport {
    /// The Envoy cluster of the OTLP/HTTP collector. Required.
    pub cluster: String,
    /// `:authority` of the export requests. Default: the cluster name.
    pub authority: Option<String>,
    pub path: String,
    /// Resource attribute `service.name`.
    pub service_name: String,
    pub batch_max_spans: usize,
    pub batch_interval_ms: u64,
    pub queue_max_spans: usize,
    pub timeout_ms: u64,
    /// Extra request headers for the collector (an API key, a tenant).
    pub headers: BTreeMap<String, String>,
    /// Top-level claims of the verified token copied to the span as
    /// `wasmgate.authn.claim.<name>` (gateway module only). Default none: a span carries no
    /// claim value unless it is named here.
    pub claims: Vec<String>,
}

impl Default for RawExport {
    fn default() -> Self {
        Self {
            cluster: String::new(),
            authority: None,
            path: DEFAULT_PATH.to_string(),
            service_name: DEFAULT_SERVICE_NAME.to_string(),
            batch_max_spans: DEFAULT_BATCH_MAX_SPANS,
            batch_interval_ms: DEFAULT_BATCH_INTERVAL_MS,
            queue_max_spans: DEFAULT_QUEUE_MAX_SPANS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            headers: BTreeMap::new(),
            claims: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub service_name: String,
    pub batch_max_spans: usize,
    pub batch_interval: Duration,
    pub queue_max_spans: usize,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
    pub claims: Vec<String>,
}

impl RawExport {
    pub fn compile(self) -> Result<ExportConfig, ConfigError> {
        if self.cluster.is_empty() {
            return Err(ConfigError::new(
                "cluster",
                "must name the collector's cluster",
            ));
        }
        let authority = self.authority.unwrap_or_else(|| self.cluster.clone());
        if authority.is_empty() || !authority.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new("authority", "must be a host[:port]"));
        }
        if !self.path.starts_with('/') || !self.path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new("path", "must be a path starting with '/'"));
        }
        if self.service_name.is_empty() {
            return Err(ConfigError::new("service_name", "must not be empty"));
        }
        if self.queue_max_spans == 0 || self.queue_max_spans > MAX_QUEUE_SPANS {
            return Err(ConfigError::new(
                "queue_max_spans",
                format!("must be between 1 and {MAX_QUEUE_SPANS}"),
            ));
        }
        if self.batch_max_spans == 0 || self.batch_max_spans > self.queue_max_spans {
            return Err(ConfigError::new(
                "batch_max_spans",
                "must be between 1 and queue_max_spans",
            ));
        }
        if !(10..=60_000).contains(&self.batch_interval_ms) {
            return Err(ConfigError::new(
                "batch_interval_ms",
                "must be between 10 and 60000",
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(ConfigError::new(
                "timeout_ms",
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            ));
        }
        let mut headers = Vec::new();
        for (name, value) in self.headers {
            let field = format!("headers.{name}");
            let name = wasmgate_shared::config::header_name(&field, &name)?;
            let reserved = ["content-type", "content-length", "host", "te", "connection"];
            if reserved.contains(&name.as_str()) {
                return Err(ConfigError::new(field, "is set by the exporter"));
            }
            if !value
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
            {
                return Err(ConfigError::new(field, "must be printable ASCII"));
            }
            headers.push((name, value));
        }
        for (i, claim) in self.claims.iter().enumerate() {
            if claim.is_empty() || claim.len() > 64 {
                return Err(ConfigError::new(
                    format!("claims[{i}]"),
                    "must be a claim name of 1-64 characters",
                ));
            }
        }
        Ok(ExportConfig {
            cluster: self.cluster,
            authority,
            path: self.path,
            service_name: self.service_name,
            batch_max_spans: self.batch_max_spans,
            batch_interval: Duration::from_millis(self.batch_interval_ms),
            queue_max_spans: self.queue_max_spans,
            timeout: Duration::from_millis(self.timeout_ms),
            headers,
            claims: self.claims,
        })
    }
}
