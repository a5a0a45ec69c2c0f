//! [`RequestView`]: the request as every rule and key judges it, read from the host once.
//! It holds the canonical path and host ([`crate::canonical`]) next to every header as
//! received, so a filter reads no header twice and sees every value of a repeated one.

use crate::canonical::{canonical_host, canonical_path, PathPolicy, PathRefusal};
use crate::host::Host;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    pub method: String,
    /// The canonical path without the query; empty when the request has no `:path` (CONNECT).
    pub path: String,
    /// What followed the first `?` of `:path`, unchanged.
    pub query: Option<String>,
    /// The canonical `:authority` (lower case, no port, no trailing dot).
    pub host: String,
    /// `:path` as received.
    pub raw_path: String,
    /// Every header as received, pseudo-headers included, in order.
    headers: Vec<(String, String)>,
}

impl RequestView {
    /// Reads the current request's headers (one host call) and canonicalizes it.
    pub fn read(host: &(impl Host + ?Sized), policy: &PathPolicy) -> Result<Self, PathRefusal> {
        Self::from_headers(host.request_headers(), policy)
    }

    pub fn from_headers(
        headers: Vec<(String, String)>,
        policy: &PathPolicy,
    ) -> Result<Self, PathRefusal> {
        let first = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let method = first(":method").unwrap_or_default().to_string();
        let host = canonical_host(first(":authority").unwrap_or_default());
        let raw_path = first(":path").unwrap_or_default().to_string();
        let (path, query) = match raw_path.split_once('?') {
            Some((path, query)) => (path, Some(query.to_string())),
            None => (raw_path.as_str(), None),
        };
        let path = if raw_path.is_empty() {
            String::new()
        } else {
            canonical_path(path, policy)?
        };
        Ok(Self {
            method,
            path,
            query,
            host,
            raw_path,
            headers,
        })
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (lower case), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// `:path` for the upstream: the canonical path with the query as received.
    pub fn upstream_path(&self) -> String {
        upstream_path(&self.path, self.query.as_deref())
    }

    /// Sends the canonical `:path` upstream if it differs from the received one, so the
    /// upstream serves exactly what was judged.
    pub fn forward_canonical_path(&self, host: &(impl Host + ?Sized)) {
        if !self.is_canonical() {
            host.set_request_header(":path", Some(&self.upstream_path()));
        }
    }

    /// Whether `:path` arrived in its canonical form (or has no path to judge).
    pub fn is_canonical(&self) -> bool {
        self.path.is_empty() || self.raw_path.split('?').next() == Some(self.path.as_str())
    }
}

/// Whether two header names reach an upstream as the same one: WSGI, CGI, PHP and Rails map
/// `x_user_id` and `X-User-Id` alike, so a filter that manages one must manage both.
pub fn header_twins(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            let fold = |c: u8| {
                if c == b'_' {
                    b'-'
                } else {
                    c.to_ascii_lowercase()
                }
            };
            fold(x) == fold(y)
        })
}

/// `path?query`, or `path` alone.
pub fn upstream_path(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::FakeHost;

    fn view(host: &FakeHost) -> Result<RequestView, PathRefusal> {
        RequestView::read(host, &PathPolicy::default())
    }

    #[test]
    fn canonical_path_and_host_with_the_query_kept() {
        let host =
            FakeHost::new().with_request("GET", "/public/../%61dmin?x=/../y", "API.test.:80");
        let v = view(&host).unwrap();
        assert_eq!(v.method, "GET");
        assert_eq!(v.path, "/admin");
        assert_eq!(v.query.as_deref(), Some("x=/../y"));
        assert_eq!(v.host, "api.test");
        v.forward_canonical_path(&host);
        assert_eq!(
            host.request_header(":path").as_deref(),
            Some("/admin?x=/../y")
        );
    }

    #[test]
    fn a_canonical_path_is_not_rewritten() {
        let host = FakeHost::new().with_request("GET", "/a/b?q", "h");
        let before = host.request_headers();
        view(&host).unwrap().forward_canonical_path(&host);
        // A write would move `:path` to the end of the fake's header list.
        assert_eq!(host.request_headers(), before);
    }

    #[test]
    fn every_value_of_a_repeated_header() {
        let host = FakeHost::new()
            .with_request("GET", "/", "h")
            .with_request_header("x-a", "1")
            .with_request_header("x-a", "2");
        let v = view(&host).unwrap();
        assert_eq!(v.header("x-a"), Some("1"));
        assert_eq!(v.header_values("x-a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(v.header("x-b"), None);
    }

    #[test]
    fn header_twins_fold_case_and_underscores() {
        assert!(header_twins("x_user_id", "x-user-id"));
        assert!(header_twins("X-User_Id", "x-user-id"));
        assert!(header_twins("x-user-id", "x-user-id"));
        assert!(!header_twins("x-user-ids", "x-user-id"));
        assert!(!header_twins("x.user.id", "x-user-id"));
    }

    #[test]
    fn an_ambiguous_path_is_refused() {
        let host = FakeHost::new().with_request("GET", "/a%2Fb", "h");
        assert_eq!(view(&host), Err(PathRefusal::EncodedSlash));
    }
}
