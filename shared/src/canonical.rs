//! The path and host a rule judges: the form every upstream resolves the request to, or a
//! refusal where upstreams disagree. Envoy passes `/public/../admin`, `/%61dmin` or `//admin`
//! byte for byte by default, and the servers behind it resolve them to `/admin`; matching the
//! raw bytes would judge one resource and serve another.
//!
//! The canonical path (RFC 3986 §6.2.2 and §5.2.4): escapes of unreserved characters decoded,
//! other escapes with upper-case hex, repeated slashes merged, then dot segments resolved. What
//! has no single reading (encoded slashes, backslashes, `;` parameters, control bytes, bad or
//! double escapes) is refused unless [`PathPolicy`] states how to read it.

use crate::reply::LocalReply;
use serde::Deserialize;

/// What to do with `%2F` and `%5C`: servers disagree on whether they separate segments.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EscapedSlashes {
    #[default]
    Refuse,
    /// Data inside a segment, forwarded still encoded.
    Keep,
}

/// What to do with a raw `\`: a separator to WHATWG URL parsers and IIS, data to the rest.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Backslash {
    #[default]
    Refuse,
    /// Read and forwarded as `/`.
    Slash,
}

/// What to do with `;`: servlet containers drop `;params` from each segment (`/a/..;/b` is
/// `/b` to them), other servers keep them as data.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PathParameters {
    #[default]
    Refuse,
    /// Data inside a segment; a dot segment with parameters (`..;x`) is still refused.
    Keep,
}

/// The `paths` object of a filter configuration; every default refuses.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct PathPolicy {
    pub escaped_slashes: EscapedSlashes,
    pub backslash: Backslash,
    pub path_parameters: PathParameters,
}

/// Why a path has no canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRefusal {
    /// Neither `/…` nor `*`.
    NotOriginForm,
    EncodedSlash,
    Backslash,
    PathParameter,
    /// `..;x`, or `..` between encoded slashes that were kept.
    HiddenDotSegment,
    /// A byte below 0x20 or 0x7F, raw or percent-encoded.
    ControlCharacter,
    /// Space, `#` or a byte above 0x7F, raw.
    InvalidCharacter,
    /// `%` not followed by two hex digits.
    InvalidEscape,
    /// `%25` followed by two hex digits: a second decoding would give another character.
    DoubleEncoding,
}

impl PathRefusal {
    /// One sentence for the client, naming what was refused.
    pub fn message(self) -> &'static str {
        match self {
            PathRefusal::NotOriginForm => "the request path must start with '/'",
            PathRefusal::EncodedSlash => "the request path contains an encoded slash (%2F or %5C)",
            PathRefusal::Backslash => "the request path contains a backslash",
            PathRefusal::PathParameter => "the request path contains ';' path parameters",
            PathRefusal::HiddenDotSegment => "the request path hides a dot segment",
            PathRefusal::ControlCharacter => "the request path contains a control character",
            PathRefusal::InvalidCharacter => {
                "the request path contains a character that must be percent-encoded"
            }
            PathRefusal::InvalidEscape => "the request path contains an invalid percent escape",
            PathRefusal::DoubleEncoding => "the request path is percent-encoded twice",
        }
    }

    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            PathRefusal::NotOriginForm => "not_origin_form",
            PathRefusal::EncodedSlash => "encoded_slash",
            PathRefusal::Backslash => "backslash",
            PathRefusal::PathParameter => "path_parameter",
            PathRefusal::HiddenDotSegment => "hidden_dot_segment",
            PathRefusal::ControlCharacter => "control_character",
            PathRefusal::InvalidCharacter => "invalid_character",
            PathRefusal::InvalidEscape => "invalid_escape",
            PathRefusal::DoubleEncoding => "double_encoding",
        }
    }

    /// 400 with the shared JSON body.
    pub fn reply(self) -> LocalReply {
        LocalReply::new(400, "invalid_path", self.message())
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escape(out: &mut Vec<u8>, value: u8) {
    let digit = |nibble: u8| HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
    out.extend([b'%', digit(value >> 4), digit(value & 15)]);
}

/// Escapes normalized, `\` read per policy, every byte checked. `/` is the only separator in
/// the result.
fn decode_unreserved(path: &[u8], policy: &PathPolicy) -> Result<Vec<u8>, PathRefusal> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = path.get(i) {
        i += 1;
        match b {
            b'%' => {
                let value = match (
                    path.get(i).and_then(|h| hex_value(*h)),
                    path.get(i + 1).and_then(|l| hex_value(*l)),
                ) {
                    (Some(h), Some(l)) => h << 4 | l,
                    _ => return Err(PathRefusal::InvalidEscape),
                };
                i += 2;
                match value {
                    v if is_unreserved(v) => out.push(v),
                    0..=0x1f | 0x7f => return Err(PathRefusal::ControlCharacter),
                    b'/' | b'\\' if policy.escaped_slashes == EscapedSlashes::Refuse => {
                        return Err(PathRefusal::EncodedSlash)
                    }
                    v => push_escape(&mut out, v),
                }
            }
            b'\\' => match policy.backslash {
                Backslash::Refuse => return Err(PathRefusal::Backslash),
                Backslash::Slash => out.push(b'/'),
            },
            b';' if policy.path_parameters == PathParameters::Refuse => {
                return Err(PathRefusal::PathParameter)
            }
            0..=0x1f | 0x7f => return Err(PathRefusal::ControlCharacter),
            b' ' | b'#' | 0x80..=0xff => return Err(PathRefusal::InvalidCharacter),
            _ => out.push(b),
        }
    }
    // `%252e` decodes to `%2e`, which a second decoding turns into `.`.
    let double = out
        .windows(5)
        .any(|w| matches!(w, [b'%', b'2', b'5', h, l] if hex_value(*h).is_some() && hex_value(*l).is_some()));
    if double {
        return Err(PathRefusal::DoubleEncoding);
    }
    Ok(out)
}

fn is_dot_segment(segment: &[u8]) -> bool {
    segment == b"." || segment == b".."
}

/// A segment that some upstream reads as `.` or `..`: before its `;parameters`, or between
/// encoded slashes that were kept as data.
fn hides_dot_segment(segment: &[u8]) -> bool {
    let before_params = segment.split(|b| *b == b';').next().unwrap_or(segment);
    if is_dot_segment(before_params) {
        return true;
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < segment.len() {
        let escape = segment.get(i..i + 3);
        if escape == Some(b"%2F") || escape == Some(b"%5C") {
            pieces.push(segment.get(start..i).unwrap_or_default());
            i += 3;
            start = i;
        } else {
            i += 1;
        }
    }
    pieces.push(segment.get(start..).unwrap_or_default());
    pieces.len() > 1 && pieces.into_iter().any(is_dot_segment)
}

/// The canonical form of a path (no query): a fixed point with no `//`, no dot segment and no
/// escaped unreserved character. `*` (as in `OPTIONS *`) is its own canonical form.
pub fn canonical_path(path: &str, policy: &PathPolicy) -> Result<String, PathRefusal> {
    if path == "*" {
        return Ok(path.to_string());
    }
    if !path.starts_with('/') {
        return Err(PathRefusal::NotOriginForm);
    }
    let decoded = decode_unreserved(path.as_bytes(), policy)?;
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut last: &[u8] = b"";
    for segment in decoded.split(|b| *b == b'/') {
        last = segment;
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            s if hides_dot_segment(s) => return Err(PathRefusal::HiddenDotSegment),
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(decoded.len());
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    // `/a/`, `/a/.` and `/a/b/..` all name the directory `/a/`.
    if segments.is_empty() || last.is_empty() || is_dot_segment(last) {
        out.push(b'/');
    }
    // Only ASCII was let through above.
    String::from_utf8(out).map_err(|_| PathRefusal::InvalidCharacter)
}

/// `:authority` as a host name: lower case, no port, no trailing dot (`API.example.com.:443`
/// is `api.example.com`). An IPv6 literal keeps its brackets.
pub fn canonical_host(authority: &str) -> String {
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

#[cfg(test)]
#[path = "canonical_tests.rs"]
mod tests;
