//! The one local reply every filter sends when it refuses a request: a status, a JSON body
//! `{"error": "<code>", "message": "<human text>"}` and any extra headers
//! (`WWW-Authenticate`, `Retry-After`, rate-limit fields).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    /// A stable, machine-readable code such as `invalid_token` or `rate_limited`.
    pub error: String,
    /// One sentence for a human; never internal detail.
    pub message: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl LocalReply {
    pub fn new(status: u16, error: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The JSON body; serde escapes whatever the message holds.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            error: &self.error,
            message: &self.message,
        })
        .unwrap_or_else(|_| br#"{"error":"internal","message":""}"#.to_vec())
    }

    /// Headers as sent: the caller's, then `content-type`.
    pub fn all_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(std::iter::once(("content-type", "application/json")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_json_with_error_and_message() {
        let reply = LocalReply::new(401, "invalid_token", "the \"token\" expired");
        let body: serde_json::Value = serde_json::from_slice(&reply.body()).unwrap_or_default();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["message"], "the \"token\" expired");
    }

    #[test]
    fn content_type_is_always_json() {
        let reply =
            LocalReply::new(429, "rate_limited", "slow down").with_header("retry-after", "3");
        let headers: Vec<_> = reply.all_headers().collect();
        assert_eq!(
            headers,
            vec![("retry-after", "3"), ("content-type", "application/json")]
        );
    }
}
