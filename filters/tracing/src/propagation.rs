//! The per-request decision: read the incoming trace context, continue it or start a trace,
//! and say exactly which headers change upstream and downstream. No proxy-wasm calls here:
//! headers come in as a list, randomness from [`Host::random_bytes`].

use crate::b3::{self, MultiHeaders, B3};
use crate::config::{Format, TracingConfig, W3cLevel};
use crate::context::{is_zero, ParentContext, Sampling, TraceContext};
use crate::{hex, request_id, traceparent, tracestate};
use wasmgate_shared::{Host, RequestView};

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
pub const TRACERESPONSE: &str = "traceresponse";
/// Envoy filter state key (`wasm.` + this) holding the trace id for access logs.
pub const TRACE_ID_PROPERTY: &str = "trace_id";

/// Whether the gateway's span joined the caller's trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Continued,
    Started,
}

/// Everything the filter does for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub context: TraceContext,
    pub origin: Origin,
    /// Some trace context header was present but malformed.
    pub invalid_incoming: bool,
    /// Upstream header edits in order; `None` removes the header.
    pub request_headers: Vec<(String, Option<String>)>,
    /// Headers for the response to the client.
    pub response_headers: Vec<(String, String)>,
    /// The 32-hex trace id, for the access log.
    pub trace_id: String,
    /// The `tracestate` sent upstream with the gateway's span, if any.
    pub trace_state: Option<String>,
}

/// What one format says about the request.
enum Found {
    Absent,
    Invalid,
    Parent(ParentContext),
    SamplingOnly(Sampling),
}

/// The trace-related request headers, read in one pass.
#[derive(Default)]
struct Incoming<'a> {
    traceparent: Vec<&'a str>,
    tracestate: Vec<&'a str>,
    b3: Vec<&'a str>,
    multi: MultiHeaders<'a>,
    /// Every value of the request id header: a repeated one is two ids at once, and the
    /// upstream could log either, so it is replaced.
    request_id: Vec<&'a str>,
    client_trace_id: bool,
}

impl<'a> Incoming<'a> {
    fn read(config: &TracingConfig, headers: &'a [(String, String)]) -> Self {
        let mut seen = Incoming::default();
        for (name, value) in headers {
            let value = value.as_str();
            let is = |n: &str| name.eq_ignore_ascii_case(n);
            let first = |slot: &mut Option<&'a str>| {
                slot.get_or_insert(value);
            };
            if is(TRACEPARENT) {
                seen.traceparent.push(value);
            } else if is(TRACESTATE) {
                seen.tracestate.push(value);
            } else if is(b3::SINGLE) {
                seen.b3.push(value);
            } else if is(b3::TRACE_ID) {
                first(&mut seen.multi.trace_id);
            } else if is(b3::SPAN_ID) {
                first(&mut seen.multi.span_id);
            } else if is(b3::PARENT_SPAN_ID) {
                first(&mut seen.multi.parent_span_id);
            } else if is(b3::SAMPLED) {
                first(&mut seen.multi.sampled);
            } else if is(b3::FLAGS) {
                first(&mut seen.multi.flags);
            } else if is(&config.request_id_header) {
                seen.request_id.push(value);
            } else if config.client_trace_id_header.as_deref().is_some_and(is) {
                seen.client_trace_id = true;
            }
        }
        seen
    }

    fn has(&self, format: Format) -> bool {
        match format {
            Format::W3c => !self.traceparent.is_empty() || !self.tracestate.is_empty(),
            Format::B3 => !self.b3.is_empty(),
            Format::B3multi => !self.multi.is_absent(),
        }
    }

    fn find(&self, format: Format) -> Found {
        // A repeated single-valued header is two contexts at once: neither is trusted.
        let only = |values: &[&'a str]| match values {
            [] => Err(Found::Absent),
            [one] => Ok(*one),
            _ => Err(Found::Invalid),
        };
        let result = match format {
            Format::W3c => only(&self.traceparent)
                .map(|v| traceparent::parse(v).map_or(Found::Invalid, Found::Parent)),
            Format::B3 => only(&self.b3).map(|v| from_b3(b3::parse_single(v))),
            Format::B3multi if self.multi.is_absent() => Err(Found::Absent),
            Format::B3multi => Ok(from_b3(b3::parse_multi(&self.multi))),
        };
        result.unwrap_or_else(|found| found)
    }
}

fn from_b3(parsed: Option<B3>) -> Found {
    match parsed {
        None => Found::Invalid,
        Some(B3::Context(parent)) => Found::Parent(parent),
        Some(B3::SamplingOnly(sampling)) => Found::SamplingOnly(sampling),
    }
}

/// Every random id a request may need, drawn in one host call.
struct RandomIds {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    request_id: [u8; 16],
}

impl RandomIds {
    fn draw(host: &(impl Host + ?Sized)) -> Self {
        let mut bytes = [0u8; 40];
        host.random_bytes(&mut bytes);
        let (trace, rest) = bytes.split_at(16);
        let (span, request) = rest.split_at(8);
        Self {
            trace_id: nonzero(trace, host),
            span_id: nonzero(span, host),
            request_id: nonzero(request, host),
        }
    }
}

/// `bytes` as an id; an all-zero draw (invalid as any id) is replaced by fresh bytes.
fn nonzero<const N: usize>(bytes: &[u8], host: &(impl Host + ?Sized)) -> [u8; N] {
    let mut id = [0u8; N];
    for (dst, src) in id.iter_mut().zip(bytes) {
        *dst = *src;
    }
    for _ in 0..4 {
        if !is_zero(&id) {
            return id;
        }
        host.random_bytes(&mut id);
    }
    if let Some(last) = id.last_mut() {
        *last |= 1;
    }
    id
}

/// What the extracted formats said, in configured order.
struct Extracted {
    /// The first usable parent and the format it came in.
    parent: Option<(Format, ParentContext)>,
    /// A bare sampling decision (B3 `0`/`1`/`d` without ids), used if no parent follows.
    decision: Sampling,
    invalid: bool,
}

fn extract(config: &TracingConfig, incoming: &Incoming<'_>) -> Extracted {
    let mut out = Extracted {
        parent: None,
        decision: Sampling::Defer,
        invalid: false,
    };
    for &format in &config.extract {
        match incoming.find(format) {
            Found::Absent => {}
            Found::Invalid => out.invalid = true,
            Found::SamplingOnly(sampling) if out.decision == Sampling::Defer => {
                out.decision = sampling;
            }
            Found::SamplingOnly(_) => {}
            Found::Parent(parent) => {
                out.parent = Some((format, parent));
                break;
            }
        }
    }
    out
}

/// The gateway's span: a child of `parent`, or the root of a new trace sampled by
/// `decision` or, when that is deferred, by the configured ratio.
fn own_span(
    config: &TracingConfig,
    parent: Option<&ParentContext>,
    decision: Sampling,
    random: &RandomIds,
) -> TraceContext {
    let (trace_id, short_trace_id, parent_span_id, sampling, random_flag) = match parent {
        Some(p) => (
            p.trace_id,
            p.short_trace_id,
            Some(p.span_id),
            p.sampling,
            p.random,
        ),
        // The gateway's trace ids are random in all 16 bytes.
        None => (random.trace_id, false, None, decision, true),
    };
    TraceContext {
        trace_id,
        short_trace_id,
        span_id: random.span_id,
        parent_span_id,
        sampled: sampling
            .decided()
            .unwrap_or_else(|| config.sampler.sampled(&trace_id)),
        debug: sampling == Sampling::Debug,
        random: random_flag && config.w3c_level == W3cLevel::Two,
    }
}

/// Edits that leave exactly the injected formats upstream, all carrying `context`;
/// `tracestate` travels only with the `traceparent` it came with (`from` W3C). Returns the
/// `tracestate` sent.
fn trace_header_edits(
    config: &TracingConfig,
    incoming: &Incoming<'_>,
    context: &TraceContext,
    from: Option<Format>,
    edits: &mut Vec<(String, Option<String>)>,
) -> Option<String> {
    let mut sent_state = None;
    let mut set = |name: &str, value: Option<String>| edits.push((name.to_string(), value));
    if config.injects(Format::W3c) {
        set(TRACEPARENT, Some(traceparent::format(context)));
        let state = match from {
            Some(Format::W3c) => {
                tracestate::sanitize(incoming.tracestate.iter().copied(), config.w3c_level)
            }
            _ => None,
        };
        if state.is_some() || !incoming.tracestate.is_empty() {
            sent_state.clone_from(&state);
            set(TRACESTATE, state);
        }
    } else if incoming.has(Format::W3c) {
        set(TRACEPARENT, None);
        set(TRACESTATE, None);
    }
    if config.injects(Format::B3) {
        set(b3::SINGLE, Some(b3::format_single(context)));
    } else if incoming.has(Format::B3) {
        set(b3::SINGLE, None);
    }
    let multi = if config.injects(Format::B3multi) {
        b3::format_multi(context)
    } else {
        Vec::new()
    };
    let present = [
        incoming.multi.trace_id,
        incoming.multi.span_id,
        incoming.multi.parent_span_id,
        incoming.multi.sampled,
        incoming.multi.flags,
    ];
    for (name, was_present) in b3::MULTI.iter().zip(present) {
        if was_present.is_some() && !multi.iter().any(|(n, _)| n == name) {
            set(name, None);
        }
    }
    for (name, value) in multi {
        set(name, Some(value));
    }
    sent_state
}

/// Decides the request's trace context and header edits from its `headers`.
pub fn plan(
    config: &TracingConfig,
    headers: &[(String, String)],
    host: &(impl Host + ?Sized),
) -> Plan {
    let incoming = Incoming::read(config, headers);
    let extracted = extract(config, &incoming);
    let client_trace_id = extracted
        .parent
        .as_ref()
        .map(|(_, p)| hex::encode(&p.trace_id));
    // An untrusted client's context and sampling decision are not followed.
    let (from, parent, decision) = match extracted.parent {
        Some((format, p)) if config.trust_incoming => (Some(format), Some(p), extracted.decision),
        _ if config.trust_incoming => (None, None, extracted.decision),
        _ => (None, None, Sampling::Defer),
    };
    let random = RandomIds::draw(host);
    let context = own_span(config, parent.as_ref(), decision, &random);

    let mut edits = Vec::new();
    let trace_state = trace_header_edits(config, &incoming, &context, from, &mut edits);
    if let Some(header) = &config.client_trace_id_header {
        if client_trace_id.is_some() || incoming.client_trace_id {
            edits.push((header.clone(), client_trace_id));
        }
    }
    let kept_request_id = match incoming.request_id.as_slice() {
        [id] if config.trust_incoming && request_id::is_acceptable(id) => Some(*id),
        _ => None,
    };
    let request_id = match kept_request_id {
        Some(id) => id.to_string(),
        None => {
            let id = request_id::uuid_v4(random.request_id);
            edits.push((config.request_id_header.clone(), Some(id.clone())));
            id
        }
    };

    let trace_id = hex::encode(&context.trace_id);
    let mut response_headers = Vec::new();
    if config.traceresponse {
        response_headers.push((TRACERESPONSE.to_string(), traceparent::format(&context)));
    }
    if let Some(name) = &config.response_trace_id_header {
        response_headers.push((name.clone(), trace_id.clone()));
    }
    if let Some(name) = &config.response_request_id_header {
        response_headers.push((name.clone(), request_id));
    }

    Plan {
        origin: if parent.is_some() {
            Origin::Continued
        } else {
            Origin::Started
        },
        context,
        invalid_incoming: extracted.invalid,
        request_headers: edits,
        response_headers,
        trace_id,
        trace_state,
    }
}

/// Applies the upstream edits and publishes the trace id as filter state (`wasm.trace_id`).
pub fn apply_request(plan: &Plan, request: &mut RequestView, host: &(impl Host + ?Sized)) {
    for (name, value) in &plan.request_headers {
        request.set_header(host, name, value.as_deref());
    }
    host.set_property(&[TRACE_ID_PROPERTY], plan.trace_id.as_bytes());
}

/// Adds the configured trace / request id headers to the client's response.
pub fn apply_response(response_headers: &[(String, String)], host: &(impl Host + ?Sized)) {
    for (name, value) in response_headers {
        host.set_response_header(name, Some(value));
    }
}

#[cfg(test)]
mod tests;
