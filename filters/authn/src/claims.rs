//! Registered-claim checks (RFC 7519 §4.1) on a verified token's claims: `exp`, `nbf`, `iat`
//! against the clock with the provider's skew, `iss`, `aud`. Pure: the time is a parameter.

use crate::denial::Denial;
use serde_json::{Map, Value};

/// What a provider demands of registered claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPolicy {
    /// The token's `iss` must equal it; `None` only with `accept_any_issuer`.
    pub issuer: Option<String>,
    /// Non-empty: the token's `aud` (string or array) must contain one of these; `None` only
    /// with `accept_any_audience`.
    pub audiences: Option<Vec<String>>,
    pub skew_secs: u64,
    pub require_exp: bool,
}

/// A NumericDate: seconds since the epoch, integer or not (RFC 7519 §2); floored.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, Denial> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
                    _ => Err(Denial::Malformed),
                }
            }
        }
        Some(_) => Err(Denial::Malformed),
    }
}

/// The token's `iss`, if it is a string.
pub fn issuer(claims: &Map<String, Value>) -> Option<&str> {
    claims.get("iss").and_then(Value::as_str)
}

impl ClaimPolicy {
    /// Checks every registered claim; returns `exp` (for the cache) on success.
    pub fn check(&self, claims: &Map<String, Value>, now_secs: u64) -> Result<Option<u64>, Denial> {
        if !self.issuer_accepted(claims) {
            return Err(Denial::WrongIssuer);
        }
        let exp = numeric_date(claims, "exp")?;
        let nbf = numeric_date(claims, "nbf")?;
        let iat = numeric_date(claims, "iat")?;
        match exp {
            Some(exp) if now_secs > exp.saturating_add(self.skew_secs) => {
                return Err(Denial::Expired)
            }
            None if self.require_exp => return Err(Denial::MissingExpiry),
            _ => {}
        }
        if nbf.is_some_and(|nbf| nbf > now_secs.saturating_add(self.skew_secs)) {
            return Err(Denial::NotYetValid);
        }
        if iat.is_some_and(|iat| iat > now_secs.saturating_add(self.skew_secs)) {
            return Err(Denial::IssuedInFuture);
        }
        if !self.audience_matches(claims.get("aud")) {
            return Err(Denial::WrongAudience);
        }
        Ok(exp)
    }

    /// Whether the token's `iss` is this provider's (any, even none, with `accept_any_issuer`).
    pub fn issuer_accepted(&self, claims: &Map<String, Value>) -> bool {
        match &self.issuer {
            Some(want) => issuer(claims) == Some(want.as_str()),
            None => true,
        }
    }

    fn audience_matches(&self, aud: Option<&Value>) -> bool {
        let Some(audiences) = &self.audiences else {
            return true;
        };
        let accepted = |a: &str| audiences.iter().any(|x| x == a);
        match aud {
            Some(Value::String(a)) => accepted(a),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(accepted),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_767_225_600;

    fn policy() -> ClaimPolicy {
        ClaimPolicy {
            issuer: Some("https://iss".into()),
            audiences: Some(vec!["api".into(), "web".into()]),
            skew_secs: 60,
            require_exp: true,
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({"iss": "https://iss", "aud": "api", "exp": NOW + 10});
        if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        base.as_object().cloned().unwrap()
    }

    #[test]
    fn table_of_claim_checks() {
        let cases = [
            ("valid", json!({}), Ok(Some(NOW + 10))),
            (
                "expired beyond skew",
                json!({"exp": NOW - 61}),
                Err(Denial::Expired),
            ),
            (
                "expired within skew",
                json!({"exp": NOW - 60}),
                Ok(Some(NOW - 60)),
            ),
            (
                "fractional exp",
                json!({"exp": (NOW + 5) as f64 + 0.5}),
                Ok(Some(NOW + 5)),
            ),
            (
                "exp as string",
                json!({"exp": "soon"}),
                Err(Denial::Malformed),
            ),
            ("negative exp", json!({"exp": -1}), Err(Denial::Malformed)),
            (
                "nbf beyond skew",
                json!({"nbf": NOW + 61}),
                Err(Denial::NotYetValid),
            ),
            (
                "nbf within skew",
                json!({"nbf": NOW + 60}),
                Ok(Some(NOW + 10)),
            ),
            (
                "iat in future",
                json!({"iat": NOW + 120}),
                Err(Denial::IssuedInFuture),
            ),
            ("iat past", json!({"iat": NOW - 120}), Ok(Some(NOW + 10))),
            (
                "wrong issuer",
                json!({"iss": "https://evil"}),
                Err(Denial::WrongIssuer),
            ),
            (
                "issuer not string",
                json!({"iss": 1}),
                Err(Denial::WrongIssuer),
            ),
            (
                "wrong audience",
                json!({"aud": "other"}),
                Err(Denial::WrongAudience),
            ),
            (
                "audience array",
                json!({"aud": ["x", "web"]}),
                Ok(Some(NOW + 10)),
            ),
            (
                "audience array miss",
                json!({"aud": ["x"]}),
                Err(Denial::WrongAudience),
            ),
            (
                "audience number",
                json!({"aud": 3}),
                Err(Denial::WrongAudience),
            ),
        ];
        for (name, extra, expected) in cases {
            assert_eq!(policy().check(&claims(extra), NOW), expected, "{name}");
        }
    }

    #[test]
    fn missing_claims() {
        let mut c = claims(json!({}));
        c.remove("aud");
        assert_eq!(policy().check(&c, NOW), Err(Denial::WrongAudience));
        let mut c = claims(json!({}));
        c.remove("exp");
        assert_eq!(policy().check(&c, NOW), Err(Denial::MissingExpiry));
        let lenient = ClaimPolicy {
            require_exp: false,
            ..policy()
        };
        assert_eq!(lenient.check(&c, NOW), Ok(None));
        let mut c = claims(json!({}));
        c.remove("iss");
        assert_eq!(policy().check(&c, NOW), Err(Denial::WrongIssuer));
    }

    #[test]
    fn opt_outs_skip_only_their_own_check() {
        let any_issuer = ClaimPolicy {
            issuer: None,
            ..policy()
        };
        let any_audience = ClaimPolicy {
            audiences: None,
            ..policy()
        };
        let cases = [
            (
                json!({"iss": "https://evil"}),
                Ok(Some(NOW + 10)),
                Err(Denial::WrongIssuer),
            ),
            (
                json!({"iss": 7}),
                Ok(Some(NOW + 10)),
                Err(Denial::WrongIssuer),
            ),
            (
                json!({"aud": "other"}),
                Err(Denial::WrongAudience),
                Ok(Some(NOW + 10)),
            ),
            (
                json!({"aud": 3}),
                Err(Denial::WrongAudience),
                Ok(Some(NOW + 10)),
            ),
            (
                json!({"exp": NOW - 61}),
                Err(Denial::Expired),
                Err(Denial::Expired),
            ),
        ];
        for (extra, issuer_verdict, audience_verdict) in cases {
            let c = claims(extra.clone());
            assert_eq!(any_issuer.check(&c, NOW), issuer_verdict, "{extra}");
            assert_eq!(any_audience.check(&c, NOW), audience_verdict, "{extra}");
        }
        let mut bare = claims(json!({}));
        bare.remove("iss");
        bare.remove("aud");
        assert_eq!(any_issuer.check(&bare, NOW), Err(Denial::WrongAudience));
        assert_eq!(any_audience.check(&bare, NOW), Err(Denial::WrongIssuer));
    }
}
