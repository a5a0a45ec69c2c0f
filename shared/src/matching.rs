//! Request matching shared by per-route rules (authn rules, rate-limit rules): path exact or
//! prefix, methods, hosts, headers. Serde gives the shape; [`RequestMatch::compile`] checks it.
//! An empty match matches every request.

use crate::config::ConfigError;
use crate::host::Host;
use serde::Deserialize;

/// The JSON shape: `{"prefix": "/api/", "methods": ["GET"], "hosts": ["api.example.com"],
/// "headers": [{"name": "x-env", "value": "prod"}, {"name": "x-debug"}]}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RequestMatch {
    /// The path (without query string) must equal this.
    pub path: Option<String>,
    /// The path (without query string) must start with this.
    pub prefix: Option<String>,
    /// Any of these methods (upper case); empty = any method.
    pub methods: Vec<String>,
    /// Any of these hosts (`:authority` without port, case-insensitive; a leading `*.` matches
    /// any subdomain); empty = any host.
    pub hosts: Vec<String>,
    /// All of these headers: present, or equal to `value`.
    pub headers: Vec<HeaderMatch>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
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
    Prefix(String),
}

/// A checked matcher; build it once per configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMatcher {
    path: PathMatch,
    methods: Vec<String>,
    hosts: Vec<String>,
    headers: Vec<(String, Option<String>)>,
}

impl Default for RequestMatcher {
    fn default() -> Self {
        Self {
            path: PathMatch::Any,
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
            (None, Some(p)) => PathMatch::Prefix(check_path("prefix", p)?),
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
            if h.is_empty() || h.contains(['/', ' ']) {
                return Err(ConfigError::new(
                    format!("hosts[{i}]"),
                    "must be a host name",
                ));
            }
            hosts.push(h.to_ascii_lowercase());
        }
        let mut headers = Vec::with_capacity(self.headers.len());
        for (i, h) in self.headers.iter().enumerate() {
            if h.name.is_empty() || h.name.bytes().any(|b| b.is_ascii_uppercase() || b == b' ') {
                return Err(ConfigError::new(
                    format!("headers[{i}].name"),
                    "must be a non-empty lower-case header name",
                ));
            }
            headers.push((h.name.clone(), h.value.clone()));
        }
        Ok(RequestMatcher {
            path,
            methods,
            hosts,
            headers,
        })
    }
}

fn check_path(field: &str, p: &str) -> Result<String, ConfigError> {
    if p.starts_with('/') {
        Ok(p.to_string())
    } else {
        Err(ConfigError::new(field, "must start with '/'"))
    }
}

/// `:path` without its query string or fragment.
pub fn path_only(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    path.get(..end).unwrap_or(path)
}

/// `:authority` without its port, lower-cased.
pub fn host_only(authority: &str) -> String {
    let host = if authority.starts_with('[') {
        // [v6]:port
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    host.to_ascii_lowercase()
}

impl RequestMatcher {
    /// Whether the current request matches, read from its pseudo-headers and headers.
    pub fn matches(&self, host: &(impl Host + ?Sized)) -> bool {
        if !self.path_matches(host) {
            return false;
        }
        if !self.methods.is_empty() {
            let method = host.request_header(":method").unwrap_or_default();
            if !self.methods.contains(&method) {
                return false;
            }
        }
        if !self.hosts.is_empty() {
            let authority = host_only(&host.request_header(":authority").unwrap_or_default());
            if !self.hosts.iter().any(|h| host_matches(h, &authority)) {
                return false;
            }
        }
        self.headers
            .iter()
            .all(|(name, value)| match (host.request_header(name), value) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(actual), Some(expected)) => actual == *expected,
            })
    }

    fn path_matches(&self, host: &(impl Host + ?Sized)) -> bool {
        match &self.path {
            PathMatch::Any => true,
            PathMatch::Exact(p) => host
                .request_header(":path")
                .is_some_and(|actual| path_only(&actual) == p),
            PathMatch::Prefix(p) => host
                .request_header(":path")
                .is_some_and(|actual| path_only(&actual).starts_with(p.as_str())),
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

    fn request(method: &str, path: &str, authority: &str) -> FakeHost {
        FakeHost::new().with_request(method, path, authority)
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
                "prefix",
                r#"{"prefix":"/api/"}"#,
                ("GET", "/api/v1", "a"),
                true,
            ),
            (
                "prefix ignores query",
                r#"{"prefix":"/api/"}"#,
                ("GET", "/x?/api/", "a"),
                false,
            ),
            (
                "method",
                r#"{"methods":["POST"]}"#,
                ("GET", "/", "a"),
                false,
            ),
            (
                "host with port",
                r#"{"hosts":["api.example.com"]}"#,
                ("GET", "/", "API.example.com:8443"),
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
    fn headers_present_or_equal() {
        let m = matcher(r#"{"headers":[{"name":"x-env","value":"prod"},{"name":"x-debug"}]}"#);
        let both = request("GET", "/", "a")
            .with_request_header("x-env", "prod")
            .with_request_header("x-debug", "");
        assert!(m.matches(&both));
        let wrong = request("GET", "/", "a")
            .with_request_header("x-env", "dev")
            .with_request_header("x-debug", "1");
        assert!(!m.matches(&wrong));
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (r#"{"path":"/a","prefix":"/b"}"#, "prefix"),
            (r#"{"prefix":"api"}"#, "prefix"),
            (r#"{"methods":["get"]}"#, "methods[0]"),
            (r#"{"hosts":["a/b"]}"#, "hosts[0]"),
            (r#"{"headers":[{"name":"X-A"}]}"#, "headers[0].name"),
        ];
        for (json, field) in cases {
            let err = serde_json::from_str::<RequestMatch>(json)
                .unwrap()
                .compile()
                .unwrap_err();
            assert_eq!(err.field, field, "{json}");
        }
    }

    #[test]
    fn host_only_strips_ports_and_keeps_ipv6() {
        assert_eq!(host_only("Example.com:80"), "example.com");
        assert_eq!(host_only("[::1]:80"), "[::1]");
    }
}
