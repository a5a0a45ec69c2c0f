//! The authn plugin configuration: serde shape (every struct `deny_unknown_fields`, defaults
//! documented in `docs/authn.md`), then [`RawAuthnConfig::compile`] into the checked, immutable
//! [`AuthnConfig`]: keys parsed into verifiers, matchers compiled, names resolved to indexes.

use crate::algorithm::{Algorithm, KeyFamily};
use crate::apikey::{parse_sha256_hex, Consumer};
use crate::authz::{Authorization, ClaimCondition, ClaimRequirement};
use crate::claims::ClaimPolicy;
use crate::jwks::KeySet;
use crate::metrics::{provider_metric_names, rule_metric_names, FILTER};
use crate::source::TokenSource;
use serde::Deserialize;
use serde_json::Value;
use wasmgate_shared::canonical::PathPolicy;
use wasmgate_shared::config::{header_name, name};
use wasmgate_shared::matching::{RequestMatch, RequestMatcher};
use wasmgate_shared::metrics::shared_metric;
use wasmgate_shared::ConfigError;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawAuthnConfig {
    /// The JSON Schema of this configuration (`docs/schemas/`), for editors; ignored.
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    /// `realm` in `WWW-Authenticate`.
    pub realm: Option<String>,
    pub providers: Vec<RawProvider>,
    pub api_keys: Option<RawApiKeys>,
    pub rules: Vec<RawRule>,
    /// For requests no rule matches; default: any configured provider.
    pub default: Option<RawRule>,
    pub cache: RawCache,
    /// How ambiguous request paths are read (`docs/security.md`); default: refused.
    pub paths: PathPolicy,
    /// Remove credentials from requests on public routes too (they were not verified there).
    pub strip_credentials_on_public: bool,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    #[serde(default)]
    pub issuer: Option<String>,
    /// Opt-out of the `iss` check (as Envoy's `jwt_authn` without `issuer`); never implied.
    #[serde(default)]
    pub accept_any_issuer: bool,
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
    /// Opt-out of the `aud` check (as Envoy's `jwt_authn` without `audiences`); never implied.
    #[serde(default)]
    pub accept_any_audience: bool,
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u64,
    #[serde(default = "yes")]
    pub require_exp: bool,
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    #[serde(default)]
    pub from: Option<Vec<RawSource>>,
    #[serde(default)]
    pub jwks: Option<Value>,
    #[serde(default)]
    pub pem: Vec<RawPem>,
    #[serde(default)]
    pub remote_jwks: Option<RawRemoteJwks>,
    #[serde(default)]
    pub claim_headers: Vec<RawClaimHeader>,
    #[serde(default)]
    pub payload_header: Option<String>,
    #[serde(default)]
    pub forward_token: bool,
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    #[serde(default)]
    pub require_kid: KidRequirement,
}

/// When a token must carry a `kid`. Without one it is tried against every key that could verify
/// its `alg`, and a forged token (right claims, random signature) costs a full check per key.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum KidRequirement {
    /// When more than one of the provider's keys could verify the token's `alg`.
    #[default]
    IfAmbiguous,
    Always,
    /// Try every candidate key.
    Never,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawSource {
    pub header: Option<String>,
    pub prefix: Option<String>,
    pub query: Option<String>,
    pub cookie: Option<String>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawPem {
    #[serde(default)]
    pub kid: Option<String>,
    pub pem: String,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRemoteJwks {
    pub cluster: String,
    #[serde(default = "default_jwks_path")]
    pub path: String,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_refresh")]
    pub refresh_seconds: u64,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "default_retry_initial")]
    pub retry_initial_ms: u64,
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
    #[serde(default = "default_refetch")]
    pub unknown_kid_refetch_seconds: u64,
    #[serde(default = "default_wait")]
    pub wait_for_keys_ms: u64,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawClaimHeader {
    pub claim: String,
    pub header: String,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawApiKeys {
    #[serde(default = "default_api_key_name")]
    pub name: String,
    #[serde(default)]
    pub from: Option<Vec<RawSource>>,
    pub consumers: Vec<RawConsumer>,
    #[serde(default = "default_consumer_header")]
    pub identity_header: String,
    #[serde(default)]
    pub forward_key: bool,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawConsumer {
    pub name: String,
    pub key_sha256: String,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawRule {
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub match_: RequestMatch,
    pub public: bool,
    pub any_of: Option<Vec<String>>,
    pub all_of: Option<Vec<String>>,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub claims: Vec<RawClaimRule>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawClaimRule {
    pub claim: String,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default)]
    pub contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawCache {
    pub max_entries: usize,
    pub max_ttl_seconds: u64,
}

impl Default for RawAuthnConfig {
    fn default() -> Self {
        Self {
            schema: None,
            realm: None,
            providers: Vec::new(),
            api_keys: None,
            rules: Vec::new(),
            default: None,
            cache: RawCache::default(),
            paths: PathPolicy::default(),
            strip_credentials_on_public: true,
        }
    }
}

impl Default for RawCache {
    fn default() -> Self {
        Self {
            max_entries: 4096,
            max_ttl_seconds: 600,
        }
    }
}

fn default_skew() -> u64 {
    60
}
fn yes() -> bool {
    true
}
fn default_max_token_bytes() -> usize {
    8192
}
fn default_roles_claim() -> String {
    "roles".into()
}
fn default_jwks_path() -> String {
    "/.well-known/jwks.json".into()
}
fn default_refresh() -> u64 {
    300
}
fn default_timeout() -> u64 {
    2000
}
fn default_retry_initial() -> u64 {
    500
}
fn default_retry_max() -> u64 {
    30_000
}
fn default_refetch() -> u64 {
    30
}
fn default_wait() -> u64 {
    3000
}
fn default_api_key_name() -> String {
    "api_key".into()
}
fn default_consumer_header() -> String {
    "x-consumer".into()
}

// ---------------------------------------------------------------- compiled

#[derive(Debug)]
pub struct RemoteJwks {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub refresh_ms: u64,
    pub timeout_ms: u64,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub refetch_min_ms: u64,
    pub wait_ms: u64,
    /// Shared-data key: versioned and tied to the URL, so a config that points elsewhere
    /// never reads another source's keys.
    pub shared_key: String,
}

#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub policy: ClaimPolicy,
    pub algorithms: Vec<Algorithm>,
    pub max_token_bytes: usize,
    pub sources: Vec<TokenSource>,
    pub inline_keys: KeySet,
    pub remote: Option<RemoteJwks>,
    /// (claim path, header): claim values copied to upstream headers.
    pub claim_headers: Vec<(Vec<String>, String)>,
    pub payload_header: Option<String>,
    pub forward_token: bool,
    pub roles_path: Vec<String>,
    pub require_kid: KidRequirement,
}

#[derive(Debug)]
pub struct ApiKeys {
    pub name: String,
    pub sources: Vec<TokenSource>,
    pub consumers: Vec<Consumer>,
    pub identity_header: String,
    pub forward_key: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Jwt(usize),
    ApiKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Public,
    /// The first of these that the request carries must be valid. Empty = refuse everything.
    AnyOf(Vec<Credential>),
    AllOf(Vec<Credential>),
}

#[derive(Debug)]
pub struct Rule {
    /// For metrics: `rule_<name>_…`.
    pub name: String,
    pub matcher: RequestMatcher,
    pub requirement: Requirement,
    pub authz: Authorization,
}

/// A place credentials are read from, and every credential read there (two providers may
/// share `Authorization: Bearer`).
#[derive(Debug)]
pub struct Location {
    pub source: TokenSource,
    pub readers: Vec<Credential>,
}

#[derive(Debug)]
pub struct AuthnConfig {
    pub realm: String,
    pub providers: Vec<Provider>,
    pub api_keys: Option<ApiKeys>,
    pub rules: Vec<Rule>,
    pub default_rule: Rule,
    pub cache_entries: usize,
    pub cache_ttl_secs: u64,
    /// Every header this filter sets for the upstream: removed from each incoming request first.
    pub identity_headers: Vec<String>,
    /// Every configured credential location, in configuration order.
    pub locations: Vec<Location>,
    pub paths: PathPolicy,
    pub strip_credentials_on_public: bool,
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::new(field, reason)
}

/// A query parameter or cookie name a credential is read from.
fn is_parameter_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn compile_sources(
    field: &str,
    raw: Option<Vec<RawSource>>,
    default: TokenSource,
) -> Result<Vec<TokenSource>, ConfigError> {
    let Some(list) = raw else {
        return Ok(vec![default]);
    };
    if list.is_empty() {
        return Err(err(
            field,
            "must list at least one place to read the credential from",
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, s) in list.into_iter().enumerate() {
        let f = format!("{field}[{i}]");
        let source = match (s.header, s.query, s.cookie) {
            (Some(h), None, None) => TokenSource::Header {
                name: header_name(&format!("{f}.header"), &h)?,
                prefix: s.prefix.unwrap_or_default(),
            },
            (None, Some(q), None) if s.prefix.is_none() && is_parameter_name(&q) => {
                TokenSource::Query { name: q }
            }
            (None, None, Some(c)) if s.prefix.is_none() && is_parameter_name(&c) => {
                TokenSource::Cookie { name: c }
            }
            (None, Some(_), None) | (None, None, Some(_)) if s.prefix.is_some() => {
                return Err(err(
                    format!("{f}.prefix"),
                    "only a header source has a prefix",
                ))
            }
            (None, Some(_), None) => {
                return Err(err(format!("{f}.query"), "must be a parameter name"))
            }
            (None, None, Some(_)) => {
                return Err(err(format!("{f}.cookie"), "must be a cookie name"))
            }
            _ => return Err(err(f, "set exactly one of header, query, cookie")),
        };
        out.push(source);
    }
    Ok(out)
}

fn bearer() -> TokenSource {
    TokenSource::Header {
        name: "authorization".into(),
        prefix: "Bearer ".into(),
    }
}

fn claim_path(s: &str) -> Vec<String> {
    s.split('.').map(String::from).collect()
}

/// A short stable hash for shared-data key names.
fn short_hash(text: &str) -> String {
    let digest = crate::apikey::sha256(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

impl RawProvider {
    fn compile(self) -> Result<Provider, ConfigError> {
        name("name", &self.name)?;
        let issuer = match (self.issuer, self.accept_any_issuer) {
            (Some(i), true) if !i.is_empty() => {
                return Err(err(
                    "accept_any_issuer",
                    "conflicts with issuer: set one of them",
                ))
            }
            (_, true) => None,
            (None, false) => return Err(err("", "missing field `issuer`")),
            (Some(i), false) if i.is_empty() => return Err(err("issuer", "must not be empty")),
            (Some(i), false) => Some(i),
        };
        let audiences = match (self.audiences, self.accept_any_audience) {
            (Some(a), true) if !a.is_empty() => {
                return Err(err(
                    "accept_any_audience",
                    "conflicts with audiences: set one of them",
                ))
            }
            (_, true) => None,
            (None, false) => return Err(err("", "missing field `audiences`")),
            (Some(a), false) if a.is_empty() || a.iter().any(String::is_empty) => {
                return Err(err(
                    "audiences",
                    "must list at least one non-empty audience",
                ))
            }
            (Some(a), false) => Some(a),
        };
        let algorithms_listed = self.algorithms.is_some();
        let algorithms = match self.algorithms {
            None => Algorithm::ASYMMETRIC.to_vec(),
            Some(list) if list.is_empty() => return Err(err("algorithms", "must not be empty")),
            Some(list) => {
                let mut out = Vec::new();
                for (i, name) in list.iter().enumerate() {
                    let alg = Algorithm::from_name(name).ok_or_else(|| {
                        err(
                            format!("algorithms[{i}]"),
                            format!("unknown algorithm `{name}` (one of RS256/384/512, PS256/384/512, ES256/384/512, EdDSA, HS256/384/512; `none` is never accepted)"),
                        )
                    })?;
                    if !out.contains(&alg) {
                        out.push(alg);
                    }
                }
                out
            }
        };
        if self.clock_skew_seconds > 600 {
            return Err(err("clock_skew_seconds", "must be at most 600"));
        }
        if !(256..=65536).contains(&self.max_token_bytes) {
            return Err(err("max_token_bytes", "must be between 256 and 65536"));
        }
        let sources = compile_sources("from", self.from, bearer())?;
        let allow_secrets = algorithms.iter().any(|a| a.family() == KeyFamily::Secret);
        let mut inline_keys = KeySet::default();
        if let Some(jwks) = &self.jwks {
            let text = match jwks {
                Value::String(s) => s.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            };
            let set = KeySet::from_jwks_strict(&text, &algorithms, allow_secrets).map_err(
                |(field, reason)| err(wasmgate_shared::config::join_path("jwks", &field), reason),
            )?;
            if set.is_empty() {
                return Err(err("jwks", "no key usable with the provider's algorithms"));
            }
            inline_keys.extend(set);
        }
        for (i, pem) in self.pem.iter().enumerate() {
            let keys = KeySet::from_pem(pem.kid.clone(), &pem.pem, &algorithms)
                .map_err(|reason| err(format!("pem[{i}].pem"), reason))?;
            if keys.is_empty() {
                return Err(err(
                    format!("pem[{i}].pem"),
                    "key type fits none of the provider's algorithms",
                ));
            }
            inline_keys.push(keys);
        }
        let remote = match self.remote_jwks {
            Some(r) => Some(r.compile(&self.name).map_err(|e| e.within("remote_jwks"))?),
            None => None,
        };
        if inline_keys.is_empty() && remote.is_none() {
            return Err(err("", "set jwks, pem or remote_jwks"));
        }
        // Unlisted, with inline keys only: just what those keys verify, so a token naming any
        // other algorithm is refused up front. A remote JWKS may rotate to any key type.
        let algorithms = if algorithms_listed || remote.is_some() {
            algorithms
        } else {
            inline_keys.algorithms()
        };
        let mut claim_headers = Vec::new();
        for (i, ch) in self.claim_headers.iter().enumerate() {
            if ch.claim.is_empty() || ch.claim.split('.').any(str::is_empty) {
                return Err(err(
                    format!("claim_headers[{i}].claim"),
                    "must be a claim name or dotted path",
                ));
            }
            let header = header_name(&format!("claim_headers[{i}].header"), &ch.header)?;
            claim_headers.push((claim_path(&ch.claim), header));
        }
        let payload_header = match self.payload_header {
            Some(h) => Some(header_name("payload_header", &h)?),
            None => None,
        };
        if self.roles_claim.is_empty() {
            return Err(err("roles_claim", "must not be empty"));
        }
        Ok(Provider {
            name: self.name,
            policy: ClaimPolicy {
                issuer,
                audiences,
                skew_secs: self.clock_skew_seconds,
                require_exp: self.require_exp,
            },
            algorithms,
            max_token_bytes: self.max_token_bytes,
            sources,
            inline_keys,
            remote,
            claim_headers,
            payload_header,
            forward_token: self.forward_token,
            roles_path: claim_path(&self.roles_claim),
            require_kid: self.require_kid,
        })
    }
}

impl RawRemoteJwks {
    fn compile(self, provider: &str) -> Result<RemoteJwks, ConfigError> {
        if self.cluster.is_empty() {
            return Err(err("cluster", "must name an Envoy cluster"));
        }
        if !self.path.starts_with('/') {
            return Err(err("path", "must start with '/'"));
        }
        if self.refresh_seconds == 0 {
            return Err(err("refresh_seconds", "must be > 0"));
        }
        if self.timeout_ms == 0 {
            return Err(err("timeout_ms", "must be > 0"));
        }
        if self.retry_initial_ms == 0 {
            return Err(err("retry_initial_ms", "must be > 0"));
        }
        if self.retry_max_ms < self.retry_initial_ms {
            return Err(err(
                "retry_max_ms",
                "must not be less than retry_initial_ms",
            ));
        }
        let authority = self.authority.unwrap_or_else(|| self.cluster.clone());
        let shared_key = format!(
            "wasmgate.authn.v1.jwks.{provider}.{}",
            short_hash(&format!("{}|{}|{}", self.cluster, authority, self.path))
        );
        Ok(RemoteJwks {
            cluster: self.cluster,
            path: self.path,
            authority,
            refresh_ms: self.refresh_seconds.saturating_mul(1000),
            timeout_ms: self.timeout_ms,
            retry_initial_ms: self.retry_initial_ms,
            retry_max_ms: self.retry_max_ms,
            refetch_min_ms: self.unknown_kid_refetch_seconds.saturating_mul(1000),
            wait_ms: self.wait_for_keys_ms,
            shared_key,
        })
    }
}

impl RawApiKeys {
    fn compile(self) -> Result<ApiKeys, ConfigError> {
        name("name", &self.name)?;
        let sources = compile_sources(
            "from",
            self.from,
            TokenSource::Header {
                name: "x-api-key".into(),
                prefix: String::new(),
            },
        )?;
        if self.consumers.is_empty() {
            return Err(err("consumers", "must list at least one consumer"));
        }
        let mut consumers: Vec<Consumer> = Vec::new();
        for (i, c) in self.consumers.into_iter().enumerate() {
            if c.name.is_empty() || c.name.bytes().any(|b| b.is_ascii_control()) {
                return Err(err(
                    format!("consumers[{i}].name"),
                    "must be a non-empty printable name",
                ));
            }
            let key_sha256 = parse_sha256_hex(&c.key_sha256).ok_or_else(|| {
                err(
                    format!("consumers[{i}].key_sha256"),
                    "must be 64 hex digits: the SHA-256 of the key, never the key itself",
                )
            })?;
            if consumers.iter().any(|o| o.key_sha256 == key_sha256) {
                return Err(err(
                    format!("consumers[{i}].key_sha256"),
                    "the same key is listed twice",
                ));
            }
            consumers.push(Consumer {
                name: c.name,
                key_sha256,
            });
        }
        Ok(ApiKeys {
            name: self.name,
            sources,
            consumers,
            identity_header: header_name("identity_header", &self.identity_header)?,
            forward_key: self.forward_key,
        })
    }
}

impl RawRule {
    fn compile(
        self,
        index: Option<usize>,
        providers: &[Provider],
        api_keys: Option<&ApiKeys>,
    ) -> Result<Rule, ConfigError> {
        let resolve = |field: &str, names: Vec<String>| -> Result<Vec<Credential>, ConfigError> {
            if names.is_empty() {
                return Err(err(field, "must name at least one provider"));
            }
            names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    if let Some(p) = providers.iter().position(|p| p.name == *n) {
                        Ok(Credential::Jwt(p))
                    } else if api_keys.is_some_and(|a| a.name == *n) {
                        Ok(Credential::ApiKey)
                    } else {
                        Err(err(
                            format!("{field}[{i}]"),
                            format!("unknown provider `{n}`"),
                        ))
                    }
                })
                .collect()
        };
        let requirement = match (self.public, self.any_of, self.all_of) {
            (true, None, None) => Requirement::Public,
            (false, Some(names), None) => Requirement::AnyOf(resolve("any_of", names)?),
            (false, None, Some(names)) => Requirement::AllOf(resolve("all_of", names)?),
            (false, None, None) if index.is_none() => default_requirement(providers, api_keys),
            _ => return Err(err("", "set exactly one of public, any_of, all_of")),
        };
        let mut claims = Vec::new();
        for (i, c) in self.claims.into_iter().enumerate() {
            if c.claim.is_empty() || c.claim.split('.').any(str::is_empty) {
                return Err(err(
                    format!("claims[{i}].claim"),
                    "must be a claim name or dotted path",
                ));
            }
            let condition = match (c.equals, c.contains) {
                (Some(v), None) => ClaimCondition::Equals(v),
                (None, Some(s)) => ClaimCondition::Contains(s),
                _ => {
                    return Err(err(
                        format!("claims[{i}]"),
                        "set exactly one of equals, contains",
                    ))
                }
            };
            claims.push(ClaimRequirement {
                path: claim_path(&c.claim),
                condition,
            });
        }
        let authz = Authorization {
            scopes: self.scopes,
            roles: self.roles,
            claims,
        };
        if requirement == Requirement::Public && !authz.is_empty() {
            return Err(err(
                "public",
                "a public rule cannot require scopes, roles or claims",
            ));
        }
        if index.is_none() && self.match_ != RequestMatch::default() {
            return Err(err(
                "match",
                "the default applies to every unmatched request; remove match",
            ));
        }
        let matcher = self.match_.compile().map_err(|e| e.within("match"))?;
        let name = match (self.name, index) {
            (Some(n), _) => name("name", &n)?,
            (None, Some(i)) => format!("rule{i}"),
            (None, None) => "default".into(),
        };
        Ok(Rule {
            name,
            matcher,
            requirement,
            authz,
        })
    }
}

fn locations(providers: &[Provider], api_keys: Option<&ApiKeys>) -> Vec<Location> {
    let jwt = providers.iter().enumerate().flat_map(|(p, provider)| {
        provider
            .sources
            .iter()
            .map(move |s| (s, Credential::Jwt(p)))
    });
    let keys = api_keys
        .into_iter()
        .flat_map(|k| k.sources.iter().map(|s| (s, Credential::ApiKey)));
    let mut out: Vec<Location> = Vec::new();
    for (source, credential) in jwt.chain(keys) {
        match out.iter_mut().find(|l| l.source == *source) {
            Some(l) if !l.readers.contains(&credential) => l.readers.push(credential),
            Some(_) => {}
            None => out.push(Location {
                source: source.clone(),
                readers: vec![credential],
            }),
        }
    }
    // Providers that name their issuer read first: a token with their `iss` is theirs, and a
    // provider accepting any issuer takes only what they leave.
    for location in &mut out {
        location.readers.sort_by_key(|c| match c {
            Credential::Jwt(p) => providers.get(*p).is_some_and(|p| p.policy.issuer.is_none()),
            Credential::ApiKey => false,
        });
    }
    out
}

/// Without a `default`: any configured credential; with none configured, refuse everything.
fn default_requirement(providers: &[Provider], api_keys: Option<&ApiKeys>) -> Requirement {
    let mut all: Vec<Credential> = (0..providers.len()).map(Credential::Jwt).collect();
    if api_keys.is_some() {
        all.push(Credential::ApiKey);
    }
    Requirement::AnyOf(all)
}

impl RawAuthnConfig {
    pub fn compile(self) -> Result<AuthnConfig, ConfigError> {
        let realm = self.realm.unwrap_or_else(|| "wasmgate".into());
        if realm.is_empty()
            || realm.contains(['"', '\\'])
            || realm.bytes().any(|b| b.is_ascii_control())
        {
            return Err(err(
                "realm",
                "must be non-empty without quotes, backslashes or control characters",
            ));
        }
        let mut providers: Vec<Provider> = Vec::new();
        for (i, raw) in self.providers.into_iter().enumerate() {
            let p = raw
                .compile()
                .map_err(|e| e.within(&format!("providers[{i}]")))?;
            if providers.iter().any(|o| o.name == p.name) {
                return Err(err(
                    format!("providers[{i}].name"),
                    format!("duplicate provider name `{}`", p.name),
                ));
            }
            providers.push(p);
        }
        let api_keys = match self.api_keys {
            Some(raw) => {
                let a = raw.compile().map_err(|e| e.within("api_keys"))?;
                if providers.iter().any(|p| p.name == a.name) {
                    return Err(err(
                        "api_keys.name",
                        format!("`{}` is already a provider name", a.name),
                    ));
                }
                Some(a)
            }
            None => None,
        };
        let mut rules = Vec::new();
        for (i, raw) in self.rules.into_iter().enumerate() {
            rules.push(
                raw.compile(Some(i), &providers, api_keys.as_ref())
                    .map_err(|e| e.within(&format!("rules[{i}]")))?,
            );
        }
        let default_rule = self
            .default
            .unwrap_or_default()
            .compile(None, &providers, api_keys.as_ref())
            .map_err(|e| e.within("default"))?;
        let provider_metrics: Vec<_> = providers
            .iter()
            .map(|p| provider_metric_names(&p.name))
            .collect();
        let provider_metrics: Vec<&[String]> =
            provider_metrics.iter().map(|m| m.as_slice()).collect();
        if let Some((earlier, later, metric)) = shared_metric(FILTER, &provider_metrics) {
            let other = providers.get(earlier).map_or("", |p| p.name.as_str());
            return Err(err(
                format!("providers[{later}].name"),
                format!("shares the metric {metric} with providers[{earlier}] `{other}`: their counts would merge"),
            ));
        }
        // An unnamed rule is `rule<index>`, the default `default`: a name may meet those too.
        let rule_name = |i: usize| rules.get(i).map_or("", |r| r.name.as_str());
        let rule_metrics: Vec<_> = rules
            .iter()
            .chain([&default_rule])
            .map(|r| rule_metric_names(&r.name))
            .collect();
        let rule_metrics: Vec<&[String]> = rule_metrics.iter().map(|m| m.as_slice()).collect();
        if let Some((earlier, later, metric)) = shared_metric(FILTER, &rule_metrics) {
            // The default comes last; a clash with it is the named rule's to fix.
            let (at, other) = match rules.get(later) {
                Some(_) => (later, format!("rules[{earlier}] `{}`", rule_name(earlier))),
                None => (earlier, format!("the default rule `{}`", default_rule.name)),
            };
            return Err(err(
                format!("rules[{at}].name"),
                format!("shares the metric {metric} with {other}: their counts would merge"),
            ));
        }
        if self.cache.max_entries > 1_000_000 {
            return Err(err("cache.max_entries", "must be at most 1000000"));
        }
        if self.cache.max_ttl_seconds == 0 {
            return Err(err("cache.max_ttl_seconds", "must be > 0"));
        }
        let mut identity_headers: Vec<String> = Vec::new();
        for p in &providers {
            let names = p
                .claim_headers
                .iter()
                .map(|(_, h)| h)
                .chain(p.payload_header.as_ref());
            for h in names {
                if !identity_headers.contains(h) {
                    identity_headers.push(h.clone());
                }
            }
        }
        if let Some(a) = &api_keys {
            if !identity_headers.contains(&a.identity_header) {
                identity_headers.push(a.identity_header.clone());
            }
        }
        let locations = locations(&providers, api_keys.as_ref());
        for location in &locations {
            let mut any_issuer = location.readers.iter().filter_map(|c| match c {
                Credential::Jwt(p) => providers
                    .get(*p)
                    .filter(|p| p.policy.issuer.is_none())
                    .map(|provider| (*p, provider)),
                Credential::ApiKey => None,
            });
            if let (Some((_, first)), Some((second, _))) = (any_issuer.next(), any_issuer.next()) {
                return Err(err(
                    format!("providers[{second}].accept_any_issuer"),
                    format!(
                        "provider `{}` also accepts any issuer where this one reads tokens: \
                         it would take every token there",
                        first.name
                    ),
                ));
            }
        }
        Ok(AuthnConfig {
            realm,
            providers,
            api_keys,
            rules,
            default_rule,
            cache_entries: self.cache.max_entries,
            cache_ttl_secs: self.cache.max_ttl_seconds,
            identity_headers,
            locations,
            paths: self.paths,
            strip_credentials_on_public: self.strip_credentials_on_public,
        })
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
