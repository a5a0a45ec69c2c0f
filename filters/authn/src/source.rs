//! Where a credential comes from: a header with an optional scheme prefix
//! (`Authorization: Bearer …`), a query parameter, or a cookie. Pure string functions plus one
//! read from the host; also how to strip the credential before the request goes upstream.

use wasmgate_shared::matching::path_only;
use wasmgate_shared::Host;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Lower-case header name; the prefix (such as `Bearer `) is matched case-insensitively.
    Header {
        name: String,
        prefix: String,
    },
    Query {
        name: String,
    },
    Cookie {
        name: String,
    },
}

/// The value after `prefix` (scheme compared case-insensitively, RFC 7235), trimmed.
pub fn after_prefix<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = value.get(prefix.len()..)?.trim();
    (!rest.is_empty()).then_some(rest)
}

/// The first value of query parameter `name` in `path` (no percent-decoding: tokens and keys
/// are URL-safe).
pub fn query_param<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let query = path.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// `path` without every `name=…` query parameter.
pub fn without_query_param(path: &str, name: &str) -> String {
    let Some((base, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split('=').next() != Some(name))
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.trim_matches('"'))
}

/// A `Cookie` header without cookie `name`; `None` when nothing is left.
pub fn without_cookie(header: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(name))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

impl TokenSource {
    /// The credential this source finds in the current request.
    pub fn extract(&self, host: &(impl Host + ?Sized)) -> Option<String> {
        match self {
            TokenSource::Header { name, prefix } => {
                let value = host.request_header(name)?;
                after_prefix(&value, prefix).map(str::to_string)
            }
            TokenSource::Query { name } => {
                let path = host.request_header(":path")?;
                query_param(&path, name).map(str::to_string)
            }
            TokenSource::Cookie { name } => {
                let header = host.request_header("cookie")?;
                cookie(&header, name).map(str::to_string)
            }
        }
    }

    /// Removes the credential from the request before it goes upstream.
    pub fn strip(&self, host: &(impl Host + ?Sized)) {
        match self {
            TokenSource::Header { name, .. } => host.set_request_header(name, None),
            TokenSource::Query { name } => {
                if let Some(path) = host.request_header(":path") {
                    if path_only(&path) != path {
                        host.set_request_header(":path", Some(&without_query_param(&path, name)));
                    }
                }
            }
            TokenSource::Cookie { name } => {
                if let Some(header) = host.request_header("cookie") {
                    host.set_request_header("cookie", without_cookie(&header, name).as_deref());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgate_shared::host::FakeHost;

    #[test]
    fn header_prefix_is_case_insensitive_and_required() {
        assert_eq!(after_prefix("Bearer abc", "Bearer "), Some("abc"));
        assert_eq!(after_prefix("bearer  abc ", "Bearer "), Some("abc"));
        assert_eq!(after_prefix("Basic abc", "Bearer "), None);
        assert_eq!(after_prefix("Bearer ", "Bearer "), None);
        assert_eq!(after_prefix("abc", ""), Some("abc"));
        assert_eq!(after_prefix("Bear", "Bearer "), None);
    }

    #[test]
    fn query_parameters() {
        let cases = [
            ("/p?access_token=t1&x=2", Some("t1")),
            ("/p?x=2&access_token=t2", Some("t2")),
            ("/p?access_token=", None),
            ("/p?x_access_token=t", None),
            ("/p", None),
            ("/p?access_token=t3#frag", Some("t3")),
        ];
        for (path, expected) in cases {
            assert_eq!(query_param(path, "access_token"), expected, "{path}");
        }
        assert_eq!(without_query_param("/p?a=1&t=x&b=2", "t"), "/p?a=1&b=2");
        assert_eq!(without_query_param("/p?t=x", "t"), "/p");
    }

    #[test]
    fn cookies() {
        assert_eq!(cookie("a=1; jwt=tok; b=2", "jwt"), Some("tok"));
        assert_eq!(cookie("a=1;jwt=\"tok\"", "jwt"), Some("tok"));
        assert_eq!(cookie("xjwt=1", "jwt"), None);
        assert_eq!(
            without_cookie("a=1; jwt=tok; b=2", "jwt").as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(without_cookie("jwt=tok", "jwt"), None);
    }

    #[test]
    fn extract_and_strip_through_the_host() {
        let host = FakeHost::new()
            .with_request("GET", "/p?token=q&x=1", "h")
            .with_request_header("authorization", "Bearer h")
            .with_request_header("cookie", "s=c; o=1");
        let header = TokenSource::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        };
        let query = TokenSource::Query {
            name: "token".into(),
        };
        let cookie = TokenSource::Cookie { name: "s".into() };
        assert_eq!(header.extract(&host).as_deref(), Some("h"));
        assert_eq!(query.extract(&host).as_deref(), Some("q"));
        assert_eq!(cookie.extract(&host).as_deref(), Some("c"));
        for s in [&header, &query, &cookie] {
            s.strip(&host);
            assert_eq!(s.extract(&host), None);
        }
        assert_eq!(host.request_header(":path").as_deref(), Some("/p?x=1"));
        assert_eq!(host.request_header("cookie").as_deref(), Some("o=1"));
    }
}
