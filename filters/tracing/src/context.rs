//! The trace context the gateway works with, whatever header format it came in or goes out in.

pub type TraceId = [u8; 16];
pub type SpanId = [u8; 8];

/// A sampling decision as incoming headers carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// No decision: the gateway decides from the trace id.
    Defer,
    Deny,
    Accept,
    /// B3 debug: sampled, and downstream tracers should force-record.
    Debug,
}

impl Sampling {
    /// The decision, or `None` when it is deferred to the gateway.
    pub fn decided(self) -> Option<bool> {
        match self {
            Sampling::Defer => None,
            Sampling::Deny => Some(false),
            Sampling::Accept | Sampling::Debug => Some(true),
        }
    }
}

/// The caller's span, as read from a valid incoming header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentContext {
    pub trace_id: TraceId,
    /// The trace id arrived as 64 bits (B3); it is kept left-padded with zeros and written back
    /// as 64 bits in B3 so the caller's tracer recognises it.
    pub short_trace_id: bool,
    pub span_id: SpanId,
    pub sampling: Sampling,
    /// W3C Level 2 random-trace-id flag: the caller promises the trace id's right-most 7 bytes
    /// are random. B3 has no such flag: false.
    pub random: bool,
}

/// The gateway's own span: what goes upstream in every injected format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: TraceId,
    pub short_trace_id: bool,
    pub span_id: SpanId,
    /// The caller's span id when the trace was continued.
    pub parent_span_id: Option<SpanId>,
    pub sampled: bool,
    pub debug: bool,
    /// W3C Level 2 random-trace-id flag, sent in `traceparent`: set on traces the gateway
    /// starts (its ids are random), carried over unchanged on continued ones.
    pub random: bool,
}

/// True when every byte is zero: W3C and B3 both forbid all-zero ids.
pub fn is_zero(id: &[u8]) -> bool {
    id.iter().all(|b| *b == 0)
}
