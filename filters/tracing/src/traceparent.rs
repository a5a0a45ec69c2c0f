//! W3C Trace Context `traceparent`: `version-traceid-parentid-flags`, lower-case hex.
//! Anything that breaks the rules is treated as absent (the spec's "restart the trace").
//! Level 2 adds the random-trace-id flag; the gateway writes it only at Level 2 (Level 1 says
//! unknown flags are sent as zero).

use crate::context::{is_zero, ParentContext, Sampling, TraceContext};
use crate::hex;

/// `00-` + 32 + `-` + 16 + `-` + 2.
const LEN: usize = 55;
const SAMPLED: u8 = 0x01;
const RANDOM: u8 = 0x02;

/// Parses one `traceparent` value. Version `00` must be exactly 55 characters; a higher
/// version is read by its first 55 characters, which must be followed by `-` or the end
/// (the spec's forward-compatibility rule); version `ff` is invalid.
pub fn parse(value: &str) -> Option<ParentContext> {
    let value = value.trim_matches([' ', '\t']);
    let version = hex::decode::<1>(value.get(0..2)?)?[0];
    match version {
        0xff => return None,
        0x00 if value.len() != LEN => return None,
        _ if value.len() < LEN => return None,
        _ if value.len() > LEN && value.as_bytes().get(LEN) != Some(&b'-') => return None,
        _ => {}
    }
    let dashes = [2, 35, 52]
        .iter()
        .all(|&i| value.as_bytes().get(i) == Some(&b'-'));
    if !dashes {
        return None;
    }
    let trace_id = hex::decode::<16>(value.get(3..35)?)?;
    let span_id = hex::decode::<8>(value.get(36..52)?)?;
    let flags = hex::decode::<1>(value.get(53..55)?)?[0];
    if is_zero(&trace_id) || is_zero(&span_id) {
        return None;
    }
    let sampling = if flags & SAMPLED != 0 {
        Sampling::Accept
    } else {
        Sampling::Deny
    };
    Some(ParentContext {
        trace_id,
        short_trace_id: false,
        span_id,
        sampling,
        random: flags & RANDOM != 0,
    })
}

/// The trace-flags byte of the gateway's span: sampled and random, every other bit zero.
pub fn flags(context: &TraceContext) -> u8 {
    let mut flags = 0;
    if context.sampled {
        flags |= SAMPLED;
    }
    if context.random {
        flags |= RANDOM;
    }
    flags
}

/// Writes the gateway's span as a version `00` `traceparent`.
pub fn format(context: &TraceContext) -> String {
    let mut out = String::with_capacity(LEN);
    out.push_str("00-");
    hex::push(&mut out, &context.trace_id);
    out.push('-');
    hex::push(&mut out, &context.span_id);
    out.push('-');
    hex::push(&mut out, &[flags(context)]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    fn tp(version: &str, trace: &str, span: &str, flags: &str) -> String {
        format!("{version}-{trace}-{span}-{flags}")
    }

    #[test]
    fn valid_vectors_parse() {
        let cases = [
            (tp("00", TRACE, SPAN, "01"), Sampling::Accept),
            (tp("00", TRACE, SPAN, "00"), Sampling::Deny),
            // Unknown flag bits are ignored; bit 0 means sampled, bit 1 random.
            (tp("00", TRACE, SPAN, "09"), Sampling::Accept),
            (tp("00", TRACE, SPAN, "fe"), Sampling::Deny),
            (tp("00", TRACE, SPAN, "03"), Sampling::Accept),
            // Surrounding whitespace is optional white space, not part of the value.
            (
                format!(" {}\t", tp("00", TRACE, SPAN, "01")),
                Sampling::Accept,
            ),
            // Higher versions: the first 55 characters, then `-` and anything.
            (tp("01", TRACE, SPAN, "01"), Sampling::Accept),
            (
                format!("{}-what-the-future-holds", tp("cc", TRACE, SPAN, "01")),
                Sampling::Accept,
            ),
        ];
        for (value, sampling) in cases {
            let parsed = parse(&value).unwrap_or_else(|| panic!("{value:?} should parse"));
            assert_eq!(hex::encode(&parsed.trace_id), TRACE, "{value}");
            assert_eq!(hex::encode(&parsed.span_id), SPAN, "{value}");
            assert_eq!(parsed.sampling, sampling, "{value}");
        }
    }

    #[test]
    fn invalid_vectors_are_absent() {
        let upper = TRACE.to_ascii_uppercase();
        let cases = [
            ("empty", String::new()),
            ("too short", tp("00", TRACE, SPAN, "0")),
            ("too long for version 00", tp("00", TRACE, SPAN, "010")),
            (
                "version 00 with extra field",
                format!("{}-00", tp("00", TRACE, SPAN, "01")),
            ),
            ("version ff", tp("ff", TRACE, SPAN, "01")),
            ("version upper case", tp("0A", TRACE, SPAN, "01")),
            ("version not hex", tp("0x", TRACE, SPAN, "01")),
            (
                "higher version glued",
                format!("{}x", tp("cc", TRACE, SPAN, "01")),
            ),
            ("higher version too short", tp("cc", TRACE, SPAN, "1")),
            ("trace id upper case", tp("00", &upper, SPAN, "01")),
            ("trace id all zero", tp("00", &"0".repeat(32), SPAN, "01")),
            (
                "trace id short",
                tp("00", &TRACE[1..], &format!("{SPAN}0"), "01"),
            ),
            (
                "trace id not hex",
                tp("00", &format!("{}g", &TRACE[1..]), SPAN, "01"),
            ),
            ("span id all zero", tp("00", TRACE, &"0".repeat(16), "01")),
            (
                "span id upper case",
                tp("00", TRACE, "00F067AA0BA902B7", "01"),
            ),
            ("flags not hex", tp("00", TRACE, SPAN, "0g")),
            ("flags upper case", tp("00", TRACE, SPAN, "0A")),
            (
                "wrong separator",
                tp("00", TRACE, SPAN, "01").replace('-', "_"),
            ),
            ("non-ascii", tp("00", TRACE, SPAN, "é")),
            ("inner space", tp("00", TRACE, SPAN, " 1")),
        ];
        for (why, value) in cases {
            assert_eq!(parse(&value), None, "{why}: {value:?}");
        }
    }

    #[test]
    fn random_flag_is_bit_1_of_any_flags() {
        let random = |flags: &str| parse(&tp("00", TRACE, SPAN, flags)).map(|p| p.random);
        for (flags, expected) in [("02", true), ("03", true), ("ff", true), ("01", false)] {
            assert_eq!(random(flags), Some(expected), "{flags}");
        }
    }

    #[test]
    fn formats_version_00_with_the_sampled_and_random_flags_only() {
        let context = TraceContext {
            trace_id: hex::decode(TRACE).unwrap(),
            short_trace_id: false,
            span_id: hex::decode(SPAN).unwrap(),
            parent_span_id: None,
            sampled: true,
            debug: true,
            random: false,
        };
        assert_eq!(format(&context), tp("00", TRACE, SPAN, "01"));
        let cases = [
            (false, false, "00"),
            (true, true, "03"),
            (false, true, "02"),
        ];
        for (sampled, random, flags) in cases {
            let context = TraceContext {
                sampled,
                random,
                ..context.clone()
            };
            assert_eq!(format(&context), tp("00", TRACE, SPAN, flags));
        }
    }
}
