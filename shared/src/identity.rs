//! [`Identity`]: who a request authenticated as, handed from authn to the stages after it in
//! the gateway module, so a rate-limit key needs no header a client could forge.

use serde_json::{Map, Value};
use std::rc::Rc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The API-key consumer's name, or the JWT's `sub`; `None` for a token without `sub`.
    pub name: Option<String>,
    /// The verified token's claims (empty for an API key), shared with authn's token cache.
    pub claims: Rc<Map<String, Value>>,
}

impl Identity {
    /// The text of top-level claim `name`: strings as they are, numbers and booleans as JSON.
    /// Arrays, objects and null have no single text, so they count as missing.
    pub fn claim(&self, name: &str) -> Option<String> {
        match self.claims.get(name)? {
            Value::String(s) => Some(s.clone()),
            value @ (Value::Number(_) | Value::Bool(_)) => Some(value.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_with_one_text_only() {
        let claims = serde_json::json!({"t": "acme", "n": 7, "b": true, "a": ["x"], "z": null});
        let identity = Identity {
            name: None,
            claims: Rc::new(claims.as_object().cloned().unwrap_or_default()),
        };
        assert_eq!(identity.claim("t").as_deref(), Some("acme"));
        assert_eq!(identity.claim("n").as_deref(), Some("7"));
        assert_eq!(identity.claim("b").as_deref(), Some("true"));
        for missing in ["a", "z", "nope"] {
            assert_eq!(identity.claim(missing), None);
        }
    }
}
