//! Request matching shared by per-route rules (authn rules, rate-limit rules): path exact or
//! prefix, methods, hosts, headers, all judged on the canonical [`RequestView`]. Serde gives the
//! shape; [`RequestMatch::compile`] checks it. An empty match matches every request.

use crate::canonical::{
    canonical_host, canonical_path, Backslash, EscapedSlashes, PathParameters, PathPolicy,
};
use crate::config::{header_name, ConfigError};
use crate::request::RequestView;
use serde::Deserialize;

/// The JSON shape: `{"prefix": "/api", "methods": ["GET"], "hosts": ["api.example.com"],
/// "headers": [{"name": "x-env", "value": "prod"}, {"name": "x-debug"}]}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RequestMatch {
    /// The canonical path (without query string) must equal this.
    pub path: Option<String>,
    /// The canonical path must be this or continue it with a `/`: whole segments only.
    pub prefix: Option<String>,
    /// Compare `path` / `prefix` ASCII case-insensitively, for upstreams that route so.
    pub ignore_case: bool,
    /// Any of these methods, compared exactly; empty = any method.
    pub methods: Vec<String>,
    /// Any of these hosts (canonical `:authority`: lower case, no port, no trailing dot; a
    /// leading `*.` matches any subdomain); empty = any host.
    pub hosts: Vec<String>,
    /// All of these headers: present, or every value of it equal to `value`.
    pub headers: Vec<HeaderMatch>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: String,
    /// Exact value; absent = the header only has to be present.
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathMatch {
    Any,
    Exact(String),
    /// Without a trailing `/`: `/public` for `"/public"` and `"/public/"`, empty for `"/"`.
    Prefix(String),
}

/// A checked matcher; build it once per configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMatcher {
    path: PathMatch,
    ignore_case: bool,
    methods: Vec<String>,
    hosts: Vec<String>,
    headers: Vec<(String, Option<String>)>,
}

impl Default for RequestMatcher {
    fn default() -> Self {
        Self {
            path: PathMatch::Any,
            ignore_case: false,
            methods: Vec::new(),
            hosts: Vec::new(),
            headers: Vec::new(),
        }
    }
}

impl RequestMatch {
    /// Checks the match; errors name the field relative to the match object.
    pub fn compile(&self) -> Result<RequestMatcher, ConfigError> {
        let path = match (&self.path, &self.prefix) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "prefix",
                    "set either path or prefix, not both",
                ))
            }
            (Some(p), None) => PathMatch::Exact(check_path("path", p)?),
            (None, Some(p)) => {
                let p = check_path("prefix", p)?;
                PathMatch::Prefix(p.strip_suffix('/').unwrap_or(&p).to_string())
            }
            (None, None) => PathMatch::Any,
        };
        let mut methods = Vec::with_capacity(self.methods.len());
        for (i, m) in self.methods.iter().enumerate() {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ConfigError::new(
                    format!("methods[{i}]"),
                    "must be an upper-case HTTP method such as GET",
                ));
            }
            methods.push(m.clone());
        }
        let mut hosts = Vec::with_capacity(self.hosts.len());
        for (i, h) in self.hosts.iter().enumerate() {
            if h.is_empty() || h.contains(['/', ' ', ':']) {
                return Err(ConfigError::new(
                    format!("hosts[{i}]"),
                    "must be a host name without port",
                ));
            }
            hosts.push(canonical_host(h));
        }
        let mut headers = Vec::with_capacity(self.headers.len());
        for (i, h) in self.headers.iter().enumerate() {
            let name = header_name(&format!("headers[{i}].name"), &h.name)?;
            headers.push((name, h.value.clone()));
        }
        Ok(RequestMatcher {
            path,
            ignore_case: self.ignore_case,
            methods,
            hosts,
            headers,
        })
    }
}

/// A rule path must be canonical itself: a request path never is `/a/../b` or `/%61`, so such
/// a rule would silently match nothing.
fn check_path(field: &str, p: &str) -> Result<String, ConfigError> {
    if !p.starts_with('/') {
        return Err(ConfigError::new(field, "must start with '/'"));
    }
    // The widest reading: which requests reach the matcher is the filter's `paths` policy.
    let widest = PathPolicy {
        escaped_slashes: EscapedSlashes::Keep,
        backslash: Backslash::Refuse,
        path_parameters: PathParameters::Keep,
    };
    match canonical_path(p, &widest) {
        Ok(c) if c == p => Ok(c),
        Ok(c) => Err(ConfigError::new(
            field,
            format!("must be a canonical path, as rules see requests: \"{c}\""),
        )),
        Err(refusal) => Err(ConfigError::new(field, refusal.message())),
    }
}

impl RequestMatcher {
    /// Whether the request matches.
    pub fn matches(&self, request: &RequestView) -> bool {
        if !self.path_matches(&request.path) {
            return false;
        }
        if !self.methods.is_empty() && !self.methods.contains(&request.method) {
            return false;
        }
        if !self.hosts.is_empty() && !self.hosts.iter().any(|h| host_matches(h, &request.host)) {
            return false;
        }
        self.headers.iter().all(|(name, expected)| {
            let mut values = request.header_values(name).peekable();
            values.peek().is_some()
                && expected
                    .as_ref()
                    .is_none_or(|e| values.all(|actual| actual == e))
        })
    }

    fn path_matches(&self, path: &str) -> bool {
        let same = |a: &str, b: &str| {
            if self.ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match &self.path {
            PathMatch::Any => true,
            PathMatch::Exact(p) => same(path, p),
            PathMatch::Prefix(p) => {
                path.get(..p.len()).is_some_and(|head| same(head, p))
                    && path.as_bytes().get(p.len()).is_none_or(|b| *b == b'/')
                    && !path.is_empty()
                    && path != "*"
            }
        }
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1 && host.ends_with(suffix) && {
                let dot = host.len() - suffix.len() - 1;
                host.as_bytes().get(dot) == Some(&b'.')
            }
        }
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::FakeHost;

    fn matcher(json: &str) -> RequestMatcher {
        serde_json::from_str::<RequestMatch>(json)
            .unwrap()
            .compile()
            .unwrap()
    }

    fn view(host: &FakeHost) -> RequestView {
        RequestView::read(host, &PathPolicy::default()).unwrap()
    }

    fn request(method: &str, path: &str, authority: &str) -> RequestView {
        view(&FakeHost::new().with_request(method, path, authority))
    }

    #[test]
    fn table_of_matches() {
        let cases = [
            ("empty matches all", r#"{}"#, ("GET", "/x", "a"), true),
            (
                "exact path",
                r#"{"path":"/a"}"#,
                ("GET", "/a?q=1", "a"),
                true,
            ),
            (
                "exact path differs",
                r#"{"path":"/a"}"#,
                ("GET", "/a/b", "a"),
                false,
            ),
            (
                "exact path, canonical request",
                r#"{"path":"/a"}"#,
                ("GET", "/x/../%61", "a"),
                true,
            ),
            (
                "prefix",
                r#"{"prefix":"/api/"}"#,
                ("GET", "/api/v1", "a"),
                true,
            ),
            (
                "prefix with trailing slash matches the bare segment",
                r#"{"prefix":"/api/"}"#,
                ("GET", "/api", "a"),
                true,
            ),
            (
                "prefix is the whole path",
                r#"{"prefix":"/public"}"#,
                ("GET", "/public", "a"),
                true,
            ),
            (
                "prefix below",
                r#"{"prefix":"/public"}"#,
                ("GET", "/public/x", "a"),
                true,
            ),
            (
                "prefix is whole segments",
                r#"{"prefix":"/public"}"#,
                ("GET", "/publicity", "a"),
                false,
            ),
            (
                "prefix is not a string prefix",
                r#"{"prefix":"/public"}"#,
                ("GET", "/public-admin/x", "a"),
                false,
            ),
            (
                "root prefix",
                r#"{"prefix":"/"}"#,
                ("GET", "/anything", "a"),
                true,
            ),
            (
                "prefix ignores query",
                r#"{"prefix":"/api/"}"#,
                ("GET", "/x?/api/", "a"),
                false,
            ),
            (
                "prefix sees the canonical path",
                r#"{"prefix":"/admin"}"#,
                ("GET", "/public/../admin/users", "a"),
                true,
            ),
            (
                "case matters by default",
                r#"{"prefix":"/admin"}"#,
                ("GET", "/ADMIN", "a"),
                false,
            ),
            (
                "ignore_case",
                r#"{"prefix":"/admin","ignore_case":true}"#,
                ("GET", "/ADMIN/x", "a"),
                true,
            ),
            (
                "ignore_case exact",
                r#"{"path":"/Admin","ignore_case":true}"#,
                ("GET", "/aDMIN", "a"),
                true,
            ),
            (
                "method",
                r#"{"methods":["POST"]}"#,
                ("GET", "/", "a"),
                false,
            ),
            (
                "methods compare exactly",
                r#"{"methods":["GET"]}"#,
                ("get", "/", "a"),
                false,
            ),
            (
                "host with port",
                r#"{"hosts":["api.example.com"]}"#,
                ("GET", "/", "API.example.com:8443"),
                true,
            ),
            (
                "host with trailing dot",
                r#"{"hosts":["api.example.com"]}"#,
                ("GET", "/", "api.example.com."),
                true,
            ),
            (
                "config host with trailing dot",
                r#"{"hosts":["api.example.com."]}"#,
                ("GET", "/", "api.example.com"),
                true,
            ),
            (
                "wildcard host",
                r#"{"hosts":["*.example.com"]}"#,
                ("GET", "/", "a.example.com"),
                true,
            ),
            (
                "wildcard not apex",
                r#"{"hosts":["*.example.com"]}"#,
                ("GET", "/", "example.com"),
                false,
            ),
            (
                "wildcard not suffix",
                r#"{"hosts":["*.example.com"]}"#,
                ("GET", "/", "badexample.com"),
                false,
            ),
        ];
        for (name, json, (m, p, a), expected) in cases {
            assert_eq!(matcher(json).matches(&request(m, p, a)), expected, "{name}");
        }
    }

    #[test]
    fn headers_present_or_every_value_equal() {
        let m = matcher(r#"{"headers":[{"name":"x-env","value":"prod"},{"name":"x-debug"}]}"#);
        let base = || FakeHost::new().with_request("GET", "/", "a");
        let both = base()
            .with_request_header("x-env", "prod")
            .with_request_header("x-debug", "");
        assert!(m.matches(&view(&both)));
        let wrong = base()
            .with_request_header("x-env", "dev")
            .with_request_header("x-debug", "1");
        assert!(!m.matches(&view(&wrong)));
        let repeated = base()
            .with_request_header("x-env", "prod")
            .with_request_header("x-env", "dev")
            .with_request_header("x-debug", "1");
        assert!(!m.matches(&view(&repeated)), "a second value disagrees");
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (
                r#"{"path":"/a","prefix":"/b"}"#,
                "prefix",
                "set either path or prefix, not both",
            ),
            (r#"{"prefix":"api"}"#, "prefix", "must start with '/'"),
            (
                r#"{"prefix":"/api/../admin"}"#,
                "prefix",
                "must be a canonical path, as rules see requests: \"/admin\"",
            ),
            (
                r#"{"path":"//admin"}"#,
                "path",
                "must be a canonical path, as rules see requests: \"/admin\"",
            ),
            (
                r#"{"prefix":"/%61dmin"}"#,
                "prefix",
                "must be a canonical path, as rules see requests: \"/admin\"",
            ),
            (
                r#"{"prefix":"/a%2fb"}"#,
                "prefix",
                "must be a canonical path, as rules see requests: \"/a%2Fb\"",
            ),
            (
                r#"{"prefix":"/a b"}"#,
                "prefix",
                "the request path contains a character that must be percent-encoded",
            ),
            (
                r#"{"methods":["get"]}"#,
                "methods[0]",
                "must be an upper-case HTTP method such as GET",
            ),
            (
                r#"{"hosts":["a/b"]}"#,
                "hosts[0]",
                "must be a host name without port",
            ),
            (
                r#"{"hosts":["a:80"]}"#,
                "hosts[0]",
                "must be a host name without port",
            ),
            (
                r#"{"headers":[{"name":"X-A"}]}"#,
                "headers[0].name",
                "must be a lower-case header name",
            ),
            (
                r#"{"headers":[{"name":":path"}]}"#,
                "headers[0].name",
                "must be a lower-case header name",
            ),
        ];
        for (json, field, reason) in cases {
            let err = serde_json::from_str::<RequestMatch>(json)
                .unwrap()
                .compile()
                .unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.reason.as_str()),
                (field, reason),
                "{json}"
            );
        }
    }
}
