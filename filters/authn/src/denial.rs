//! Why a request was refused, as one enum: the metric label, the HTTP status, the RFC 6750
//! `WWW-Authenticate` challenge and the JSON body all derive from it, so they never disagree.

use wasmgate_shared::LocalReply;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// No credential in any configured place.
    MissingCredential,
    /// The same credential location filled twice (a repeated header, parameter or cookie).
    DuplicateCredential,
    /// Not three base64url segments of JSON, or a header we refuse (`crit`, `typ`).
    Malformed,
    TooLarge,
    /// `alg` not in the provider's list (`none` is never in it), or not the key's algorithm.
    AlgorithmNotAllowed,
    /// No key of the provider matches the token's `kid`/`alg`.
    UnknownKey,
    /// The token has no `kid` and the provider's `require_kid` asks for one.
    KidRequired,
    BadSignature,
    Expired,
    NotYetValid,
    IssuedInFuture,
    MissingExpiry,
    /// No accepted provider has the token's `iss`.
    WrongIssuer,
    WrongAudience,
    BadApiKey,
    /// Valid identity, missing scope.
    InsufficientScope,
    /// Valid identity, a role or claim rule failed.
    Forbidden,
    /// A provider's keys are not loaded after waiting the configured bound.
    KeysUnavailable,
}

impl Denial {
    /// The metric label and stable error code in logs.
    pub fn reason(self) -> &'static str {
        match self {
            Denial::MissingCredential => "missing_credential",
            Denial::DuplicateCredential => "duplicate_credential",
            Denial::Malformed => "malformed",
            Denial::TooLarge => "too_large",
            Denial::AlgorithmNotAllowed => "algorithm_not_allowed",
            Denial::UnknownKey => "unknown_key",
            Denial::KidRequired => "kid_required",
            Denial::BadSignature => "bad_signature",
            Denial::Expired => "expired",
            Denial::NotYetValid => "not_yet_valid",
            Denial::IssuedInFuture => "issued_in_future",
            Denial::MissingExpiry => "missing_exp",
            Denial::WrongIssuer => "wrong_issuer",
            Denial::WrongAudience => "wrong_audience",
            Denial::BadApiKey => "bad_api_key",
            Denial::InsufficientScope => "insufficient_scope",
            Denial::Forbidden => "forbidden",
            Denial::KeysUnavailable => "keys_unavailable",
        }
    }

    pub const ALL: [Denial; 18] = [
        Denial::MissingCredential,
        Denial::DuplicateCredential,
        Denial::Malformed,
        Denial::TooLarge,
        Denial::AlgorithmNotAllowed,
        Denial::UnknownKey,
        Denial::KidRequired,
        Denial::BadSignature,
        Denial::Expired,
        Denial::NotYetValid,
        Denial::IssuedInFuture,
        Denial::MissingExpiry,
        Denial::WrongIssuer,
        Denial::WrongAudience,
        Denial::BadApiKey,
        Denial::InsufficientScope,
        Denial::Forbidden,
        Denial::KeysUnavailable,
    ];

    /// Text for the client: says what is wrong with its credential, nothing about our internals.
    fn description(self) -> &'static str {
        match self {
            Denial::MissingCredential => "authentication is required",
            Denial::DuplicateCredential => "the request carries the same credential more than once",
            Denial::Malformed => "the token is malformed",
            Denial::TooLarge => "the token is too large",
            Denial::AlgorithmNotAllowed => "the token's algorithm is not accepted",
            Denial::UnknownKey => "the token was signed by an unknown key",
            Denial::KidRequired => "the token must name its signing key (kid)",
            Denial::BadSignature => "the token's signature is invalid",
            Denial::Expired => "the token has expired",
            Denial::NotYetValid => "the token is not valid yet",
            Denial::IssuedInFuture => "the token was issued in the future",
            Denial::MissingExpiry => "the token has no expiry",
            Denial::WrongIssuer => "the token's issuer is not accepted",
            Denial::WrongAudience => "the token's audience is not accepted",
            Denial::BadApiKey => "the API key is not valid",
            Denial::InsufficientScope => "the token lacks a required scope",
            Denial::Forbidden => "the identity is not allowed to access this resource",
            Denial::KeysUnavailable => "signing keys are not available yet; retry later",
        }
    }

    #[cfg(test)]
    pub fn status(self) -> u16 {
        match self {
            Denial::InsufficientScope | Denial::Forbidden => 403,
            Denial::KeysUnavailable => 503,
            Denial::DuplicateCredential => 400,
            _ => 401,
        }
    }

    /// The reply: 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3; no `error` when the client
    /// sent no credential), 403 with `insufficient_scope`, 503 with `Retry-After`.
    pub fn reply(self, realm: &str) -> LocalReply {
        let description = self.description();
        match self {
            Denial::MissingCredential => LocalReply::new(401, "unauthorized", description)
                .with_header("www-authenticate", format!("Bearer realm=\"{realm}\"")),
            Denial::InsufficientScope => {
                LocalReply::new(403, "insufficient_scope", description).with_header(
                    "www-authenticate",
                    format!(
                        "Bearer realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"{description}\""
                    ),
                )
            }
            Denial::Forbidden => LocalReply::new(403, "forbidden", description),
            // RFC 6750 §3.1: repeating a parameter is `invalid_request`, answered with 400.
            Denial::DuplicateCredential => LocalReply::new(400, "invalid_request", description)
                .with_header(
                    "www-authenticate",
                    format!(
                        "Bearer realm=\"{realm}\", error=\"invalid_request\", error_description=\"{description}\""
                    ),
                ),
            Denial::KeysUnavailable => {
                LocalReply::new(503, "keys_unavailable", description).with_header("retry-after", "1")
            }
            _ => LocalReply::new(401, "invalid_token", description).with_header(
                "www-authenticate",
                format!(
                    "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{description}\""
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(d: Denial) -> Option<String> {
        d.reply("api")
            .headers
            .iter()
            .find(|(k, _)| k == "www-authenticate")
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn invalid_tokens_get_a_bearer_challenge_with_error() {
        let reply = Denial::Expired.reply("api");
        assert_eq!(reply.status, 401);
        assert_eq!(reply.error, "invalid_token");
        assert_eq!(
            challenge(Denial::Expired).as_deref(),
            Some("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"the token has expired\"")
        );
    }

    #[test]
    fn kid_required_is_an_invalid_token() {
        let reply = Denial::KidRequired.reply("api");
        assert_eq!((reply.status, reply.error.as_str()), (401, "invalid_token"));
        assert_eq!(Denial::KidRequired.reason(), "kid_required");
        assert_eq!(
            challenge(Denial::KidRequired).as_deref(),
            Some("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"the token must name its signing key (kid)\"")
        );
    }

    #[test]
    fn missing_credential_challenge_has_no_error_code() {
        assert_eq!(
            challenge(Denial::MissingCredential).as_deref(),
            Some("Bearer realm=\"api\"")
        );
    }

    #[test]
    fn statuses_by_reason() {
        assert_eq!(Denial::InsufficientScope.status(), 403);
        assert_eq!(
            Denial::InsufficientScope.reply("r").error,
            "insufficient_scope"
        );
        assert!(challenge(Denial::InsufficientScope)
            .unwrap()
            .contains("error=\"insufficient_scope\""));
        assert_eq!(Denial::Forbidden.reply("r").status, 403);
        assert_eq!(Denial::KeysUnavailable.reply("r").status, 503);
        for d in Denial::ALL {
            assert_eq!(d.reply("r").status, d.status(), "{d:?}");
        }
    }

    #[test]
    fn reasons_are_unique_metric_labels() {
        let mut seen: Vec<&str> = Denial::ALL.iter().map(|d| d.reason()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), Denial::ALL.len());
    }
}
