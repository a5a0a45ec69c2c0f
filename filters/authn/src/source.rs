//! Where a credential comes from: a header with an optional scheme prefix
//! (`Authorization: Bearer …`), a query parameter, or a cookie. Found in the [`RequestView`]
//! (every value of a repeated header); removed through a [`Scrub`] that writes each changed
//! header once.

use wasmgate_shared::request::{header_twins, upstream_path};
use wasmgate_shared::{Host, RequestView};

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

/// The request carries this credential more than once: which one an upstream reads is
/// anyone's guess, so the request is refused (RFC 6750 §3.1 `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicated;

/// The value after `prefix` (scheme compared case-insensitively, RFC 7235), trimmed.
pub fn after_prefix<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = value.get(prefix.len()..)?.trim();
    (!rest.is_empty()).then_some(rest)
}

/// A query parameter's name as servers read it: `access%5Ftoken` is `access_token`.
fn param_name_is(raw: &str, name: &str) -> bool {
    if !raw.contains('%') {
        return raw == name;
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                decoded.push(v);
                i += 3;
            }
            _ => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    decoded == name.as_bytes()
}

/// Every value of query parameter `name` (values are not decoded: tokens and keys are URL-safe).
pub fn query_params<'q, 'n>(
    query: &'q str,
    name: &'n str,
) -> impl Iterator<Item = &'q str> + use<'q, 'n> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .filter(move |(k, _)| param_name_is(k, name))
        .map(|(_, v)| v)
}

/// `query` without any parameter named one of `names`; `None` when nothing is left.
pub fn without_query_params(query: &str, names: &[&str]) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or(pair);
            !names.iter().any(|n| param_name_is(key, n))
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Every `name=value` pair of every `Cookie` header (HTTP/2 sends one header per cookie).
fn cookie_pairs<'a>(view: &'a RequestView) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    view.header_values("cookie")
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

/// One `Cookie` header with every cookie of the request but those named in `names`.
pub fn without_cookies(view: &RequestView, names: &[&str]) -> Option<String> {
    let kept: Vec<String> = view
        .header_values("cookie")
        .flat_map(|h| h.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !names.contains(&pair.split('=').next().unwrap_or(pair)))
        .map(str::to_string)
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// At most one value, or [`Duplicated`].
fn single<'a>(mut values: impl Iterator<Item = &'a str>) -> Result<Option<&'a str>, Duplicated> {
    let first = values.next();
    match values.next() {
        Some(_) => Err(Duplicated),
        None => Ok(first),
    }
}

impl TokenSource {
    /// The credential this source finds in the request; a second one anywhere an upstream
    /// could read it (a repeated header, its `_`/`-` twin, a repeated parameter or cookie) is
    /// [`Duplicated`].
    pub fn find<'a>(&self, view: &'a RequestView) -> Result<Option<&'a str>, Duplicated> {
        let value = match self {
            TokenSource::Header { name, prefix } => {
                let values = view
                    .headers()
                    .iter()
                    .filter(|(k, _)| header_twins(k, name))
                    .map(|(_, v)| v.as_str());
                let value = single(values)?.and_then(|v| after_prefix(v, prefix));
                // Envoy joins a repeated `Authorization` (an inline header) with commas; no
                // token or key contains one.
                if value.is_some_and(|v| v.contains(',')) {
                    return Err(Duplicated);
                }
                value
            }
            TokenSource::Query { name } => match &view.query {
                Some(q) => single(query_params(q, name))?,
                None => None,
            },
            TokenSource::Cookie { name } => single(
                cookie_pairs(view)
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v),
            )?
            .map(|v| v.trim_matches('"')),
        };
        Ok(value.filter(|v| !v.is_empty()))
    }
}

/// The credential locations to remove from a request, applied with one write per header.
#[derive(Debug, Default)]
pub struct Scrub<'a> {
    headers: Vec<&'a str>,
    params: Vec<&'a str>,
    cookies: Vec<&'a str>,
}

impl<'a> Scrub<'a> {
    pub fn add(&mut self, source: &'a TokenSource) {
        match source {
            TokenSource::Header { name, .. } => self.headers.push(name),
            TokenSource::Query { name } => self.params.push(name),
            TokenSource::Cookie { name } => self.cookies.push(name),
        }
    }

    /// A header removed with its `_`/`-` twins wherever the request has one.
    pub fn add_header(&mut self, name: &'a str) {
        self.headers.push(name);
    }

    /// Removes the credentials and sends the canonical `:path` (without the removed
    /// parameters) when it differs from the received one.
    pub fn apply(&self, view: &mut RequestView, host: &(impl Host + ?Sized)) {
        let mut removed: Vec<String> = Vec::new();
        for (name, _) in view.headers() {
            if self.headers.iter().any(|h| header_twins(name, h)) && !removed.contains(name) {
                removed.push(name.clone());
            }
        }
        for name in &removed {
            view.set_header(host, name, None);
        }
        let cookies =
            !self.cookies.is_empty() && cookie_pairs(view).any(|(k, _)| self.cookies.contains(&k));
        if cookies {
            let kept = without_cookies(view, &self.cookies);
            view.set_header(host, "cookie", kept.as_deref());
        }
        let drops_params = match &view.query {
            Some(q) => self
                .params
                .iter()
                .any(|n| query_params(q, n).next().is_some()),
            None => false,
        };
        if !drops_params {
            view.forward_canonical_path(host);
            return;
        }
        let query = view
            .query
            .as_deref()
            .and_then(|q| without_query_params(q, &self.params));
        let path = upstream_path(&view.path, query.as_deref());
        view.set_header(host, ":path", Some(&path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgate_shared::canonical::PathPolicy;
    use wasmgate_shared::host::FakeHost;

    fn view(host: &FakeHost) -> RequestView {
        RequestView::read(host, &PathPolicy::default()).unwrap()
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> FakeHost {
        let host = FakeHost::new().with_request("GET", path, "h");
        for (k, v) in headers {
            host.add_request_header(k, v);
        }
        host
    }

    fn bearer() -> TokenSource {
        TokenSource::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        }
    }

    fn query(name: &str) -> TokenSource {
        TokenSource::Query { name: name.into() }
    }

    fn cookie(name: &str) -> TokenSource {
        TokenSource::Cookie { name: name.into() }
    }

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
    fn finds_one_credential_or_refuses_a_second() {
        let x_key = TokenSource::Header {
            name: "x-api-key".into(),
            prefix: String::new(),
        };
        /// (what, source, path, headers, expected)
        type Case<'a> = (
            &'a str,
            TokenSource,
            &'a str,
            &'a [(&'a str, &'a str)],
            Result<Option<&'a str>, Duplicated>,
        );
        let cases: [Case; 15] = [
            (
                "header joined by Envoy",
                bearer(),
                "/p",
                &[("authorization", "Bearer a,Bearer b")],
                Err(Duplicated),
            ),
            (
                "bearer",
                bearer(),
                "/p",
                &[("authorization", "Bearer t")],
                Ok(Some("t")),
            ),
            (
                "other scheme",
                bearer(),
                "/p",
                &[("authorization", "Basic t")],
                Ok(None),
            ),
            (
                "header twice",
                bearer(),
                "/p",
                &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
                Err(Duplicated),
            ),
            (
                "header and its twin",
                x_key.clone(),
                "/p",
                &[("x-api-key", "a"), ("x_api_key", "b")],
                Err(Duplicated),
            ),
            (
                "the twin alone",
                x_key,
                "/p",
                &[("x_api_key", "b")],
                Ok(Some("b")),
            ),
            (
                "query",
                query("access_token"),
                "/p?x=2&access_token=t",
                &[],
                Ok(Some("t")),
            ),
            (
                "empty query value",
                query("access_token"),
                "/p?access_token=",
                &[],
                Ok(None),
            ),
            (
                "other parameter",
                query("access_token"),
                "/p?x_access_token=t",
                &[],
                Ok(None),
            ),
            (
                "query twice",
                query("access_token"),
                "/p?access_token=a&access_token=b",
                &[],
                Err(Duplicated),
            ),
            (
                "encoded name",
                query("access_token"),
                "/p?access%5Ftoken=a&access_token=b",
                &[],
                Err(Duplicated),
            ),
            (
                "cookie",
                cookie("jwt"),
                "/p",
                &[("cookie", "a=1; jwt=\"t\"; b=2")],
                Ok(Some("t")),
            ),
            (
                "cookie name is exact",
                cookie("jwt"),
                "/p",
                &[("cookie", "xjwt=1")],
                Ok(None),
            ),
            (
                "cookie twice",
                cookie("jwt"),
                "/p",
                &[("cookie", "jwt=a; jwt=b")],
                Err(Duplicated),
            ),
            (
                "cookie across headers",
                cookie("jwt"),
                "/p",
                &[("cookie", "jwt=a"), ("cookie", "jwt=b")],
                Err(Duplicated),
            ),
        ];
        for (name, source, path, headers, expected) in cases {
            let host = request(path, headers);
            assert_eq!(source.find(&view(&host)), expected, "{name}");
        }
    }

    #[test]
    fn scrub_removes_credentials_and_keeps_everything_else() {
        let host = request(
            "/a/../p?token=q&x=1&tok%65n=r",
            &[
                ("authorization", "Bearer h"),
                ("authorization_", "kept: not a twin"),
                ("cookie", "s=c; o=1"),
                ("cookie", "p=2"),
            ],
        );
        let mut v = view(&host);
        let (header, query, cookie) = (bearer(), query("token"), cookie("s"));
        let mut scrub = Scrub::default();
        for s in [&header, &query, &cookie] {
            scrub.add(s);
        }
        scrub.apply(&mut v, &host);
        assert_eq!(host.request_header("authorization"), None);
        assert_eq!(
            host.request_header("authorization_").as_deref(),
            Some("kept: not a twin")
        );
        assert_eq!(host.request_header(":path").as_deref(), Some("/p?x=1"));
        assert_eq!(host.request_header_values("cookie"), ["o=1; p=2"]);
    }

    #[test]
    fn scrub_removes_header_twins() {
        let host = request("/p", &[("x-api-key", "k"), ("X_Api_Key", "forged")]);
        let source = TokenSource::Header {
            name: "x-api-key".into(),
            prefix: String::new(),
        };
        let mut scrub = Scrub::default();
        scrub.add(&source);
        scrub.apply(&mut view(&host), &host);
        assert_eq!(host.request_header("x-api-key"), None);
        assert_eq!(host.request_header("x_api_key"), None);
    }

    #[test]
    fn scrub_of_nothing_writes_nothing() {
        let host = request("/p?x=1", &[("cookie", "a=1")]);
        let before = host.request_headers();
        Scrub::default().apply(&mut view(&host), &host);
        assert_eq!(host.request_headers(), before);
    }
}
