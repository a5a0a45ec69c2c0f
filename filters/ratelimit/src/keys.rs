//! What a rule counts by: the parts of its key, read from the request, hashed with the
//! per-Envoy seed into the rule's slot table. The client address is Envoy's downstream address
//! (`source.address`) unless `xff_trusted_hops` picks an `x-forwarded-for` entry.

use crate::siphash::Sip13;
use serde::Deserialize;
use wasmgate_shared::matching::path_only;
use wasmgate_shared::{ConfigError, Host};

/// One part of a rule's key; several parts combine (one bucket per distinct combination).
/// An empty key is the constant key: one bucket for every request the rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client address (IP, without port).
    Client,
    /// A request header's value, for example the consumer id that authn forwards.
    Header(String),
    /// The request path without its query string.
    Path,
}

/// The JSON shape: `{"source": "client" | "path"}` or `{"source": "header", "name": "x-user"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyPart {
    source: Source,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Source {
    Client,
    Header,
    Path,
}

impl RawKeyPart {
    pub fn compile(self) -> Result<KeyPart, ConfigError> {
        match (self.source, self.name) {
            (Source::Header, Some(name))
                if !name.is_empty()
                    && !name.starts_with(':')
                    && !name.bytes().any(|b| b.is_ascii_uppercase() || b == b' ') =>
            {
                Ok(KeyPart::Header(name))
            }
            (Source::Header, _) => Err(ConfigError::new(
                "name",
                "must be a non-empty lower-case header name",
            )),
            (_, Some(_)) => Err(ConfigError::new(
                "name",
                "only a header key part has a name",
            )),
            (Source::Client, None) => Ok(KeyPart::Client),
            (Source::Path, None) => Ok(KeyPart::Path),
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
    parts: &[KeyPart],
    budget: u32,
    seed: (u64, u64),
    xff_trusted_hops: u32,
) -> Option<SlotRef> {
    let mut h = Sip13::new(seed);
    for part in parts {
        match part {
            KeyPart::Client => {
                let client = client_address(host, xff_trusted_hops)?;
                write_part(&mut h, 1, client.as_bytes());
            }
            KeyPart::Header(name) => {
                let value = host.request_header(name)?;
                write_part(&mut h, 2, value.as_bytes());
            }
            KeyPart::Path => {
                let path = host.request_header(":path")?;
                write_part(&mut h, 3, path_only(&path).as_bytes());
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
pub fn client_address(host: &(impl Host + ?Sized), trusted_hops: u32) -> Option<String> {
    if trusted_hops > 0 {
        if let Some(xff) = host.request_header("x-forwarded-for") {
            let n = trusted_hops as usize;
            if let Some(entry) = xff.rsplit(',').nth(n - 1) {
                let entry = entry.trim();
                if !entry.is_empty() {
                    return Some(entry.to_string());
                }
            }
        }
    }
    let address = host.property(&["source", "address"])?;
    let address = std::str::from_utf8(&address).ok()?;
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
mod tests {
    use super::*;
    use wasmgate_shared::host::FakeHost;

    const SEED: (u64, u64) = (7, 9);

    fn parts(json: &str) -> Vec<KeyPart> {
        let raw: Vec<RawKeyPart> = serde_json::from_str(json).unwrap();
        raw.into_iter().map(|p| p.compile().unwrap()).collect()
    }

    #[test]
    fn strip_port_table() {
        let cases = [
            ("10.0.0.1:4321", "10.0.0.1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("10.0.0.1", "10.0.0.1"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_port(input), want, "{input}");
        }
    }

    #[test]
    fn client_is_the_connection_address_by_default_even_with_xff() {
        let host = FakeHost::new()
            .with_property(&["source", "address"], b"10.0.0.1:5000")
            .with_request_header("x-forwarded-for", "6.6.6.6");
        assert_eq!(client_address(&host, 0).as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn xff_entry_at_trusted_hops_from_the_right() {
        let host = FakeHost::new()
            .with_property(&["source", "address"], b"10.0.0.1:5000")
            .with_request_header("x-forwarded-for", "6.6.6.6, 1.1.1.1, 2.2.2.2");
        assert_eq!(client_address(&host, 1).as_deref(), Some("2.2.2.2"));
        assert_eq!(client_address(&host, 2).as_deref(), Some("1.1.1.1"));
        assert_eq!(client_address(&host, 3).as_deref(), Some("6.6.6.6"));
        // Fewer entries than trusted hops: the connection address.
        assert_eq!(client_address(&host, 4).as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn same_values_same_slot_other_values_other_fingerprint() {
        let p = parts(r#"[{"source":"header","name":"x-user"},{"source":"path"}]"#);
        let a = FakeHost::new()
            .with_request("GET", "/x?q=1", "h")
            .with_request_header("x-user", "alice");
        let a2 = FakeHost::new()
            .with_request("GET", "/x?q=2", "h")
            .with_request_header("x-user", "alice");
        let b = FakeHost::new()
            .with_request("GET", "/x", "h")
            .with_request_header("x-user", "bob");
        let ra = locate(&a, &p, 1000, SEED, 0).unwrap();
        assert_eq!(Some(ra), locate(&a2, &p, 1000, SEED, 0));
        assert_ne!(
            ra.fingerprint,
            locate(&b, &p, 1000, SEED, 0).unwrap().fingerprint
        );
        assert!(ra.slot < 1000);
        // Another seed puts the key elsewhere.
        assert_ne!(Some(ra), locate(&a, &p, 1000, (1, 1), 0));
    }

    #[test]
    fn missing_header_is_no_key() {
        let p = parts(r#"[{"source":"header","name":"x-user"}]"#);
        let host = FakeHost::new().with_request("GET", "/", "h");
        assert_eq!(locate(&host, &p, 10, SEED, 0), None);
    }

    #[test]
    fn parts_cannot_be_shifted_into_each_other() {
        let p = parts(r#"[{"source":"header","name":"a"},{"source":"header","name":"b"}]"#);
        let one = FakeHost::new()
            .with_request_header("a", "xy")
            .with_request_header("b", "z");
        let two = FakeHost::new()
            .with_request_header("a", "x")
            .with_request_header("b", "yz");
        assert_ne!(
            locate(&one, &p, 1 << 20, SEED, 0).unwrap().fingerprint,
            locate(&two, &p, 1 << 20, SEED, 0).unwrap().fingerprint
        );
    }

    #[test]
    fn slots_spread_over_the_budget() {
        let p = parts(r#"[{"source":"header","name":"k"}]"#);
        let mut used = std::collections::HashSet::new();
        for i in 0..1000 {
            let host = FakeHost::new().with_request_header("k", &i.to_string());
            used.insert(locate(&host, &p, 64, SEED, 0).unwrap().slot);
        }
        assert_eq!(used.len(), 64);
    }

    #[test]
    fn unknown_source_or_field_is_rejected() {
        assert!(serde_json::from_str::<RawKeyPart>(r#"{"source":"cookie"}"#).is_err());
        assert!(serde_json::from_str::<RawKeyPart>(r#"{"source":"header","nam":"x"}"#).is_err());
    }

    #[test]
    fn name_belongs_to_header_parts_only() {
        let compile = |json: &str| {
            serde_json::from_str::<RawKeyPart>(json)
                .unwrap()
                .compile()
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            compile(r#"{"source":"path","name":"x"}"#),
            Err("name: only a header key part has a name".to_string())
        );
        assert_eq!(
            compile(r#"{"source":"header"}"#),
            Err("name: must be a non-empty lower-case header name".to_string())
        );
        assert_eq!(
            compile(r#"{"source":"header","name":"x-user"}"#),
            Ok(KeyPart::Header("x-user".to_string()))
        );
    }
}
