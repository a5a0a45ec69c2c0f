//! Differential: every HMAC verdict against jwt-simple's on the same token, over random
//! secrets, claims and corrupted MACs.

use super::*;
use crate::token::encode_b64url;
use jwt_simple::prelude::*;

/// splitmix64: repeatable test randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// jwt-simple's verdict on `input.tag` for `bits` (time checks off: the claims carry none).
fn reference(bits: u16, secret: &[u8], token: &str) -> bool {
    let options = Some(VerificationOptions {
        max_token_length: None,
        ..Default::default()
    });
    match bits {
        256 => HS256Key::from_bytes(secret)
            .verify_token::<NoCustomClaims>(token, options)
            .is_ok(),
        384 => HS384Key::from_bytes(secret)
            .verify_token::<NoCustomClaims>(token, options)
            .is_ok(),
        _ => HS512Key::from_bytes(secret)
            .verify_token::<NoCustomClaims>(token, options)
            .is_ok(),
    }
}

fn tag(bits: u16, secret: &[u8], input: &str) -> Vec<u8> {
    match bits {
        256 => HS256Key::from_bytes(secret).authentication_tag(input.as_bytes()),
        384 => HS384Key::from_bytes(secret).authentication_tag(input.as_bytes()),
        _ => HS512Key::from_bytes(secret).authentication_tag(input.as_bytes()),
    }
}

#[test]
fn verdicts_agree_with_jwt_simple() {
    let mut rng = Rng(0x5eed);
    for round in 0..300 {
        let bits = [256u16, 384, 512][round % 3];
        // Secrets shorter and longer than the hash's block (64 or 128 bytes, hashed first).
        let secret_len = MIN_SECRET_BYTES + rng.below(200);
        let secret = rng.bytes(secret_len);
        let header = format!(r#"{{"alg":"HS{bits}","typ":"JWT"}}"#);
        let claims = format!(
            r#"{{"sub":"{}"}}"#,
            encode_b64url(&{
                let len = rng.below(300);
                rng.bytes(len)
            })
        );
        let input = format!(
            "{}.{}",
            encode_b64url(header.as_bytes()),
            encode_b64url(claims.as_bytes())
        );
        let good = tag(bits, &secret, &input);
        let mut flipped = good.clone();
        let at = rng.below(flipped.len());
        flipped[at] ^= 1 << rng.below(8);
        let truncated = good[..good.len() - 1 - rng.below(good.len() - 1)].to_vec();
        let mut extended = good.clone();
        extended.push(rng.next() as u8);
        let mut other_secret = secret.clone();
        other_secret[0] ^= 0x80;
        let candidates = [
            (good.clone(), true),
            (flipped, false),
            (truncated, false),
            (extended, false),
            (Vec::new(), false),
            (tag(bits, &other_secret, &input), false),
            (rng.bytes(good.len()), false),
        ];
        let key = HmacKey::new(bits, &secret).unwrap();
        assert_eq!(key.bits(), bits);
        for (i, (mac, expected)) in candidates.iter().enumerate() {
            let token = format!("{input}.{}", encode_b64url(mac));
            let ours = key.verify(input.as_bytes(), mac);
            assert_eq!(ours, *expected, "round {round}, candidate {i}");
            assert_eq!(
                ours,
                reference(bits, &secret, &token),
                "round {round}, candidate {i}"
            );
        }
    }
}

#[test]
fn a_key_needs_a_secret_and_a_known_size() {
    // jwt-simple refuses every token under a secret this short; here such a key never loads.
    let short = [7u8; MIN_SECRET_BYTES - 1];
    let input = "eyJhbGciOiJIUzI1NiJ9.e30";
    let token = format!("{input}.{}", encode_b64url(&tag(256, &short, input)));
    assert!(!reference(256, &short, &token));
    assert!(HmacKey::new(256, &short).is_none());
    assert!(HmacKey::new(256, &[7u8; MIN_SECRET_BYTES]).is_some());
    assert!(HmacKey::new(256, b"").is_none());
    assert!(HmacKey::new(128, b"secret-secret").is_none());
    let key = HmacKey::new(512, b"secret-secret").unwrap();
    // An HS256 MAC is not an HS512 one, even as a prefix.
    let short = tag(256, b"secret-secret", "a.b");
    assert!(!key.verify(b"a.b", &short));
    assert!(!key.verify(b"a.b", &tag(512, b"secret-secret", "a.b")[..32]));
}
