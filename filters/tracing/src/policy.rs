//! The tracing policy: every request leaves with one consistent trace context (W3C and/or B3)
//! and a request id; the response gets the configured trace and request id headers; with
//! `export`, each sampled request's span goes to an OTLP/HTTP collector once the stream ends.

use crate::config::{RawTracingConfig, TracingConfig};
use crate::export::Exporter;
use crate::metrics::TracingMetrics;
use crate::propagation;
use crate::span::OpenSpan;
use std::time::Duration;
use wasmgate_shared::host::unix_nanos;
use wasmgate_shared::{config, ConfigError, Flow, Host, Policy, RequestView};

pub struct Tracing {
    config: TracingConfig,
    metrics: TracingMetrics,
    exporter: Option<Exporter>,
}

/// What a request keeps: the response headers its trace context asks for (sent on whatever
/// reply it gets) and, when exported, its open span.
#[derive(Debug, Default)]
pub struct TraceStream {
    pub response_headers: Vec<(String, String)>,
    span: Option<OpenSpan>,
}

/// Envoy's `response.code` attribute: the status sent to the client, local reply or not.
const RESPONSE_CODE: [&str; 2] = ["response", "code"];

impl Tracing {
    pub fn compile(
        host: &(impl Host + ?Sized),
        raw: RawTracingConfig,
    ) -> Result<Self, ConfigError> {
        let mut config = raw.compile()?;
        let exporter = config.export.take().map(|e| Exporter::new(host, e));
        Ok(Self {
            config,
            metrics: TracingMetrics::define(host),
            exporter,
        })
    }

    pub fn exporter(&self) -> Option<&Exporter> {
        self.exporter.as_ref()
    }
}

impl Policy for Tracing {
    const NAME: &'static str = "tracing";
    type Stream = TraceStream;

    fn configure(host: &(impl Host + ?Sized), bytes: Option<&[u8]>) -> Result<Self, ConfigError> {
        config::parse(bytes)
            .and_then(|raw| Self::compile(host, raw))
            .map_err(|e| e.within(Self::NAME))
    }

    fn tick_period(&self) -> Duration {
        let metrics = Duration::from_secs(1);
        self.exporter
            .as_ref()
            .map_or(metrics, |e| e.tick_period().min(metrics))
    }

    fn retire(&self, host: &(impl Host + ?Sized)) {
        self.metrics.flush(host);
        if let Some(exporter) = &self.exporter {
            exporter.drain(host);
        }
    }

    fn new_stream(&self, _context_id: u32) -> TraceStream {
        TraceStream::default()
    }

    fn on_request(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut TraceStream,
    ) -> Flow {
        let plan = propagation::plan(&self.config, request.headers(), host);
        propagation::apply_request(&plan, request, host);
        self.metrics.record(&plan);
        if self.exporter.is_some() && plan.context.sampled {
            let start = unix_nanos(host.now());
            stream.span = Some(OpenSpan::start(&plan.context, plan.trace_state, start));
            request.notes.start_recording();
        }
        stream.response_headers = plan.response_headers;
        Flow::Continue
    }

    fn on_response(&self, host: &(impl Host + ?Sized), stream: &mut TraceStream) {
        propagation::apply_response(&stream.response_headers, host);
        if let Some(span) = &mut stream.span {
            span.status = host.response_header(":status").and_then(|s| s.parse().ok());
        }
    }

    /// The span ends with the stream: the response (or the local reply) is sent.
    fn on_log(&self, host: &(impl Host + ?Sized), request: &RequestView, stream: &mut TraceStream) {
        let (Some(exporter), Some(span)) = (&self.exporter, stream.span.take()) else {
            return;
        };
        // The response headers passed this filter with their status, unless the reply was this
        // module's own (the gateway's refusals) or there was none: then Envoy's record says.
        let status = span.status.or_else(|| {
            host.property(&RESPONSE_CODE)
                .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
                .map(u64::from_le_bytes)
                .and_then(|code| u16::try_from(code).ok())
                .filter(|code| *code != 0)
        });
        let end = unix_nanos(host.now());
        exporter.push(span.finish(request, status, end, &exporter.config().claims));
    }

    /// Counters reach Envoy on the tick: at most ~1 s late, no metric host call per request.
    /// Spans leave on it too.
    fn on_tick(&self, host: &(impl Host + ?Sized)) -> Vec<u32> {
        self.metrics.flush(host);
        if let Some(exporter) = &self.exporter {
            exporter.on_tick(host);
        }
        Vec::new()
    }

    fn on_http_call_response(
        &self,
        host: &(impl Host + ?Sized),
        token: u32,
        body_size: usize,
    ) -> Vec<u32> {
        if let Some(exporter) = &self.exporter {
            exporter.on_response(host, token, body_size);
        }
        Vec::new()
    }
}
