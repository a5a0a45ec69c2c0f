//! Span export: finished spans wait in a bounded per-worker queue and leave in batches on the
//! root context's tick, one OTLP/HTTP POST per batch through the collector's Envoy cluster. A
//! request only appends to the queue; a full queue drops the span and counts it. Nothing is
//! retried: a batch the collector refuses or does not answer in time is counted as dropped.

use crate::export_config::ExportConfig;
use crate::otlp::{self, ExportTraceServiceRequest, KeyValue, ResourceSpans, ScopeSpans};
use prost::Message;
use std::cell::{Cell, RefCell};
use std::time::Duration;
use wasmgate_shared::host::unix_nanos;
use wasmgate_shared::metrics::BatchedCounter;
use wasmgate_shared::Host;

/// Batches a worker may have on the wire at once; more wait in the queue.
pub const MAX_IN_FLIGHT: usize = 4;
/// The longest tick with export on: a full batch leaves within this, whatever the interval, so
/// a busy worker's queue drains at up to `MAX_IN_FLIGHT` batches per tick.
const MAX_TICK: Duration = Duration::from_millis(200);
const SCOPE: &str = "wasmgate";

pub struct Exporter {
    config: ExportConfig,
    resource: otlp::Resource,
    queue: RefCell<Vec<otlp::Span>>,
    /// (call token, spans in that batch): at most [`MAX_IN_FLIGHT`] entries.
    in_flight: RefCell<Vec<(u32, usize)>>,
    last_export_nanos: Cell<u64>,
    metrics: ExportMetrics,
}

struct ExportMetrics {
    exported: BatchedCounter,
    dropped: BatchedCounter,
    failed_exports: BatchedCounter,
}

impl Exporter {
    /// `wasmgate_tracing_spans_exported`, `_spans_dropped`, `_exports_failed`; the resource
    /// names the service and, when Envoy says, its node.
    pub fn new(host: &(impl Host + ?Sized), config: ExportConfig) -> Self {
        let mut attributes = vec![
            KeyValue::text("service.name", config.service_name.as_str()),
            KeyValue::text("telemetry.sdk.name", SCOPE),
            KeyValue::text("telemetry.sdk.language", "rust"),
            KeyValue::text("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        let node = |field: &str| {
            host.property(&["node", field])
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .filter(|text| !text.is_empty())
        };
        if let Some(id) = node("id") {
            attributes.push(KeyValue::text("service.instance.id", id));
        }
        if let Some(cluster) = node("cluster") {
            attributes.push(KeyValue::text("envoy.node.cluster", cluster));
        }
        Self {
            queue: RefCell::new(Vec::with_capacity(config.batch_max_spans)),
            config,
            resource: otlp::Resource { attributes },
            in_flight: RefCell::default(),
            last_export_nanos: Cell::new(unix_nanos(host.now())),
            metrics: ExportMetrics {
                exported: BatchedCounter::new(host, "tracing", "spans_exported"),
                dropped: BatchedCounter::new(host, "tracing", "spans_dropped"),
                failed_exports: BatchedCounter::new(host, "tracing", "exports_failed"),
            },
        }
    }

    pub fn config(&self) -> &ExportConfig {
        &self.config
    }

    /// The request path's only export work: queue the span, or count it dropped.
    pub fn push(&self, span: otlp::Span) {
        let mut queue = self.queue.borrow_mut();
        if queue.len() < self.config.queue_max_spans {
            queue.push(span);
        } else {
            self.metrics.dropped.inc();
        }
    }

    pub fn queued(&self) -> usize {
        self.queue.borrow().len()
    }

    /// On the tick: sends full batches, and what is queued once the interval has passed, as
    /// long as fewer than [`MAX_IN_FLIGHT`] batches are unanswered.
    pub fn on_tick(&self, host: &(impl Host + ?Sized)) {
        let now = unix_nanos(host.now());
        let interval = u64::try_from(self.config.batch_interval.as_nanos()).unwrap_or(u64::MAX);
        let due = now.saturating_sub(self.last_export_nanos.get()) >= interval;
        loop {
            let queued = self.queued();
            let full = queued >= self.config.batch_max_spans;
            if queued == 0 || !(full || due) || self.in_flight.borrow().len() >= MAX_IN_FLIGHT {
                break;
            }
            self.send_batch(host);
            self.last_export_nanos.set(now);
        }
        self.flush_metrics(host);
    }

    /// Sends what is queued, whatever the interval (a configuration being replaced).
    pub fn drain(&self, host: &(impl Host + ?Sized)) {
        while self.queued() > 0 && self.in_flight.borrow().len() < MAX_IN_FLIGHT {
            self.send_batch(host);
        }
        self.flush_metrics(host);
    }

    fn send_batch(&self, host: &(impl Host + ?Sized)) {
        let spans: Vec<otlp::Span> = {
            let mut queue = self.queue.borrow_mut();
            let n = queue.len().min(self.config.batch_max_spans);
            queue.drain(..n).collect()
        };
        let count = spans.len();
        let body = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(otlp::InstrumentationScope {
                        name: SCOPE.to_string(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                    }),
                    spans,
                }],
            }],
        }
        .encode_to_vec();
        let c = &self.config;
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", "POST"),
            (":path", c.path.as_str()),
            (":authority", c.authority.as_str()),
            ("content-type", "application/x-protobuf"),
        ];
        headers.extend(c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        match host.dispatch_http_call(&c.cluster, &headers, Some(&body), c.timeout) {
            Ok(token) => {
                self.in_flight.borrow_mut().push((token, count));
            }
            Err(err) => {
                log::warn!(
                    "wasmgate tracing: span export to cluster {} failed: {}",
                    c.cluster,
                    err.0
                );
                self.failed(count);
            }
        }
    }

    /// The collector's answer to batch `token`; false if the call is not an export.
    pub fn on_response(&self, host: &(impl Host + ?Sized), token: u32, body_size: usize) -> bool {
        let count = {
            let mut in_flight = self.in_flight.borrow_mut();
            let Some(at) = in_flight.iter().position(|(t, _)| *t == token) else {
                return false;
            };
            in_flight.swap_remove(at).1
        };
        let status = host
            .http_call_response_headers()
            .into_iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse::<u16>().ok());
        match status {
            Some(200..=299) => {
                // A partial success names the spans the collector refused.
                let rejected = host
                    .http_call_response_body(body_size)
                    .and_then(|b| otlp::ExportTraceServiceResponse::decode(b.as_slice()).ok())
                    .and_then(|r| r.partial_success)
                    .map_or(0, |p| {
                        usize::try_from(p.rejected_spans).unwrap_or(0).min(count)
                    });
                self.metrics.exported.add(to_i64(count - rejected));
                self.metrics.dropped.add(to_i64(rejected));
            }
            _ => self.failed(count),
        }
        true
    }

    fn failed(&self, count: usize) {
        self.metrics.failed_exports.inc();
        self.metrics.dropped.add(to_i64(count));
    }

    pub fn flush_metrics(&self, host: &(impl Host + ?Sized)) {
        self.metrics.exported.flush(host);
        self.metrics.dropped.flush(host);
        self.metrics.failed_exports.flush(host);
    }

    /// The tick period export needs.
    pub fn tick_period(&self) -> Duration {
        self.config.batch_interval.min(MAX_TICK)
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
