//! A small blocking HTTP client for tests. One [`Client`] keeps its own connections, so one
//! client per thread gives concurrent connections to Envoy.

use crate::server::SeenRequest;
use std::io::Read;
use std::time::Duration;

/// A response, whatever its status.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first value of a response header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.body))
    }

    /// The request as the echo upstream saw it (panics if the upstream did not answer).
    pub fn upstream(&self) -> SeenRequest {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "not an echo from the upstream (status {}, {e}): {}",
                self.status, self.body
            )
        })
    }

    /// A header as the echo upstream saw it.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.upstream().header(name).map(str::to_string)
    }
}

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub fn new() -> Self {
        Self {
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(20))
                .redirects(0)
                .build(),
        }
    }

    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", url, headers, b"")
    }

    /// Sends a request; any HTTP status is a [`Response`], a transport error panics.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_request(method, url, headers, body)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    pub fn try_request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let mut req = self.agent.request(method, url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = if body.is_empty() {
            req.call()
        } else {
            req.send_bytes(body)
        };
        let resp = match result {
            Ok(resp) => resp,
            Err(ureq::Error::Status(_, resp)) => resp,
            Err(e) => return Err(e.to_string()),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .flat_map(|name| {
                resp.all(&name)
                    .into_iter()
                    .map(|v| (name.clone(), v.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut text = String::new();
        resp.into_reader()
            .take(16 << 20)
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        Ok(Response {
            status,
            headers,
            body: text,
        })
    }
}
