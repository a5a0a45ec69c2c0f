//! The path and host every rule judges (`shared/src/canonical.rs`) and the request matcher
//! rules share (`shared/src/matching.rs`).

use crate::{request_headers, Input, Seed};
use serde_json::json;
use wasmgate_shared::canonical::{
    canonical_host, canonical_path as canonical, Backslash, EscapedSlashes, PathParameters,
    PathPolicy,
};
use wasmgate_shared::host::FakeHost;
use wasmgate_shared::matching::RequestMatch;
use wasmgate_shared::{Host, RequestView};

/// The policy the low three bits of `flags` spell.
pub fn policy(flags: u8) -> PathPolicy {
    PathPolicy {
        escaped_slashes: if flags & 1 == 0 {
            EscapedSlashes::Refuse
        } else {
            EscapedSlashes::Keep
        },
        backslash: if flags & 2 == 0 {
            Backslash::Refuse
        } else {
            Backslash::Slash
        },
        path_parameters: if flags & 4 == 0 {
            PathParameters::Refuse
        } else {
            PathParameters::Keep
        },
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Layout: policy flags, the path, then an `:authority`.
///
/// A canonical path is a fixed point (canonicalizing it again changes nothing), starts with
/// `/`, has no empty, `.` or `..` segment but a trailing `/`, only visible ASCII, and only
/// upper-case escapes of reserved bytes. What the strictest policy accepts every looser
/// policy reads the same. A canonical host has no upper case and no port.
pub fn canonical_path(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let path = input.text();
    let authority = input.rest_text();
    let host = canonical_host(&authority);
    assert!(!host.bytes().any(|b| b.is_ascii_uppercase()), "{host:?}");
    if !authority.starts_with('[') {
        assert!(!host.contains(':'), "port kept: {host:?}");
    }
    let policy = policy(flags);
    let Ok(c) = canonical(&path, &policy) else {
        return;
    };
    assert_eq!(
        canonical(&c, &policy).as_deref(),
        Ok(c.as_str()),
        "not a fixed point"
    );
    if path == "*" {
        assert_eq!(c, "*");
        return;
    }
    assert!(c.starts_with('/'), "{c:?}");
    let inner = c.strip_suffix('/').unwrap_or(&c);
    for segment in inner.split('/').skip(1) {
        assert!(
            !matches!(segment, "" | "." | ".."),
            "segment {segment:?} left in {c:?}"
        );
    }
    let bytes = c.as_bytes();
    assert!(bytes.iter().all(|b| (0x21..0x7f).contains(b)), "{c:?}");
    for (i, _) in c.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3).expect("escape of two digits");
        assert!(
            hex.iter()
                .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h)),
            "lower-case escape in {c:?}"
        );
        let value = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("00"), 16).unwrap_or(0);
        assert!(!is_unreserved(value), "escaped unreserved byte in {c:?}");
    }
    if flags & 7 == 0 {
        for looser in 1..8 {
            assert_eq!(
                canonical(&path, &self::policy(looser)).as_deref(),
                Ok(c.as_str()),
                "policy {looser} reads {path:?} otherwise"
            );
        }
    }
}

pub fn canonical_path_seeds() -> Vec<Vec<u8>> {
    [
        (0, "/public/../admin/users", "API.example.com.:443"),
        (0, "/public/%2e%2E/admin", "h"),
        (0, "/%61dmin//x/./y/..", "[::1]:80"),
        (1, "/a%2Fb/..%2F../c", "h"),
        (2, "/a\\..\\b", "h"),
        (4, "/a/..;x/b;p=1", "h"),
        (0, "/a/%252e%252e/b", "h"),
        (7, "*", "h"),
        (0, "/a/%7euser/%zz", "h"),
    ]
    .into_iter()
    .map(|(flags, path, authority)| Seed::new().byte(flags).field(path).rest(authority))
    .collect()
}

/// Layout: policy flags, the match (JSON), method, `:path`, `:authority`, then the other
/// headers.
///
/// What the matcher says about a request it says again about the request the upstream
/// receives (the canonical `:path` forwarded and judged anew); and a match holds only where
/// each of its conditions, read here independently, holds on the canonical request.
pub fn request_matcher(data: &[u8]) {
    let mut input = Input::new(data);
    let policy = policy(input.byte());
    let Ok(raw) = serde_json::from_slice::<RequestMatch>(input.field()) else {
        return;
    };
    let Ok(matcher) = raw.compile() else {
        return;
    };
    let method = input.text();
    let path = input.text();
    let authority = input.text();
    let host = FakeHost::new().with_request(&method, &path, &authority);
    for (k, v) in request_headers(&input.rest_text()) {
        host.add_request_header(&k, &v);
    }
    let Ok(mut view) = RequestView::read(&host, &policy) else {
        return;
    };
    let matched = matcher.matches(&view);
    view.forward_canonical_path(&host);
    let upstream = RequestView::read(&host, &policy).expect("the canonical path is canonical");
    assert_eq!(
        matcher.matches(&upstream),
        matched,
        "{path:?} judged otherwise upstream"
    );
    if !matched {
        return;
    }
    let same = |a: &str, b: &str| {
        if raw.ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    if let Some(exact) = &raw.path {
        assert!(same(&view.path, exact), "{} is not {exact}", view.path);
    }
    if let Some(prefix) = &raw.prefix {
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        let head = view.path.get(..prefix.len()).unwrap_or("");
        let next = view.path.as_bytes().get(prefix.len());
        assert!(
            same(head, prefix) && next.is_none_or(|b| *b == b'/'),
            "{} is not under {prefix}",
            view.path
        );
    }
    if !raw.methods.is_empty() {
        assert!(raw.methods.contains(&view.method));
    }
    if !raw.hosts.is_empty() {
        let request_host = canonical_host(&authority);
        let any = raw.hosts.iter().any(|h| {
            let h = canonical_host(h);
            match h.strip_prefix("*.") {
                Some(suffix) => request_host.ends_with(&format!(".{suffix}")),
                None => h == request_host,
            }
        });
        assert!(any, "host {request_host} matched none of {:?}", raw.hosts);
    }
    for h in &raw.headers {
        let values: Vec<&str> = view.header_values(&h.name).collect();
        assert!(!values.is_empty(), "{} absent", h.name);
        if let Some(want) = &h.value {
            assert!(values.iter().all(|v| v == want), "{} differs", h.name);
        }
    }
}

pub fn request_matcher_seeds() -> Vec<Vec<u8>> {
    let seed = |m: serde_json::Value, method: &str, path: &str, headers: &str| {
        Seed::new()
            .byte(0)
            .field(m.to_string())
            .field(method)
            .field(path)
            .field("API.example.com:443")
            .rest(headers)
    };
    vec![
        seed(json!({"prefix": "/api/"}), "GET", "/api/../api/v1", ""),
        seed(
            json!({"prefix": "/Admin", "ignore_case": true}),
            "GET",
            "/%61dmin/x",
            "",
        ),
        seed(json!({"path": "/a"}), "POST", "/x/../%61?q=1", ""),
        seed(
            json!({"methods": ["GET"], "hosts": ["*.example.com"], "headers": [{"name": "x-env", "value": "prod"}, {"name": "x-debug"}]}),
            "GET",
            "/",
            "x-env: prod\nx-debug: 1\nx-env: prod",
        ),
        seed(json!({"hosts": ["api.example.com"]}), "GET", "*", ""),
    ]
}
