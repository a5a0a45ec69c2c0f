//! The request path: canonicalize the request, pick the rule, verify every credential it
//! carries where the rule looks (cache first), authorize on claims, then strip credentials and
//! forged identity headers and set the upstream ones. Pure logic over the `Host` trait;
//! [`crate::worker`] turns the [`Outcome`] into the request's flow.

use crate::algorithm::Algorithm;
use crate::apikey::{find_consumer, Consumer};
use crate::authz::AuthzFailure;
use crate::config::{
    ApiKeys, AuthnConfig, Credential, KidRequirement, Provider, Requirement, Rule,
};
use crate::denial::Denial;
use crate::metrics::AuthnMetrics;
use crate::source::{Duplicated, Scrub};
use crate::span_attributes;
use crate::state::{Verified, WaitReason, WorkerState};
use crate::token;
use serde_json::Value;
use std::rc::Rc;
use wasmgate_shared::canonical::PathRefusal;
use wasmgate_shared::host::unix_millis;
use wasmgate_shared::{Host, Identity as RequestIdentity, RequestView};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Continue upstream (credentials stripped, identity headers set, canonical path sent).
    Allow,
    Deny(Denial),
    /// The path has no single reading: 400 before any rule is looked at.
    InvalidPath(PathRefusal),
    /// Pause until the provider's keys change or the wait bound passes.
    Wait {
        provider: usize,
        reason: WaitReason,
        deadline_ms: u64,
    },
}

/// An authenticated credential of this request.
enum Identity {
    Jwt(Rc<Verified>),
    ApiKey(usize),
}

/// A credential that verified, and where the request carried it.
struct Verification {
    location: usize,
    credential: Credential,
    identity: Identity,
}

/// Result of one JWT provider on one token.
enum JwtResult {
    Valid(Rc<Verified>),
    Invalid(Denial),
    Wait(WaitReason),
}

/// One decision on one request; `decide` judges the request view it is given.
pub struct Request<'a, H: Host + ?Sized> {
    pub config: &'a AuthnConfig,
    pub state: &'a mut WorkerState,
    pub metrics: &'a AuthnMetrics,
    pub host: &'a H,
    /// False once the request has waited: then missing keys mean 503 / unknown key.
    pub may_wait: bool,
}

impl<H: Host + ?Sized> Request<'_, H> {
    pub fn decide(&mut self, view: &mut RequestView) -> Outcome {
        if let Err(refusal) = view.judge(&self.config.paths) {
            self.metrics.path_refused.inc();
            return Outcome::InvalidPath(refusal);
        }
        let rule_index = self
            .config
            .rules
            .iter()
            .position(|r| r.matcher.matches(view))
            .unwrap_or(self.config.rules.len());
        let rule = self
            .config
            .rules
            .get(rule_index)
            .unwrap_or(&self.config.default_rule);
        let outcome = self.evaluate(rule, view);
        if let Some(m) = self.metrics.rules.get(rule_index) {
            match outcome {
                Outcome::Allow => m.allowed.inc(),
                Outcome::Deny(_) => m.denied.inc(),
                Outcome::InvalidPath(_) | Outcome::Wait { .. } => {}
            }
        }
        match outcome {
            Outcome::Allow => self.metrics.allowed.inc(),
            Outcome::Deny(d) => self.metrics.denied(d),
            Outcome::InvalidPath(_) | Outcome::Wait { .. } => {}
        }
        outcome
    }

    fn evaluate(&mut self, rule: &Rule, view: &mut RequestView) -> Outcome {
        let accepted = match &rule.requirement {
            Requirement::Public => {
                self.forward(view, &[], self.config.strip_credentials_on_public);
                view.notes.attribute(span_attributes::OUTCOME, "public");
                return Outcome::Allow;
            }
            Requirement::AnyOf(creds) | Requirement::AllOf(creds) => creds,
        };
        // Every place the rule looks that the request fills must verify, as in Envoy's
        // jwt_authn: an unverified credential must not travel next to a verified one.
        let mut verified: Vec<Verification> = Vec::new();
        for (l, location) in self.config.locations.iter().enumerate() {
            let mut readers = location
                .readers
                .iter()
                .filter(|c| accepted.contains(c))
                .peekable();
            if readers.peek().is_none() {
                continue;
            }
            let presented = match location.source.find(view) {
                Ok(Some(value)) => value,
                Ok(None) => continue,
                Err(Duplicated) => return Outcome::Deny(Denial::DuplicateCredential),
            };
            let mut found = None;
            for credential in readers {
                match self.verify(*credential, presented) {
                    Ok(identity) => {
                        found = Some(Verification {
                            location: l,
                            credential: *credential,
                            identity,
                        });
                        break;
                    }
                    // Another provider reading the same place may own this issuer.
                    Err(Outcome::Deny(Denial::WrongIssuer)) => {}
                    Err(other) => return other,
                }
            }
            match found {
                Some(v) => verified.push(v),
                None => return Outcome::Deny(Denial::WrongIssuer),
            }
        }
        if verified.is_empty() {
            return Outcome::Deny(Denial::MissingCredential);
        }
        if let Requirement::AllOf(all) = &rule.requirement {
            if !all
                .iter()
                .all(|c| verified.iter().any(|v| v.credential == *c))
            {
                return Outcome::Deny(Denial::MissingCredential);
            }
        }
        if let Err(denial) = self.authorize(rule, &verified) {
            return Outcome::Deny(denial);
        }
        self.forward(view, &verified, true);
        Outcome::Allow
    }

    /// Verifies `presented` as credential `cred`.
    fn verify(&mut self, cred: Credential, presented: &str) -> Result<Identity, Outcome> {
        match cred {
            Credential::ApiKey => {
                let Some(keys) = &self.config.api_keys else {
                    return Err(Outcome::Deny(Denial::MissingCredential));
                };
                match find_consumer(&keys.consumers, presented) {
                    Some(c) => {
                        self.metrics.api_key_allowed.inc();
                        let index = keys
                            .consumers
                            .iter()
                            .position(|x| x.name == c.name)
                            .unwrap_or(0);
                        Ok(Identity::ApiKey(index))
                    }
                    None => {
                        self.metrics.api_key_denied.inc();
                        Err(Outcome::Deny(Denial::BadApiKey))
                    }
                }
            }
            Credential::Jwt(p) => {
                let Some(provider) = self.config.providers.get(p) else {
                    return Err(Outcome::Deny(Denial::MissingCredential));
                };
                let result = self.jwt(p, provider, presented);
                let pm = self.metrics.providers.get(p);
                match result {
                    JwtResult::Valid(v) => {
                        if let Some(m) = pm {
                            m.allowed.inc();
                        }
                        Ok(Identity::Jwt(v))
                    }
                    JwtResult::Invalid(Denial::WrongIssuer) => {
                        Err(Outcome::Deny(Denial::WrongIssuer))
                    }
                    JwtResult::Invalid(d) => {
                        if let Some(m) = pm {
                            m.denied.inc();
                        }
                        Err(Outcome::Deny(d))
                    }
                    JwtResult::Wait(reason) => {
                        let wait_ms = provider.remote.as_ref().map_or(0, |r| r.wait_ms);
                        Err(Outcome::Wait {
                            provider: p,
                            reason,
                            deadline_ms: unix_millis(self.host.now()).saturating_add(wait_ms),
                        })
                    }
                }
            }
        }
    }

    fn jwt(&mut self, p: usize, provider: &Provider, tok: &str) -> JwtResult {
        if tok.len() > provider.max_token_bytes {
            return JwtResult::Invalid(Denial::TooLarge);
        }
        let now_ms = unix_millis(self.host.now());
        let now = now_ms / 1000;
        if let Some(hit) = self.cache_lookup(tok, now) {
            if hit.provider == p {
                self.metrics.cache_hits.inc();
                return JwtResult::Valid(hit);
            }
            // Valid for another provider: this one does not own its issuer.
            return JwtResult::Invalid(Denial::WrongIssuer);
        }
        self.metrics.cache_misses.inc();
        let jwt = match token::parse(tok) {
            Ok(j) => j,
            Err(d) => return JwtResult::Invalid(d),
        };
        if !provider.policy.issuer_accepted(&jwt.claims) {
            return JwtResult::Invalid(Denial::WrongIssuer);
        }
        let Some(alg) =
            Algorithm::from_name(&jwt.header.alg).filter(|a| provider.algorithms.contains(a))
        else {
            return JwtResult::Invalid(Denial::AlgorithmNotAllowed);
        };
        // Claims before the signature, as Envoy does: an expired token costs no signature check.
        let exp = match provider.policy.check(&jwt.claims, now) {
            Ok(exp) => exp,
            Err(d) => return JwtResult::Invalid(d),
        };
        let kid = jwt.header.kid.as_deref();
        if kid.is_none() && provider.require_kid == KidRequirement::Always {
            return JwtResult::Invalid(Denial::KidRequired);
        }
        let candidates = self.state.candidates(self.config, p, kid, alg);
        if candidates.is_empty() {
            if self.state.awaiting_first_keys(p) {
                return if self.may_wait {
                    JwtResult::Wait(WaitReason::FirstKeys)
                } else {
                    JwtResult::Invalid(Denial::KeysUnavailable)
                };
            }
            if let (Some(cfg), Some(Some(remote))) =
                (&provider.remote, self.state.remote.get_mut(p))
            {
                if self.may_wait && remote.may_refetch(cfg, now_ms) {
                    remote.refetch_wanted = true;
                    return JwtResult::Wait(WaitReason::Rotation);
                }
            }
            return JwtResult::Invalid(Denial::UnknownKey);
        }
        // Claims cost a forger nothing to get right, so a token with a random signature would
        // cost one full check per candidate key. Unless `require_kid: never`, a token gets one
        // key: the one its `kid` names (keys without a `kid` match any), or the only candidate.
        let mut candidates = candidates;
        if provider.require_kid != KidRequirement::Never {
            if candidates
                .iter()
                .any(|k| k.kid.is_some() && k.kid.as_deref() == kid)
            {
                candidates.retain(|k| k.kid.as_deref() == kid);
            }
            let several_keys = candidates.split_first().is_some_and(|(first, rest)| {
                rest.iter().any(|k| k.fingerprint != first.fingerprint)
            });
            if several_keys {
                return JwtResult::Invalid(if kid.is_none() {
                    Denial::KidRequired
                } else {
                    Denial::UnknownKey
                });
            }
        }
        let signer = candidates.iter().find(|k| {
            k.verifier
                .verify(jwt.signing_input.as_bytes(), &jwt.signature)
        });
        let Some(signer) = signer else {
            return JwtResult::Invalid(Denial::BadSignature);
        };
        let fingerprint = signer.fingerprint;
        let headers = upstream_headers(provider, &jwt.claims, jwt.payload_b64);
        let verified = Rc::new(Verified {
            provider: p,
            key_fingerprint: fingerprint,
            generation: self.state.generation(p),
            claims: Rc::new(jwt.claims),
            headers,
        });
        let deadline = exp
            .map_or(u64::MAX, |e| e.saturating_add(provider.policy.skew_secs))
            .min(now.saturating_add(self.config.cache_ttl_secs));
        self.state.cache.insert(tok, deadline, Rc::clone(&verified));
        JwtResult::Valid(verified)
    }

    /// A live cache entry whose signing key is still in its provider's key set.
    fn cache_lookup(&mut self, tok: &str, now: u64) -> Option<Rc<Verified>> {
        let hit = Rc::clone(self.state.cache.get(tok, now)?);
        let generation = self.state.generation(hit.provider);
        if hit.generation == generation {
            return Some(hit);
        }
        if self
            .state
            .has_fingerprint(self.config, hit.provider, hit.key_fingerprint)
        {
            let refreshed = Rc::new(Verified {
                provider: hit.provider,
                key_fingerprint: hit.key_fingerprint,
                generation,
                claims: Rc::clone(&hit.claims),
                headers: hit.headers.clone(),
            });
            if let Some(slot) = self.state.cache.get(tok, now) {
                *slot = Rc::clone(&refreshed);
            }
            return Some(refreshed);
        }
        self.state.cache.remove(tok);
        None
    }

    fn authorize(&self, rule: &Rule, verified: &[Verification]) -> Result<(), Denial> {
        if rule.authz.is_empty() {
            return Ok(());
        }
        let mut failure = AuthzFailure::Forbidden;
        for v in verified {
            let result = match &v.identity {
                Identity::Jwt(jwt) => {
                    let roles = self
                        .config
                        .providers
                        .get(jwt.provider)
                        .map_or(&[][..], |p| p.roles_path.as_slice());
                    rule.authz.check(Some(jwt.claims.as_ref()), roles)
                }
                Identity::ApiKey(_) => rule.authz.check(None, &[]),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(AuthzFailure::Scope) => failure = AuthzFailure::Scope,
                Err(AuthzFailure::Forbidden) => {}
            }
        }
        Err(match failure {
            AuthzFailure::Scope => Denial::InsufficientScope,
            AuthzFailure::Forbidden => Denial::Forbidden,
        })
    }

    /// Prepares the request for the upstream: every credential location is emptied (with
    /// `strip_credentials`) unless a credential verified there is configured to travel on;
    /// every managed identity header the client sent, and its `_`/`-` twins, is removed; then
    /// the verified identities' headers are set and the canonical path is sent. The first
    /// verified credential becomes the request's identity for the stages after authn.
    fn forward(&self, view: &mut RequestView, verified: &[Verification], strip_credentials: bool) {
        let mut scrub = Scrub::default();
        if strip_credentials {
            for (l, location) in self.config.locations.iter().enumerate() {
                let travels = verified
                    .iter()
                    .any(|v| v.location == l && self.forwards(v.credential));
                if !travels {
                    scrub.add(&location.source);
                }
            }
        }
        for name in &self.config.identity_headers {
            scrub.add_header(name);
        }
        scrub.apply(view, self.host);
        for v in verified {
            match &v.identity {
                Identity::Jwt(jwt) => {
                    for (name, value) in &jwt.headers {
                        view.set_header(self.host, name, Some(value));
                    }
                }
                Identity::ApiKey(i) => {
                    if let Some((keys, c)) = self.consumer(*i) {
                        view.set_header(self.host, &keys.identity_header, Some(&c.name));
                    }
                }
            }
        }
        view.identity = verified.first().map(|v| self.identity(&v.identity));
        if let Some(first) = verified.first() {
            let notes = &mut view.notes;
            notes.attribute(span_attributes::OUTCOME, "allowed");
            match (&first.identity, first.credential) {
                (Identity::ApiKey(i), _) => {
                    if let Some((_, c)) = self.consumer(*i) {
                        notes.attribute(span_attributes::CONSUMER, c.name.as_str());
                    }
                }
                (Identity::Jwt(_), Credential::Jwt(p)) => {
                    if let Some(provider) = self.config.providers.get(p) {
                        notes.attribute(span_attributes::PROVIDER, provider.name.as_str());
                    }
                }
                (Identity::Jwt(_), Credential::ApiKey) => {}
            }
        }
    }

    fn consumer(&self, index: usize) -> Option<(&ApiKeys, &Consumer)> {
        let keys = self.config.api_keys.as_ref()?;
        Some((keys, keys.consumers.get(index)?))
    }

    /// What the gateway's later stages know of a verified credential.
    fn identity(&self, identity: &Identity) -> RequestIdentity {
        match identity {
            Identity::Jwt(jwt) => RequestIdentity {
                name: jwt
                    .claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                claims: Rc::clone(&jwt.claims),
            },
            Identity::ApiKey(i) => RequestIdentity {
                name: self.consumer(*i).map(|(_, c)| c.name.clone()),
                claims: Rc::default(),
            },
        }
    }

    /// Whether a verified credential stays in the request (`forward_token` / `forward_key`).
    fn forwards(&self, credential: Credential) -> bool {
        match credential {
            Credential::Jwt(p) => self
                .config
                .providers
                .get(p)
                .is_some_and(|p| p.forward_token),
            Credential::ApiKey => self.config.api_keys.as_ref().is_some_and(|k| k.forward_key),
        }
    }
}

/// Header-safe text of a claim: strings as-is, numbers and booleans as JSON, arrays of those
/// joined with commas; objects and control characters are not forwarded.
fn claim_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?
            .join(","),
        _ => return None,
    };
    (!text.bytes().any(|b| b.is_ascii_control())).then_some(text)
}

fn upstream_headers(
    provider: &Provider,
    claims: &serde_json::Map<String, Value>,
    payload_b64: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(provider.claim_headers.len() + 1);
    for (path, header) in &provider.claim_headers {
        if let Some(text) = crate::authz::lookup(claims, path).and_then(claim_text) {
            out.push((header.clone(), text));
        }
    }
    if let Some(h) = &provider.payload_header {
        out.push((h.clone(), payload_b64.to_string()));
    }
    out
}

#[cfg(test)]
#[path = "request_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "security_tests.rs"]
mod security_tests;
