//! Zipkin B3 propagation: the single `b3` header and the multi `X-B3-*` headers, with 64- or
//! 128-bit trace ids. Ids are lower-case hex and never all zero.

use crate::context::{is_zero, ParentContext, Sampling, SpanId, TraceContext, TraceId};
use crate::hex;

pub const SINGLE: &str = "b3";
pub const TRACE_ID: &str = "x-b3-traceid";
pub const SPAN_ID: &str = "x-b3-spanid";
pub const PARENT_SPAN_ID: &str = "x-b3-parentspanid";
pub const SAMPLED: &str = "x-b3-sampled";
pub const FLAGS: &str = "x-b3-flags";
/// Every multi header, for removal.
pub const MULTI: [&str; 5] = [TRACE_ID, SPAN_ID, PARENT_SPAN_ID, SAMPLED, FLAGS];

/// What a valid set of B3 headers says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum B3 {
    Context(ParentContext),
    /// Only a sampling decision (`b3: 0`, or `X-B3-Sampled` alone): start a trace with it.
    SamplingOnly(Sampling),
}

/// The multi headers as received; all `None` means B3 multi is absent.
#[derive(Debug, Default, Clone, Copy)]
pub struct MultiHeaders<'a> {
    pub trace_id: Option<&'a str>,
    pub span_id: Option<&'a str>,
    pub parent_span_id: Option<&'a str>,
    pub sampled: Option<&'a str>,
    pub flags: Option<&'a str>,
}

impl MultiHeaders<'_> {
    pub fn is_absent(&self) -> bool {
        self.trace_id.is_none()
            && self.span_id.is_none()
            && self.parent_span_id.is_none()
            && self.sampled.is_none()
            && self.flags.is_none()
    }
}

/// Parses `b3: {trace}-{span}[-{sampling}[-{parent}]]` or `b3: {sampling}`; `None` if invalid.
pub fn parse_single(value: &str) -> Option<B3> {
    let value = value.trim_matches([' ', '\t']);
    let mut parts = value.split('-');
    let first = parts.next()?;
    let Some(span) = parts.next() else {
        return single_sampling(first).map(B3::SamplingOnly);
    };
    let sampling = match parts.next() {
        Some(s) => single_sampling(s)?,
        None => Sampling::Defer,
    };
    if let Some(parent) = parts.next() {
        span_id(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    let (trace_id, short_trace_id) = trace_id(first)?;
    Some(B3::Context(ParentContext {
        trace_id,
        short_trace_id,
        span_id: span_id(span)?,
        sampling,
        random: false,
    }))
}

fn single_sampling(text: &str) -> Option<Sampling> {
    match text {
        "0" => Some(Sampling::Deny),
        "1" => Some(Sampling::Accept),
        "d" => Some(Sampling::Debug),
        _ => None,
    }
}

/// Parses the multi headers; `None` if invalid (call only when not [`MultiHeaders::is_absent`]).
/// `X-B3-Flags: 1` is debug; other flag values carry nothing and are ignored.
pub fn parse_multi(headers: &MultiHeaders<'_>) -> Option<B3> {
    let sampled = match headers.sampled.map(|s| s.trim_matches([' ', '\t'])) {
        None => Sampling::Defer,
        Some("1" | "true") => Sampling::Accept,
        Some("0" | "false") => Sampling::Deny,
        Some(_) => return None,
    };
    let sampling = match headers.flags.map(|s| s.trim_matches([' ', '\t'])) {
        Some("1") => Sampling::Debug,
        _ => sampled,
    };
    if let Some(parent) = headers.parent_span_id {
        span_id(parent.trim_matches([' ', '\t']))?;
    }
    match (headers.trace_id, headers.span_id) {
        (None, None) if headers.parent_span_id.is_none() => Some(B3::SamplingOnly(sampling)),
        (Some(trace), Some(span)) => {
            let (trace_id, short_trace_id) = trace_id(trace.trim_matches([' ', '\t']))?;
            Some(B3::Context(ParentContext {
                trace_id,
                short_trace_id,
                span_id: span_id(span.trim_matches([' ', '\t']))?,
                sampling,
                random: false,
            }))
        }
        _ => None,
    }
}

/// A 32- or 16-character trace id; the short form is left-padded to 128 bits.
fn trace_id(text: &str) -> Option<(TraceId, bool)> {
    let (id, short) = match text.len() {
        32 => (hex::decode::<16>(text)?, false),
        16 => {
            let low = hex::decode::<8>(text)?;
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&low);
            (id, true)
        }
        _ => return None,
    };
    (!is_zero(&id)).then_some((id, short))
}

fn span_id(text: &str) -> Option<SpanId> {
    hex::decode::<8>(text).filter(|id| !is_zero(id))
}

fn trace_id_hex(context: &TraceContext) -> String {
    match (context.short_trace_id, context.trace_id.split_at(8)) {
        (true, (_, low)) => hex::encode(low),
        (false, _) => hex::encode(&context.trace_id),
    }
}

fn sampling_text(context: &TraceContext) -> &'static str {
    match (context.debug, context.sampled) {
        (true, _) => "d",
        (false, true) => "1",
        (false, false) => "0",
    }
}

/// The single `b3` header for the gateway's span.
pub fn format_single(context: &TraceContext) -> String {
    let mut out = trace_id_hex(context);
    out.push('-');
    hex::push(&mut out, &context.span_id);
    out.push('-');
    out.push_str(sampling_text(context));
    if let Some(parent) = &context.parent_span_id {
        out.push('-');
        hex::push(&mut out, parent);
    }
    out
}

/// The multi headers for the gateway's span, as (name, value); debug is sent as
/// `X-B3-Flags: 1` instead of `X-B3-Sampled`, as the B3 spec says.
pub fn format_multi(context: &TraceContext) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (TRACE_ID, trace_id_hex(context)),
        (SPAN_ID, hex::encode(&context.span_id)),
    ];
    if let Some(parent) = &context.parent_span_id {
        out.push((PARENT_SPAN_ID, hex::encode(parent)));
    }
    if context.debug {
        out.push((FLAGS, "1".to_string()));
    } else {
        out.push((SAMPLED, sampling_text(context).to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const SHORT: &str = "64fe8b2a57d3eff7";
    const SPAN: &str = "e457b5a2e4d86bd1";
    const PARENT: &str = "05e3ac9a4f6e3b90";

    fn context(trace: &str, sampling: Sampling) -> B3 {
        let (trace_id, short_trace_id) = trace_id(trace).unwrap();
        B3::Context(ParentContext {
            trace_id,
            short_trace_id,
            span_id: hex::decode(SPAN).unwrap(),
            sampling,
            random: false,
        })
    }

    #[test]
    fn single_header_vectors() {
        let ok = [
            (
                format!("{TRACE}-{SPAN}-1-{PARENT}"),
                context(TRACE, Sampling::Accept),
            ),
            (format!("{TRACE}-{SPAN}-0"), context(TRACE, Sampling::Deny)),
            (format!("{TRACE}-{SPAN}-d"), context(TRACE, Sampling::Debug)),
            (format!("{TRACE}-{SPAN}"), context(TRACE, Sampling::Defer)),
            (
                format!("{SHORT}-{SPAN}-1"),
                context(SHORT, Sampling::Accept),
            ),
            ("0".to_string(), B3::SamplingOnly(Sampling::Deny)),
            ("1".to_string(), B3::SamplingOnly(Sampling::Accept)),
            ("d".to_string(), B3::SamplingOnly(Sampling::Debug)),
        ];
        for (value, expected) in ok {
            assert_eq!(parse_single(&value), Some(expected), "{value}");
        }
        let zero_trace = "0".repeat(32);
        let bad = [
            "".to_string(),
            "true".to_string(),
            TRACE.to_string(),
            format!("{TRACE}-{SPAN}-2"),
            format!("{TRACE}-{SPAN}-true"),
            format!("{TRACE}-{SPAN}-1-"),
            format!("{TRACE}-{SPAN}-1-{PARENT}-x"),
            format!("{TRACE}-{SPAN}-1-{}", "0".repeat(16)),
            format!("{}-{SPAN}-1", TRACE.to_ascii_uppercase()),
            format!("{zero_trace}-{SPAN}-1"),
            format!("{TRACE}-{}-1", "0".repeat(16)),
            format!("{}-{SPAN}-1", &TRACE[..24]),
            format!("{TRACE}-{}-1", &SPAN[..15]),
        ];
        for value in bad {
            assert_eq!(parse_single(&value), None, "{value}");
        }
    }

    #[test]
    fn multi_header_vectors() {
        let multi = |trace, span, parent, sampled, flags| MultiHeaders {
            trace_id: trace,
            span_id: span,
            parent_span_id: parent,
            sampled,
            flags,
        };
        let ok = [
            (
                multi(Some(TRACE), Some(SPAN), Some(PARENT), Some("1"), None),
                context(TRACE, Sampling::Accept),
            ),
            (
                multi(Some(SHORT), Some(SPAN), None, Some("0"), None),
                context(SHORT, Sampling::Deny),
            ),
            (
                multi(Some(TRACE), Some(SPAN), None, Some("true"), None),
                context(TRACE, Sampling::Accept),
            ),
            (
                multi(Some(TRACE), Some(SPAN), None, None, Some("1")),
                context(TRACE, Sampling::Debug),
            ),
            (
                multi(Some(TRACE), Some(SPAN), None, Some("0"), Some("1")),
                context(TRACE, Sampling::Debug),
            ),
            (
                multi(Some(TRACE), Some(SPAN), None, None, None),
                context(TRACE, Sampling::Defer),
            ),
            (
                multi(None, None, None, Some("0"), None),
                B3::SamplingOnly(Sampling::Deny),
            ),
            (
                multi(None, None, None, None, Some("1")),
                B3::SamplingOnly(Sampling::Debug),
            ),
        ];
        for (headers, expected) in ok {
            assert_eq!(parse_multi(&headers), Some(expected), "{headers:?}");
        }
        let zero = "0".repeat(16);
        let bad = [
            multi(Some(TRACE), None, None, Some("1"), None),
            multi(None, Some(SPAN), None, Some("1"), None),
            multi(None, None, Some(PARENT), None, None),
            multi(Some(TRACE), Some(SPAN), None, Some("yes"), None),
            multi(Some(TRACE), Some(SPAN), Some("xyz"), Some("1"), None),
            multi(Some(&TRACE[..20]), Some(SPAN), None, None, None),
            multi(Some(TRACE), Some(&zero), None, None, None),
        ];
        for headers in bad {
            assert_eq!(parse_multi(&headers), None, "{headers:?}");
        }
    }

    #[test]
    fn formats_keep_the_trace_id_width_and_carry_the_parent() {
        let (trace_id, _) = trace_id(SHORT).unwrap();
        let context = TraceContext {
            trace_id,
            short_trace_id: true,
            span_id: hex::decode(SPAN).unwrap(),
            parent_span_id: Some(hex::decode(PARENT).unwrap()),
            sampled: true,
            debug: false,
            random: false,
        };
        assert_eq!(
            format_single(&context),
            format!("{SHORT}-{SPAN}-1-{PARENT}")
        );
        assert_eq!(
            format_multi(&context),
            vec![
                (TRACE_ID, SHORT.to_string()),
                (SPAN_ID, SPAN.to_string()),
                (PARENT_SPAN_ID, PARENT.to_string()),
                (SAMPLED, "1".to_string()),
            ]
        );
        let debug = TraceContext {
            short_trace_id: false,
            parent_span_id: None,
            debug: true,
            ..context
        };
        assert_eq!(
            format_single(&debug),
            format!("{}{SHORT}-{SPAN}-d", "0".repeat(16))
        );
        assert_eq!(format_multi(&debug).last(), Some(&(FLAGS, "1".to_string())));
    }
}
