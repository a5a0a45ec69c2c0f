//! API-key consumers: the configuration holds only SHA-256 hashes of the keys, the presented
//! key is hashed and compared with every consumer's hash in constant time (no early exit), so
//! neither the config nor the timing reveals a key.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub name: String,
    pub key_sha256: [u8; 32],
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Parses 64 hex digits (either case).
pub fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// The consumer whose key is `presented`, if any.
pub fn find_consumer<'a>(consumers: &'a [Consumer], presented: &str) -> Option<&'a Consumer> {
    let digest = sha256(presented.as_bytes());
    let mut found = None;
    for consumer in consumers {
        if bool::from(consumer.key_sha256.ct_eq(&digest)) && found.is_none() {
            found = Some(consumer);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_parsing() {
        let h = "BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(parse_sha256_hex(h), Some(sha256(b"abc")));
        assert_eq!(parse_sha256_hex(&h[..63]), None);
        assert_eq!(parse_sha256_hex(&h.replace('B', "g")), None);
        assert_eq!(parse_sha256_hex("+1".repeat(32).as_str()), None);
    }

    #[test]
    fn finds_the_consumer_by_key_and_rejects_others() {
        let consumers = vec![
            Consumer {
                name: "ci".into(),
                key_sha256: sha256(b"key-ci"),
            },
            Consumer {
                name: "ops".into(),
                key_sha256: sha256(b"key-ops"),
            },
        ];
        assert_eq!(
            find_consumer(&consumers, "key-ops").map(|c| c.name.as_str()),
            Some("ops")
        );
        assert_eq!(
            find_consumer(&consumers, "key-ci").map(|c| c.name.as_str()),
            Some("ci")
        );
        assert_eq!(find_consumer(&consumers, "key-op"), None);
        assert_eq!(find_consumer(&consumers, ""), None);
        // The hash itself is not a key.
        assert_eq!(find_consumer(&consumers, &hex(&sha256(b"key-ci"))), None);
    }
}
