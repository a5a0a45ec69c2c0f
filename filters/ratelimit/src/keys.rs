//! What a rule counts by: the parts of its key, read from the request, hashed with the
//! per-Envoy seed into the rule's slot table. The client address is Envoy's downstream address
//! (`source.address`) unless `xff_trusted_hops` picks an `x-forwarded-for` entry.

use crate::siphash::Sip13;
use serde::Deserialize;
use wasmgate_shared::config::header_name;
use wasmgate_shared::{ConfigError, Host, RequestView};

/// One part of a rule's key; several parts combine (one bucket per distinct combination).
/// An empty key is the constant key: one bucket for every request the rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client address (IP, without port).
    Client,
    /// A request header's first value, for example the consumer that authn forwards.
    Header(String),
    /// The canonical request path without its query string.
    Path,
    /// The verified identity's name (consumer or `sub`), handed over by the gateway's authn.
    Identity,
    /// A top-level claim of the verified token.
    Claim(String),
}

impl KeyPart {
    /// Whether the part needs authn's verified identity (the gateway module's `ratelimit`).
    pub fn needs_identity(&self) -> bool {
        matches!(self, KeyPart::Identity | KeyPart::Claim(_))
    }
}

/// The JSON shape: `{"source": "client" | "path" | "identity"}`,
/// `{"source": "header", "name": "x-user"}` or `{"source": "claim", "claim": "tenant"}`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawKeyPart {
    source: Source,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    claim: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
enum Source {
    Client,
    Header,
    Path,
    Identity,
    Claim,
}

impl RawKeyPart {
    pub fn compile(self) -> Result<KeyPart, ConfigError> {
        if self.claim.is_some() && !matches!(self.source, Source::Claim) {
            return Err(ConfigError::new(
                "claim",
                "only a claim key part has a claim",
            ));
        }
        match (self.source, self.name) {
            (Source::Header, Some(name)) => Ok(KeyPart::Header(header_name("name", &name)?)),
            (Source::Header, None) => {
                Err(ConfigError::new("name", "must be a lower-case header name"))
            }
            (_, Some(_)) => Err(ConfigError::new(
                "name",
                "only a header key part has a name",
            )),
            (Source::Client, None) => Ok(KeyPart::Client),
            (Source::Path, None) => Ok(KeyPart::Path),
            (Source::Identity, None) => Ok(KeyPart::Identity),
            (Source::Claim, None) => match self.claim {
                Some(claim) if !claim.is_empty() => Ok(KeyPart::Claim(claim)),
                _ => Err(ConfigError::new("claim", "must name a claim")),
            },
        }
    }
}

/// Where a request's key landed in a rule's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRef {
    pub slot: u32,
    /// Never 0 (0 marks a slot nobody has used).
    pub fingerprint: u64,
}

/// Hashes the request's key for a rule with `budget` keyed slots. `None` when a part's value
/// is missing (the rule's `on_missing_key` decides).
pub fn locate(
    host: &(impl Host + ?Sized),
    request: &RequestView,
    parts: &[KeyPart],
    budget: u32,
    seed: (u64, u64),
    xff_trusted_hops: u32,
) -> Option<SlotRef> {
    let mut h = Sip13::new(seed);
    for part in parts {
        match part {
            KeyPart::Client => {
                let client = client_address(host, request, xff_trusted_hops)?;
                write_part(&mut h, 1, client.as_bytes());
            }
            KeyPart::Header(name) => {
                let value = request.header(name)?;
                write_part(&mut h, 2, value.as_bytes());
            }
            KeyPart::Path => {
                if request.path.is_empty() {
                    return None;
                }
                write_part(&mut h, 3, request.path.as_bytes());
            }
            KeyPart::Identity => {
                let name = request.identity.as_ref()?.name.as_deref()?;
                write_part(&mut h, 4, name.as_bytes());
            }
            KeyPart::Claim(claim) => {
                let value = request.identity.as_ref()?.claim(claim)?;
                write_part(&mut h, 5, value.as_bytes());
            }
        }
    }
    let hash = h.finish();
    // Multiply-high maps the hash onto 0..budget without modulo bias worth mentioning.
    let slot = u32::try_from((u128::from(hash) * u128::from(budget)) >> 64).unwrap_or(0);
    Some(SlotRef {
        slot,
        fingerprint: hash.max(1),
    })
}

/// Tag and length first, so ("ab","c") and ("a","bc") never hash alike.
fn write_part(h: &mut Sip13, tag: u8, value: &[u8]) {
    h.write(&[tag]);
    h.write(&(value.len() as u64).to_le_bytes());
    h.write(value);
}

/// The client's IP: with `trusted_hops` = N ≥ 1, the N-th `x-forwarded-for` entry from the
/// right (the address the outermost trusted proxy saw); when the header has fewer entries,
/// the request did not come through those proxies and Envoy's downstream address is used.
pub fn client_address(
    host: &(impl Host + ?Sized),
    request: &RequestView,
    trusted_hops: u32,
) -> Option<String> {
    if trusted_hops > 0 {
        if let Some(xff) = request.header("x-forwarded-for") {
            let n = trusted_hops as usize;
            if let Some(entry) = xff.rsplit(',').nth(n - 1) {
                let entry = entry.trim();
                if !entry.is_empty() {
                    return Some(entry.to_string());
                }
            }
        }
    }
    let address = request.source_address(host)?;
    Some(strip_port(address).to_string())
}

/// `1.2.3.4:5678` → `1.2.3.4`, `[::1]:80` → `::1`; anything else unchanged.
fn strip_port(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => ip,
        _ => address,
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
