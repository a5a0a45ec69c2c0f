//! Differential tests: every verdict of `signatures` is compared with the `rsa` crate or jwt-simple.

use super::montgomery::Modulus;
use super::{Ed25519PublicKey, RsaHash, RsaPublicKey};
use crate::algorithm::Algorithm;
use crate::verifier::{KeyMaterial, Verifier};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use rsa::pkcs8::DecodePrivateKey;
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::signature::Verifier as _;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{pss, BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::sync::OnceLock;

/// Deterministic splitmix64, so failures reproduce.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// A copy of `bytes` (not empty) with one random bit flipped.
    pub(super) fn flip_bit(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let bit = self.below(out.len() * 8);
        out[bit / 8] ^= 1 << (bit % 8);
        out
    }

    pub(super) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn bytes_below(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len);
        self.bytes(len)
    }

    /// `usual` twice as often as a random length below `max_len`.
    fn len_mostly(&mut self, usual: usize, max_len: usize) -> usize {
        let random = self.below(max_len);
        [usual, usual, random][self.below(3)]
    }
}

const HASHES: [RsaHash; 3] = [RsaHash::Sha256, RsaHash::Sha384, RsaHash::Sha512];

/// Private keys made once with `openssl genpkey` (test data only; 2049 bits, which genpkey rounds
/// to 2048, from two `openssl prime` primes).
const KEY_FILES: [(&str, &str); 8] = [
    ("1024 e=65537", include_str!("testdata/rsa_1024_e65537.pem")),
    ("2047 e=65537", include_str!("testdata/rsa_2047_e65537.pem")),
    ("2048 e=65537", include_str!("testdata/rsa_2048_e65537.pem")),
    ("2048 e=3", include_str!("testdata/rsa_2048_e3.pem")),
    ("2048 e=17", include_str!("testdata/rsa_2048_e17.pem")),
    ("2049 e=65537", include_str!("testdata/rsa_2049_e65537.pem")),
    ("3072 e=65537", include_str!("testdata/rsa_3072_e65537.pem")),
    ("4096 e=65537", include_str!("testdata/rsa_4096_e65537.pem")),
];

struct TestKey {
    name: &'static str,
    pem: &'static str,
    private: RsaPrivateKey,
    fast: RsaPublicKey,
}

impl TestKey {
    fn n(&self) -> BigUint {
        self.private.n().clone()
    }

    fn len(&self) -> usize {
        self.private.size()
    }

    fn sign(&self, hash: RsaHash, message: &[u8]) -> Vec<u8> {
        let (scheme, digest) = scheme_and_digest(hash, message);
        self.private.sign(scheme, &digest).unwrap()
    }

    fn reference_verify(&self, hash: RsaHash, message: &[u8], signature: &[u8]) -> bool {
        let (scheme, digest) = scheme_and_digest(hash, message);
        self.private
            .to_public_key()
            .verify(scheme, &digest, signature)
            .is_ok()
    }

    /// Asserts that `fast` and the `rsa` crate agree; returns the verdict.
    fn agree(&self, hash: RsaHash, message: &[u8], signature: &[u8]) -> bool {
        let fast = self.fast.verify_pkcs1v15(hash, message, signature);
        let reference = self.reference_verify(hash, message, signature);
        assert_eq!(
            fast, reference,
            "key {} {hash:?} message {message:02x?} signature {signature:02x?}",
            self.name
        );
        fast
    }
}

fn scheme_and_digest(hash: RsaHash, message: &[u8]) -> (Pkcs1v15Sign, Vec<u8>) {
    match hash {
        RsaHash::Sha256 => (
            Pkcs1v15Sign::new::<Sha256>(),
            Sha256::digest(message).to_vec(),
        ),
        RsaHash::Sha384 => (
            Pkcs1v15Sign::new::<Sha384>(),
            Sha384::digest(message).to_vec(),
        ),
        RsaHash::Sha512 => (
            Pkcs1v15Sign::new::<Sha512>(),
            Sha512::digest(message).to_vec(),
        ),
    }
}

fn test_keys() -> &'static [TestKey] {
    static KEYS: OnceLock<Vec<TestKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        KEY_FILES
            .iter()
            .map(|&(name, pem)| {
                let private = RsaPrivateKey::from_pkcs8_pem(pem).unwrap();
                let fast = RsaPublicKey::from_components(
                    &private.n().to_bytes_be(),
                    &private.e().to_bytes_be(),
                )
                .unwrap();
                TestKey {
                    name,
                    pem,
                    private,
                    fast,
                }
            })
            .collect()
    })
}

fn key(name: &str) -> &'static TestKey {
    test_keys().iter().find(|k| k.name == name).unwrap()
}

fn padded_be(value: &BigUint, len: usize) -> Vec<u8> {
    let bytes = value.to_bytes_be();
    let mut out = vec![0u8; len.saturating_sub(bytes.len())];
    out.extend_from_slice(&bytes);
    out
}

#[test]
fn rsa_accepts_signatures_made_by_the_rsa_crate_and_rejects_any_flipped_bit() {
    let mut rng = Rng(1);
    for key in test_keys() {
        assert_eq!(key.fast.bits(), key.n().bits(), "{}", key.name);
        for hash in HASHES {
            for _ in 0..3 {
                let message = rng.bytes_below(1500);
                let signature = key.sign(hash, &message);
                assert!(
                    key.agree(hash, &message, &signature),
                    "{} {hash:?}",
                    key.name
                );
                for _ in 0..4 {
                    let flipped = rng.flip_bit(&signature);
                    assert!(!key.agree(hash, &message, &flipped));
                }
                if !message.is_empty() {
                    let other = rng.flip_bit(&message);
                    assert!(!key.agree(hash, &other, &signature));
                }
                for wrong_hash in HASHES.into_iter().filter(|&h| h != hash) {
                    assert!(!key.agree(wrong_hash, &message, &signature));
                }
            }
        }
    }
}

/// Signatures that no RSA verifier may accept, around a `valid` one for modulus `n` of `len`
/// bytes: 0, 1, n − 1, n, n + 1, all ones, wrong lengths, shifted bytes, and valid + n (the
/// same residue, not below n; only where it still fits the length).
fn edge_signatures(valid: &[u8], n: &BigUint, len: usize) -> Vec<Vec<u8>> {
    let one = BigUint::from(1u32);
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; len],
        padded_be(&one, len),
        padded_be(&(n - &one), len),
        padded_be(n, len),
        padded_be(&(n + &one), len),
        vec![0xff; len],
        vec![0; len - 1],
        valid[1..].to_vec(),
        [valid, &[0]].concat(),
        [&[0], valid].concat(),
        [&[0, 0], valid].concat(),
    ];
    let wrapped = BigUint::from_bytes_be(valid) + n;
    if wrapped.bits() <= len * 8 {
        cases.push(padded_be(&wrapped, len));
    }
    cases
}

#[test]
fn rsa_rejects_edge_case_signatures_like_the_rsa_crate() {
    for key in test_keys() {
        let len = key.len();
        let n = key.n();
        let valid = key.sign(RsaHash::Sha256, b"payload");
        let cases = edge_signatures(&valid, &n, len);
        for signature in &cases {
            for hash in HASHES {
                assert!(!key.agree(hash, b"payload", signature), "{}", key.name);
            }
        }
        assert!(key.agree(RsaHash::Sha256, b"payload", &valid));
    }
}

#[test]
fn rsa_rejects_valid_padding_without_digest_info() {
    for key in test_keys() {
        let digest = Sha256::digest(b"payload");
        let unprefixed = key
            .private
            .sign(Pkcs1v15Sign::new_unprefixed(), &digest)
            .unwrap();
        assert!(!key.agree(RsaHash::Sha256, b"payload", &unprefixed));
        // A SHA-256 DigestInfo around a SHA-384-sized digest slot: wrong DigestInfo for RS384.
        let sha256_of_384 = key
            .private
            .sign(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha384::digest(b"payload")[..32],
            )
            .unwrap();
        assert!(!key.agree(RsaHash::Sha384, b"payload", &sha256_of_384));
    }
}

#[test]
fn rsa_random_signatures_agree_with_the_rsa_crate() {
    let mut rng = Rng(2);
    for key in test_keys() {
        for _ in 0..40 {
            let len = rng.len_mostly(key.len(), key.len() + 3);
            let signature = rng.bytes(len);
            assert!(!key.agree(HASHES[rng.below(3)], b"m", &signature));
        }
    }
}

#[test]
fn modular_power_matches_biguint_on_random_odd_moduli() {
    let mut rng = Rng(3);
    for round in 0..120 {
        let bits = match round % 4 {
            0 => 1 + rng.below(4096),
            1 => 1024 * (1 + rng.below(4)),
            2 => 28 * (1 + rng.below(146)) + rng.below(3),
            _ => 4096 - rng.below(30),
        }
        .min(4096);
        let mut n_bytes = rng.bytes(bits.div_ceil(8));
        let top_bits = bits - (n_bytes.len() - 1) * 8;
        n_bytes[0] &= ((1u16 << top_bits) - 1) as u8;
        n_bytes[0] |= 1 << (top_bits - 1);
        *n_bytes.last_mut().unwrap() |= 1;
        let n = BigUint::from_bytes_be(&n_bytes);
        if n == BigUint::from(1u32) {
            continue;
        }
        let modulus = Modulus::from_be_bytes(&n_bytes).unwrap();
        assert_eq!(modulus.bits(), bits);
        let exponent = [3u64, 17, 65537, (rng.next() % (1 << 33)) | 1][rng.below(4)].max(3);
        let len = modulus.byte_len();
        let random = BigUint::from_bytes_be(&rng.bytes(len)) % &n;
        let one = BigUint::from(1u32);
        for base in [random, BigUint::from(0u32), one.clone(), &n - &one] {
            let base_bytes = padded_be(&base, len);
            let mut out = vec![0u8; len];
            assert!(modulus.pow_odd(&base_bytes, exponent, &mut out));
            let expected = base.modpow(&BigUint::from(exponent), &n);
            assert_eq!(
                out,
                padded_be(&expected, len),
                "n {n:x} base {base:x} e {exponent}"
            );
        }
        let mut out = vec![0u8; len];
        assert!(!modulus.pow_odd(&n_bytes, exponent, &mut out), "base = n");
        assert!(!modulus.pow_odd(&n_bytes, 4, &mut out), "even exponent");
    }
}

#[test]
fn rsa_key_components_are_validated() {
    let key = key("2048 e=65537");
    let n = key.n().to_bytes_be();
    let even_n = {
        let mut n = n.clone();
        *n.last_mut().unwrap() &= 0xfe;
        n
    };
    let odd_1023_bits = {
        let mut n = vec![0xffu8; 128];
        n[0] = 0x7f;
        n
    };
    let odd_4097_bits = [&[1u8][..], &[0xff; 512]].concat();
    let rejected: [(&str, &[u8], &[u8]); 11] = [
        ("even n", &even_n, &[1, 0, 1]),
        ("empty n", &[], &[1, 0, 1]),
        ("zero n", &[0; 256], &[1, 0, 1]),
        ("n of 1023 bits", &odd_1023_bits, &[1, 0, 1]),
        ("n of 4097 bits", &odd_4097_bits, &[1, 0, 1]),
        ("e = 1", &n, &[1]),
        ("e = 2", &n, &[2]),
        ("even e", &n, &[1, 0, 0]),
        ("empty e", &n, &[]),
        ("e = 2^33 + 1", &n, &[2, 0, 0, 0, 1]),
        ("e of 9 bytes", &n, &[1, 0, 0, 0, 0, 0, 0, 0, 1]),
    ];
    for (case, n, e) in rejected {
        assert!(RsaPublicKey::from_components(n, e).is_none(), "{case}");
    }
    let padded =
        RsaPublicKey::from_components(&[&[0, 0][..], &n].concat(), &[0, 0, 1, 0, 1]).unwrap();
    assert_eq!(padded, key.fast);
    assert_eq!(padded.bits(), 2048);
    let max = RsaPublicKey::from_components(&[0xff; 512], &[3]).unwrap();
    assert_eq!(max.bits(), 4096);
    assert_eq!(
        RsaPublicKey::from_components(&[0xff; 128], &[3])
            .unwrap()
            .bits(),
        1024
    );
}

#[test]
fn rsa_random_keys_and_inputs_never_panic() {
    let mut rng = Rng(4);
    for _ in 0..200 {
        let mut n = rng.bytes_below(600);
        if let Some(low) = n.last_mut() {
            *low |= rng.below(2) as u8;
        }
        let e = rng.bytes_below(10);
        let e = if rng.below(2) == 0 { vec![1, 0, 1] } else { e };
        if let Some(key) = RsaPublicKey::from_components(&n, &e) {
            let len = rng.len_mostly(key.bits().div_ceil(8), 600);
            let signature = rng.bytes(len);
            assert!(!key.verify_pkcs1v15(HASHES[rng.below(3)], &n, &signature));
            assert!(!key.verify_pss(HASHES[rng.below(3)], &n, &signature));
        }
    }
}

/// Splits a compact JWS into (signing input, decoded signature).
fn split_token(token: &str) -> (&str, Vec<u8>) {
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    (signing_input, URL_SAFE_NO_PAD.decode(signature).unwrap())
}

fn with_signature(signing_input: &str, signature: &[u8]) -> String {
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[test]
fn rsa_agrees_with_jwt_simple_on_its_tokens() {
    let mut rng = Rng(5);
    for name in ["2048 e=65537", "3072 e=65537", "4096 e=65537"] {
        let key = key(name);
        let tokens = [
            (
                RsaHash::Sha256,
                RS256KeyPair::from_pem(key.pem)
                    .unwrap()
                    .sign(Claims::create(Duration::from_hours(1)).with_subject("alice"))
                    .unwrap(),
            ),
            (
                RsaHash::Sha384,
                RS384KeyPair::from_pem(key.pem)
                    .unwrap()
                    .sign(Claims::create(Duration::from_hours(1)).with_subject("bob"))
                    .unwrap(),
            ),
            (
                RsaHash::Sha512,
                RS512KeyPair::from_pem(key.pem)
                    .unwrap()
                    .sign(Claims::create(Duration::from_hours(1)).with_audience("api"))
                    .unwrap(),
            ),
        ];
        let n = key.n().to_bytes_be();
        let e = key.private.e().to_bytes_be();
        for (hash, token) in tokens {
            let (signing_input, signature) = split_token(&token);
            let mut variants = vec![(signature.clone(), true)];
            for _ in 0..5 {
                let flipped = rng.flip_bit(&signature);
                variants.push((flipped, false));
            }
            for (signature, valid) in variants {
                let token = with_signature(signing_input, &signature);
                let reference = match hash {
                    RsaHash::Sha256 => RS256PublicKey::from_components(&n, &e)
                        .unwrap()
                        .verify_token::<NoCustomClaims>(&token, None)
                        .is_ok(),
                    RsaHash::Sha384 => RS384PublicKey::from_components(&n, &e)
                        .unwrap()
                        .verify_token::<NoCustomClaims>(&token, None)
                        .is_ok(),
                    RsaHash::Sha512 => RS512PublicKey::from_components(&n, &e)
                        .unwrap()
                        .verify_token::<NoCustomClaims>(&token, None)
                        .is_ok(),
                };
                let fast = key
                    .fast
                    .verify_pkcs1v15(hash, signing_input.as_bytes(), &signature);
                assert_eq!(fast, reference, "{name} {hash:?}");
                assert_eq!(fast, valid, "{name} {hash:?}");
            }
        }
    }
}

// RSASSA-PSS (PS256/PS384/PS512): the reference is the `rsa` crate's `pss::VerifyingKey`, which
// jwt-simple calls with the salt length RFC 7518 requires (the hash's length).

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.next() as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.next()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.iter_mut().for_each(|b| *b = self.next() as u8);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Test data only: reproducible salts and keys.
impl CryptoRng for Rng {}

fn hash_len(hash: RsaHash) -> usize {
    match hash {
        RsaHash::Sha256 => 32,
        RsaHash::Sha384 => 48,
        RsaHash::Sha512 => 64,
    }
}

fn pss_scheme_and_digest(hash: RsaHash, salt_len: usize, message: &[u8]) -> (Pss, Vec<u8>) {
    match hash {
        RsaHash::Sha256 => (
            Pss::new_with_salt::<Sha256>(salt_len),
            Sha256::digest(message).to_vec(),
        ),
        RsaHash::Sha384 => (
            Pss::new_with_salt::<Sha384>(salt_len),
            Sha384::digest(message).to_vec(),
        ),
        RsaHash::Sha512 => (
            Pss::new_with_salt::<Sha512>(salt_len),
            Sha512::digest(message).to_vec(),
        ),
    }
}

/// The `rsa` crate's PSS verdict with `salt_len`, through the `VerifyingKey` jwt-simple uses.
fn rsa_crate_verify_pss(
    public: &rsa::RsaPublicKey,
    hash: RsaHash,
    salt_len: usize,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let Ok(signature) = pss::Signature::try_from(signature) else {
        return false;
    };
    let public = public.clone();
    match hash {
        RsaHash::Sha256 => pss::VerifyingKey::<Sha256>::new_with_salt_len(public, salt_len)
            .verify(message, &signature)
            .is_ok(),
        RsaHash::Sha384 => pss::VerifyingKey::<Sha384>::new_with_salt_len(public, salt_len)
            .verify(message, &signature)
            .is_ok(),
        RsaHash::Sha512 => pss::VerifyingKey::<Sha512>::new_with_salt_len(public, salt_len)
            .verify(message, &signature)
            .is_ok(),
    }
}

/// Asserts that `fast` and the `rsa` crate (salt length = hash length) agree; returns the verdict.
fn pss_agree(
    name: &str,
    private: &RsaPrivateKey,
    fast: &RsaPublicKey,
    hash: RsaHash,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let verdict = fast.verify_pss(hash, message, signature);
    let public = private.to_public_key();
    let reference = rsa_crate_verify_pss(&public, hash, hash_len(hash), message, signature);
    assert_eq!(
        verdict, reference,
        "key {name} {hash:?} message {message:02x?} signature {signature:02x?}"
    );
    verdict
}

/// A PSS signature by the `rsa` crate; None when the key is too short for this hash and salt.
fn pss_sign(
    private: &RsaPrivateKey,
    hash: RsaHash,
    salt_len: usize,
    message: &[u8],
    rng: &mut Rng,
) -> Option<Vec<u8>> {
    let (scheme, digest) = pss_scheme_and_digest(hash, salt_len, message);
    private.sign_with_rng(rng, scheme, &digest).ok()
}

impl TestKey {
    fn pss_sign(&self, hash: RsaHash, message: &[u8], rng: &mut Rng) -> Option<Vec<u8>> {
        pss_sign(&self.private, hash, hash_len(hash), message, rng)
    }

    fn pss_agree(&self, hash: RsaHash, message: &[u8], signature: &[u8]) -> bool {
        pss_agree(
            self.name,
            &self.private,
            &self.fast,
            hash,
            message,
            signature,
        )
    }

    /// m = s^e mod n as `len()` bytes: the encoded message inside a signature.
    fn open(&self, signature: &[u8]) -> Vec<u8> {
        let m = BigUint::from_bytes_be(signature).modpow(self.private.e(), &self.n());
        padded_be(&m, self.len())
    }

    /// s = m^d mod n: signs any encoded message the test makes up (raw RSA, with the CRT as
    /// unoptimised bignums are slow).
    fn seal(&self, em: &[u8]) -> Vec<u8> {
        let m = BigUint::from_bytes_be(em);
        assert!(m < self.n());
        let (p, q) = (&self.private.primes()[0], &self.private.primes()[1]);
        let s_p = m.modpow(self.private.dp().unwrap(), p);
        let s_q = m.modpow(self.private.dq().unwrap(), q);
        let q_inv = q.modpow(&(p - 2u32), p); // Fermat: p is prime
        let h = (s_p + p - &s_q % p) * q_inv % p;
        padded_be(&(s_q + h * q), self.len())
    }
}

#[test]
fn pss_accepts_signatures_made_by_the_rsa_crate_and_rejects_any_flipped_bit() {
    let mut rng = Rng(11);
    for key in test_keys() {
        for hash in HASHES {
            for _ in 0..3 {
                let message = rng.bytes_below(1500);
                let Some(signature) = key.pss_sign(hash, &message, &mut rng) else {
                    // Only 1024-bit keys are too short, and only for SHA-512 with a 64-byte salt.
                    assert_eq!((key.len(), hash), (128, RsaHash::Sha512));
                    continue;
                };
                assert!(key.pss_agree(hash, &message, &signature), "{}", key.name);
                for _ in 0..4 {
                    let flipped = rng.flip_bit(&signature);
                    assert!(!key.pss_agree(hash, &message, &flipped));
                }
                if !message.is_empty() {
                    let other = rng.flip_bit(&message);
                    assert!(!key.pss_agree(hash, &other, &signature));
                }
                for wrong_hash in HASHES.into_iter().filter(|&h| h != hash) {
                    assert!(!key.pss_agree(wrong_hash, &message, &signature));
                }
                // The same key and hash under PKCS#1 v1.5 is another scheme.
                assert!(!key.agree(hash, &message, &signature));
            }
        }
    }
}

#[test]
fn pss_rejects_each_corrupted_field_of_a_resigned_encoding() {
    let mut rng = Rng(12);
    let cases = [
        ("2047 e=65537", RsaHash::Sha512),
        ("2048 e=65537", RsaHash::Sha256),
        ("2048 e=65537", RsaHash::Sha384),
        ("2048 e=65537", RsaHash::Sha512),
        ("2049 e=65537", RsaHash::Sha256),
        ("3072 e=65537", RsaHash::Sha384),
        ("4096 e=65537", RsaHash::Sha512),
    ];
    let mut top_bit_cases = 0;
    for (name, hash) in cases {
        let key = key(name);
        let h_len = hash_len(hash);
        // EM = maskedDB ‖ H ‖ 0xbc from `start` (one byte in for 2049 bits); the top
        // `unused` bits of its first byte lie above emBits.
        let k = key.len();
        let em_bits = key.fast.bits() - 1;
        let start = k - em_bits.div_ceil(8);
        let unused = (k - start) * 8 - em_bits;
        let db_end = k - 1 - h_len;
        let salt = db_end - h_len..db_end;
        for round in 0..4 {
            let message = format!("payload {round}");
            let message = message.as_bytes();
            let signature = key.pss_sign(hash, message, &mut rng).unwrap();
            let em = key.open(&signature);
            assert_eq!(key.seal(&em), signature, "raw RSA round trip");
            let mut fields = vec![
                ("first byte", start, rng.below(8 - unused)),
                (
                    "padding",
                    start + 1 + rng.below(salt.start - 2 - start),
                    rng.below(8),
                ),
                ("0x01 separator", salt.start - 1, rng.below(8)),
                ("first salt byte", salt.start, rng.below(8)),
                ("salt", salt.start + rng.below(h_len), rng.below(8)),
                ("last salt byte", salt.end - 1, rng.below(8)),
                ("H", db_end + rng.below(h_len), rng.below(8)),
                ("trailer", k - 1, rng.below(8)),
            ];
            if unused > 0 {
                fields.push(("bit above emBits", start, 8 - unused));
            }
            // One field per round beyond the first, to keep unoptimised bignums quick.
            let chosen = if round == 0 { 0..fields.len() } else { 0..0 };
            let extra = rng.below(fields.len());
            for (field, at, bit) in fields
                .iter()
                .enumerate()
                .filter(|(i, _)| chosen.contains(i) || *i == extra)
                .map(|(_, f)| *f)
            {
                let mut corrupted = em.clone();
                corrupted[at] ^= 1 << bit;
                if BigUint::from_bytes_be(&corrupted) >= key.n() {
                    continue; // only above emBits, where n may be smaller
                }
                top_bit_cases += usize::from(field == "bit above emBits");
                let forged = key.seal(&corrupted);
                assert!(
                    !key.pss_agree(hash, message, &forged),
                    "{name} {hash:?} {field} bit {bit}"
                );
            }
        }
    }
    assert!(top_bit_cases > 0);
}

#[test]
fn pss_refuses_a_nonzero_byte_above_the_encoding_which_the_rsa_crate_ignores() {
    // With 8j + 1 modulus bits EM has emLen = k − 1 bytes, and RFC 8017 §8.1.2 step 2c makes an
    // RSA output with a nonzero byte above them invalid; the `rsa` crate 0.9 drops that byte
    // unread, so here (the only verdict that differs) the reference is not followed.
    let mut rng = Rng(13);
    let key = key("2049 e=65537");
    let mut tried = 0;
    for round in 0..64 {
        if tried == 3 {
            break;
        }
        let message = format!("payload {round}");
        let signature = key
            .pss_sign(RsaHash::Sha256, message.as_bytes(), &mut rng)
            .unwrap();
        let mut em = key.open(&signature);
        assert_eq!(em[0], 0);
        em[0] = 1;
        if BigUint::from_bytes_be(&em) >= key.n() {
            continue;
        }
        let forged = key.seal(&em);
        let public = key.private.to_public_key();
        assert!(rsa_crate_verify_pss(
            &public,
            RsaHash::Sha256,
            32,
            message.as_bytes(),
            &forged
        ));
        assert!(!key
            .fast
            .verify_pss(RsaHash::Sha256, message.as_bytes(), &forged));
        tried += 1;
    }
    assert!(tried > 0, "no encoding fitted below n");
}

#[test]
fn pss_refuses_salts_of_any_other_length() {
    let mut rng = Rng(14);
    let cases = [
        ("2047 e=65537", RsaHash::Sha384),
        ("2048 e=65537", RsaHash::Sha256),
        ("2048 e=65537", RsaHash::Sha384),
        ("2048 e=65537", RsaHash::Sha512),
        ("2049 e=65537", RsaHash::Sha512),
        ("3072 e=65537", RsaHash::Sha256),
        ("4096 e=65537", RsaHash::Sha384),
    ];
    for (name, hash) in cases {
        let key = key(name);
        let public = key.private.to_public_key();
        let em_len = (key.fast.bits() - 1).div_ceil(8);
        let h_len = hash_len(hash);
        let longest = em_len - h_len - 2;
        let random = Some(1 + rng.below(longest - 1)).filter(|&len| len != h_len);
        for salt_len in [0, 20, h_len - 1, h_len + 1, longest]
            .into_iter()
            .chain(random)
        {
            let signature = pss_sign(&key.private, hash, salt_len, b"payload", &mut rng)
                .unwrap_or_else(|| panic!("{name} {hash:?} salt {salt_len}"));
            // A genuine signature for its own salt length...
            assert!(rsa_crate_verify_pss(
                &public, hash, salt_len, b"payload", &signature
            ));
            // ...which JWS PS* refuses.
            assert!(
                !key.pss_agree(hash, b"payload", &signature),
                "{name} {hash:?} salt {salt_len}"
            );
        }
    }
}

#[test]
fn pss_rejects_edge_case_signatures_like_the_rsa_crate() {
    let mut rng = Rng(15);
    for key in test_keys() {
        let len = key.len();
        let n = key.n();
        let valid = key.pss_sign(RsaHash::Sha256, b"payload", &mut rng).unwrap();
        let cases = edge_signatures(&valid, &n, len);
        for signature in &cases {
            for hash in HASHES {
                assert!(!key.pss_agree(hash, b"payload", signature), "{}", key.name);
            }
        }
        assert!(key.pss_agree(RsaHash::Sha256, b"payload", &valid));
    }
}

#[test]
fn pss_random_signatures_agree_with_the_rsa_crate() {
    let mut rng = Rng(16);
    for key in test_keys() {
        for _ in 0..40 {
            let len = rng.len_mostly(key.len(), key.len() + 3);
            let signature = rng.bytes(len);
            assert!(!key.pss_agree(HASHES[rng.below(3)], b"m", &signature));
        }
    }
}

/// Keys the `rsa` crate generates from `seed`, each checked with every hash.
fn pss_agrees_on_random_keys(seed: u64, sizes: &[usize]) {
    let mut rng = Rng(seed);
    for &bits in sizes {
        let private = RsaPrivateKey::new(&mut rng, bits).unwrap();
        let fast =
            RsaPublicKey::from_components(&private.n().to_bytes_be(), &private.e().to_bytes_be())
                .unwrap();
        let name = format!("random {bits}");
        for hash in HASHES {
            let message = rng.bytes_below(300);
            let signature = pss_sign(&private, hash, hash_len(hash), &message, &mut rng).unwrap();
            assert!(pss_agree(
                &name, &private, &fast, hash, &message, &signature
            ));
            let flipped = rng.flip_bit(&signature);
            assert!(!pss_agree(&name, &private, &fast, hash, &message, &flipped));
            let other_salt = pss_sign(&private, hash, 0, &message, &mut rng).unwrap();
            assert!(!pss_agree(
                &name,
                &private,
                &fast,
                hash,
                &message,
                &other_salt
            ));
        }
    }
}

#[test]
fn pss_agrees_with_the_rsa_crate_on_random_keys() {
    pss_agrees_on_random_keys(17, &[2048, 2048]);
}

#[test]
#[ignore = "minutes of unoptimised key generation: run with --release -- --ignored"]
fn pss_agrees_with_the_rsa_crate_on_random_large_keys() {
    pss_agrees_on_random_keys(19, &[3072, 4096]);
}

#[test]
fn pss_agrees_with_jwt_simple_on_its_tokens() {
    let mut rng = Rng(18);
    for name in ["2048 e=65537", "3072 e=65537", "4096 e=65537"] {
        let key = key(name);
        let claims = || Claims::create(Duration::from_hours(1)).with_subject("alice");
        let tokens = [
            (
                Algorithm::Ps256,
                RsaHash::Sha256,
                PS256KeyPair::from_pem(key.pem)
                    .unwrap()
                    .sign(claims())
                    .unwrap(),
            ),
            (
                Algorithm::Ps384,
                RsaHash::Sha384,
                PS384KeyPair::from_pem(key.pem)
                    .unwrap()
                    .sign(claims())
                    .unwrap(),
            ),
            (
                Algorithm::Ps512,
                RsaHash::Sha512,
                PS512KeyPair::from_pem(key.pem)
                    .unwrap()
                    .sign(claims())
                    .unwrap(),
            ),
        ];
        let n = key.n().to_bytes_be();
        let e = key.private.e().to_bytes_be();
        let material = KeyMaterial::Rsa { n: &n, e: &e };
        for (alg, hash, token) in tokens {
            let fast = Verifier::new(alg, &material).unwrap();
            assert!(matches!(fast, Verifier::FastRsaPss(..)), "{name} {alg:?}");
            let reference = Verifier::reference(alg, &material).unwrap();
            let (signing_input, signature) = split_token(&token);
            let mut variants = vec![(signature.clone(), true)];
            for _ in 0..5 {
                let flipped = rng.flip_bit(&signature);
                variants.push((flipped, false));
            }
            // Same key and salt, another hash: a PS* token of the wrong algorithm.
            let other = if hash == RsaHash::Sha256 {
                RsaHash::Sha512
            } else {
                RsaHash::Sha256
            };
            let wrong_hash = pss_sign(
                &key.private,
                other,
                hash_len(hash),
                signing_input.as_bytes(),
                &mut rng,
            );
            variants.extend(wrong_hash.map(|s| (s, false)));
            for (signature, valid) in variants {
                let input = signing_input.as_bytes();
                let verdict = fast.verify(input, &signature);
                assert_eq!(
                    verdict,
                    reference.verify(input, &signature),
                    "{name} {alg:?}"
                );
                assert_eq!(verdict, valid, "{name} {alg:?}");
                assert_eq!(key.fast.verify_pss(hash, input, &signature), valid);
            }
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 8032 §7.1 tests 1–3: (public key, message, signature).
const RFC8032_VECTORS: [(&str, &str, &str); 3] = [
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
];

#[test]
fn ed25519_accepts_rfc8032_vectors_and_rejects_any_flipped_bit() {
    let mut rng = Rng(6);
    for (public, message, signature) in RFC8032_VECTORS {
        let key = Ed25519PublicKey::from_bytes(&hex(public)).unwrap();
        let (message, signature) = (hex(message), hex(signature));
        assert!(key.verify(&message, &signature), "{public}");
        for _ in 0..20 {
            let mut flipped = signature.clone();
            let bit = rng.below(512);
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(!key.verify(&message, &flipped));
        }
        assert!(!key.verify(b"other", &signature));
        assert!(!key.verify(&message, &signature[..63]));
        assert!(!key.verify(&message, &[&signature[..], &[0]].concat()));
    }
}

/// Order of the Ed25519 base point, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// S + L: the same scalar, not canonical.
fn non_canonical(signature: &[u8]) -> Vec<u8> {
    let mut out = signature.to_vec();
    let mut carry = 0u16;
    for (byte, order) in out[32..].iter_mut().zip(GROUP_ORDER) {
        let sum = u16::from(*byte) + u16::from(order) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    out
}

#[test]
fn ed25519_agrees_with_jwt_simple_on_its_tokens() {
    let mut rng = Rng(7);
    for round in 0..20 {
        let pair = Ed25519KeyPair::generate();
        let public = pair.public_key();
        let fast = Ed25519PublicKey::from_bytes(&public.to_bytes()).unwrap();
        let claims = Claims::create(Duration::from_hours(1)).with_subject(format!("user{round}"));
        let token = pair.sign(claims).unwrap();
        let (signing_input, signature) = split_token(&token);
        let mut variants = vec![
            (signature.clone(), true),
            (non_canonical(&signature), false),
        ];
        for _ in 0..5 {
            let mut flipped = signature.clone();
            let bit = rng.below(512);
            flipped[bit / 8] ^= 1 << (bit % 8);
            variants.push((flipped, false));
        }
        for (signature, valid) in variants {
            let reference = public
                .verify_token::<NoCustomClaims>(&with_signature(signing_input, &signature), None)
                .is_ok();
            let verdict = fast.verify(signing_input.as_bytes(), &signature);
            assert_eq!(verdict, reference);
            assert_eq!(verdict, valid);
        }
    }
}

#[test]
fn ed25519_rejects_small_order_keys_and_the_trivial_forgery() {
    let p_minus_one = {
        let mut y = [0xffu8; 32];
        y[0] = 0xec;
        y[31] = 0x7f;
        y
    };
    let identity = {
        let mut y = [0u8; 32];
        y[0] = 1;
        y
    };
    // R = identity, S = 0 satisfies the cofactorless equation for A = identity and any message.
    let forgery = [&identity[..], &[0u8; 32]].concat();
    for small in [identity, [0u8; 32], p_minus_one] {
        assert!(Ed25519PublicKey::from_bytes(&small).is_none());
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&small).unwrap();
        assert!(dalek.is_weak());
        let signature = ed25519_dalek::Signature::from_bytes(forgery[..].try_into().unwrap());
        assert!(dalek.verify_strict(b"anything", &signature).is_err());
        // jwt-simple (ed25519-compact) refuses the forgery as well.
        if let Ok(reference) = jwt_simple::prelude::Ed25519PublicKey::from_bytes(&small) {
            let token = with_signature("eyJhbGciOiJFZERTQSJ9.e30", &forgery);
            assert!(reference
                .verify_token::<NoCustomClaims>(&token, None)
                .is_err());
        }
    }
    // A valid key with the forgery (R of small order) is rejected too.
    let key = Ed25519PublicKey::from_bytes(&hex(RFC8032_VECTORS[0].0)).unwrap();
    assert!(!key.verify(b"", &forgery));
}

#[test]
fn ed25519_random_keys_and_signatures_never_panic() {
    let mut rng = Rng(8);
    let valid = Ed25519PublicKey::from_bytes(&hex(RFC8032_VECTORS[1].0)).unwrap();
    for _ in 0..2000 {
        let key_len = rng.len_mostly(32, 70);
        let key_bytes = rng.bytes(key_len);
        let signature_len = rng.len_mostly(64, 130);
        let signature = rng.bytes(signature_len);
        let message = rng.bytes_below(100);
        if let Some(key) = Ed25519PublicKey::from_bytes(&key_bytes) {
            assert!(!key.verify(&message, &signature));
        }
        assert!(!valid.verify(&message, &signature));
    }
}
