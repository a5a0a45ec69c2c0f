//! [`RequestView`]: the request as every rule and key judges it, read from the host once.
//! It holds the canonical path and host ([`crate::canonical`]) next to every header, so a
//! filter reads no header twice and sees every value of a repeated one. Stages that share a
//! view write headers through it ([`RequestView::set_header`]), so the next stage judges what
//! the upstream will receive, as it would in a filter of its own.

use crate::canonical::{canonical_host, canonical_path, PathPolicy, PathRefusal};
use crate::host::Host;
use crate::identity::Identity;
use crate::span_notes::SpanNotes;
use std::cell::OnceCell;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    pub method: String,
    /// The canonical path without the query under the last [`RequestView::judge`]'s policy;
    /// empty when the request has no `:path` (CONNECT) or before it was judged.
    pub path: String,
    /// What followed the first `?` of `:path`, unchanged.
    pub query: Option<String>,
    /// The canonical `:authority` (lower case, no port, no trailing dot).
    pub host: String,
    /// `:path` as received.
    pub raw_path: String,
    /// Who the request authenticated as, once authn verified it (in the gateway module).
    pub identity: Option<Identity>,
    /// What the stages decided, for the gateway's span (kept only while it records).
    pub notes: SpanNotes,
    /// Every header, pseudo-headers included, in order, with this view's own writes applied.
    headers: Vec<(String, String)>,
    /// The policy `path` was computed with; `None` before the first judgement.
    judged_with: Option<PathPolicy>,
    /// Envoy's `source.address`, read at most once for all the stages that key on it.
    source_address: OnceCell<Option<String>>,
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
        let mut view = Self::unjudged(headers);
        view.judge(policy)?;
        Ok(view)
    }

    /// The request before any path policy: method, host and headers, but no `path` yet.
    pub fn unjudged(headers: Vec<(String, String)>) -> Self {
        let first = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let method = first(":method").unwrap_or_default().to_string();
        let host = canonical_host(first(":authority").unwrap_or_default());
        let raw_path = first(":path").unwrap_or_default().to_string();
        let mut view = Self {
            method,
            path: String::new(),
            query: None,
            host,
            raw_path,
            identity: None,
            notes: SpanNotes::default(),
            headers,
            judged_with: None,
            source_address: OnceCell::new(),
        };
        view.split_query();
        view
    }

    fn split_query(&mut self) {
        self.query = self
            .raw_path
            .split_once('?')
            .map(|(_, query)| query.to_string());
    }

    /// Computes the canonical `path` under `policy`, or the refusal. A stage with the policy
    /// the view was last judged with pays nothing.
    pub fn judge(&mut self, policy: &PathPolicy) -> Result<(), PathRefusal> {
        if self.judged_with == Some(*policy) {
            return Ok(());
        }
        let received = self.raw_path.split('?').next().unwrap_or_default();
        self.path = if received.is_empty() {
            String::new()
        } else {
            canonical_path(received, policy)?
        };
        self.judged_with = Some(*policy);
        Ok(())
    }

    /// Writes request header `name` upstream (`None` removes every value) and into this view.
    pub fn set_header(&mut self, host: &(impl Host + ?Sized), name: &str, value: Option<&str>) {
        host.set_request_header(name, value);
        self.headers.retain(|(k, _)| k != name);
        if let Some(value) = value {
            self.headers.push((name.to_string(), value.to_string()));
        }
        if name == ":path" {
            self.raw_path = value.unwrap_or_default().to_string();
            self.split_query();
            // A path written by a stage is judged again by the next one, as upstream sees it.
            self.judged_with = None;
        }
    }

    /// The connection's downstream address as Envoy decided it (`source.address`, with port).
    pub fn source_address(&self, host: &(impl Host + ?Sized)) -> Option<&str> {
        self.source_address
            .get_or_init(|| {
                let bytes = host.property(&["source", "address"])?;
                String::from_utf8(bytes).ok()
            })
            .as_deref()
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
    pub fn forward_canonical_path(&mut self, host: &(impl Host + ?Sized)) {
        if !self.is_canonical() {
            let path = self.upstream_path();
            let judged_with = self.judged_with;
            self.set_header(host, ":path", Some(&path));
            // The canonical form is its own canonical form under the same policy.
            self.judged_with = judged_with;
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
        let mut v = view(&host).unwrap();
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
    fn writes_through_the_view_reach_the_host_and_the_next_reader() {
        let host = FakeHost::new()
            .with_request("GET", "/a/./b?q=1", "h")
            .with_request_header("x-user", "forged");
        let mut v = view(&host).unwrap();
        v.set_header(&host, "x-user", Some("alice"));
        v.set_header(&host, "x-new", Some("1"));
        assert_eq!(v.header_values("x-user").collect::<Vec<_>>(), ["alice"]);
        assert_eq!(host.request_header("x-user").as_deref(), Some("alice"));
        v.set_header(&host, "x-new", None);
        assert_eq!(v.header("x-new"), None);
        v.forward_canonical_path(&host);
        assert_eq!(v.raw_path, "/a/b?q=1");
        assert!(v.is_canonical());
    }

    #[test]
    fn each_stage_judges_with_its_own_policy() {
        use crate::canonical::EscapedSlashes;
        let host = FakeHost::new().with_request("GET", "/a%2Fb", "h");
        let mut v = RequestView::unjudged(host.request_headers());
        let keep = PathPolicy {
            escaped_slashes: EscapedSlashes::Keep,
            ..PathPolicy::default()
        };
        assert_eq!(v.judge(&keep), Ok(()));
        assert_eq!(v.path, "/a%2Fb");
        assert_eq!(
            v.judge(&PathPolicy::default()),
            Err(PathRefusal::EncodedSlash)
        );
    }

    #[test]
    fn an_ambiguous_path_is_refused() {
        let host = FakeHost::new().with_request("GET", "/a%2Fb", "h");
        assert_eq!(view(&host), Err(PathRefusal::EncodedSlash));
    }
}
