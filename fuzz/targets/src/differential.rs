//! Differential targets: each fast verifier of `filters/authn/src/signatures/` against an
//! independent implementation (the `rsa` crate, RustCrypto's p256/p384/p521, ed25519-compact,
//! which jwt-simple uses) on the same key, message and signature. Any disagreement is a
//! finding. Signatures come raw from the input, as a valid signature with input bytes xored
//! in, as a near-valid one (known padding flaws, edge values of r and s), or (RSA, e = 3) as a
//! cube-root forgery. No input pays for a private-key operation: signatures are made once.

use crate::{Input, Seed};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts;
use rsa::{pss, BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use wasmgate_authn::fuzzing::{self as authn, EcdsaKey, RsaKey};

/// The keys the targets sign with: test data of the authn unit tests, never used elsewhere.
pub mod keys {
    use super::*;
    use serde_json::{json, Value};

    /// (name, PKCS#8 PEM) of the RSA keys: e = 65537, 3 and 17, 2048 to 3072 bits, one of
    /// 2049 bits (a modulus that does not fill its top byte).
    pub const RSA_FILES: [(&str, &str); 5] = [
        (
            "2048 e=65537",
            include_str!("../../../filters/authn/src/signatures/testdata/rsa_2048_e65537.pem"),
        ),
        (
            "2048 e=3",
            include_str!("../../../filters/authn/src/signatures/testdata/rsa_2048_e3.pem"),
        ),
        (
            "2048 e=17",
            include_str!("../../../filters/authn/src/signatures/testdata/rsa_2048_e17.pem"),
        ),
        (
            "2049 e=65537",
            include_str!("../../../filters/authn/src/signatures/testdata/rsa_2049_e65537.pem"),
        ),
        (
            "3072 e=65537",
            include_str!("../../../filters/authn/src/signatures/testdata/rsa_3072_e65537.pem"),
        ),
    ];

    pub fn rsa() -> &'static [RsaPrivateKey] {
        static KEYS: OnceLock<Vec<RsaPrivateKey>> = OnceLock::new();
        KEYS.get_or_init(|| {
            RSA_FILES
                .iter()
                .map(|(_, pem)| RsaPrivateKey::from_pkcs8_pem(pem).expect("test key"))
                .collect()
        })
    }

    pub fn rsa_n() -> Vec<u8> {
        rsa()[0].n().to_bytes_be()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn rsa_jwk(kid: &str) -> Value {
        let key = &rsa()[0];
        json!({"kty": "RSA", "kid": kid, "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())})
    }

    pub fn rsa_public_pem_der() -> (String, Vec<u8>) {
        use rsa::pkcs8::EncodePublicKey;
        let public = rsa()[0].to_public_key();
        let der = public.to_public_key_der().expect("der").as_bytes().to_vec();
        let pem = public
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem");
        (pem, der)
    }

    /// Fixed scalars: any value below the group order is a key.
    pub fn p256() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).expect("scalar")
    }

    pub fn p384() -> p384::ecdsa::SigningKey {
        p384::ecdsa::SigningKey::from_slice(&[0x22; 48]).expect("scalar")
    }

    pub fn p521() -> p521::ecdsa::SigningKey {
        let mut scalar = [0x33; 66];
        scalar[0] = 0;
        p521::ecdsa::SigningKey::from_slice(&scalar).expect("scalar")
    }

    pub fn p256_point() -> Vec<u8> {
        p256()
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    }

    pub fn p256_jwk(kid: &str) -> Value {
        let p = p256_point();
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&p[1..33]), "y": b64(&p[33..])})
    }

    pub fn p256_public_pem_der() -> (String, Vec<u8>) {
        use p256::pkcs8::EncodePublicKey;
        let signing = p256();
        let key = signing.verifying_key();
        let der = key.to_public_key_der().expect("der").as_bytes().to_vec();
        let pem = key
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .expect("pem");
        (pem, der)
    }

    pub fn ed25519() -> ed25519_compact::KeyPair {
        ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([0x44; 32]))
    }

    pub fn ed25519_public() -> Vec<u8> {
        ed25519().pk.to_vec()
    }

    pub fn ed25519_jwk(kid: &str) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(&ed25519_public())})
    }
}

/// `sig` with `mutation` applied: its first byte picks a position, the rest is xored there.
fn mutate(sig: &mut [u8], mutation: &[u8]) {
    let Some((&at, bits)) = mutation.split_first() else {
        return;
    };
    let len = sig.len().max(1);
    for (i, b) in bits.iter().enumerate() {
        if let Some(byte) = sig.get_mut((usize::from(at) + i) % len) {
            *byte ^= b;
        }
    }
}

/// (bits, PKCS#1 v1.5 scheme, digest) of a hash choice.
fn digest(choice: u8, message: &[u8]) -> (u16, Vec<u8>) {
    match choice % 3 {
        0 => (256, Sha256::digest(message).to_vec()),
        1 => (384, Sha384::digest(message).to_vec()),
        _ => (512, Sha512::digest(message).to_vec()),
    }
}

fn pkcs1_scheme(bits: u16) -> Pkcs1v15Sign {
    match bits {
        256 => Pkcs1v15Sign::new::<Sha256>(),
        384 => Pkcs1v15Sign::new::<Sha384>(),
        _ => Pkcs1v15Sign::new::<Sha512>(),
    }
}

/// The `rsa` crate's PSS verdict with the salt as long as the hash, as RFC 7518 §3.5 demands.
fn reference_pss(public: &rsa::RsaPublicKey, bits: u16, message: &[u8], sig: &[u8]) -> bool {
    let Ok(signature) = pss::Signature::try_from(sig) else {
        return false;
    };
    let public = public.clone();
    match bits {
        256 => pss::VerifyingKey::<Sha256>::new_with_salt_len(public, 32)
            .verify(message, &signature)
            .is_ok(),
        384 => pss::VerifyingKey::<Sha384>::new_with_salt_len(public, 48)
            .verify(message, &signature)
            .is_ok(),
        _ => pss::VerifyingKey::<Sha512>::new_with_salt_len(public, 64)
            .verify(message, &signature)
            .is_ok(),
    }
}

fn fast_rsa() -> &'static [(RsaKey, rsa::RsaPublicKey)] {
    static FAST: OnceLock<Vec<(RsaKey, rsa::RsaPublicKey)>> = OnceLock::new();
    FAST.get_or_init(|| {
        keys::rsa()
            .iter()
            .map(|k| {
                let public = k.to_public_key();
                let fast = RsaKey::new(&public.n().to_bytes_be(), &public.e().to_bytes_be())
                    .expect("fast key");
                (fast, public)
            })
            .collect()
    })
}

/// Layout: key, scheme (bit 0: PSS; the rest: hash), mode, message, then the signature
/// material:
/// - mode 0: the signature itself;
/// - mode 1: a mutation of a valid signature of one of [`SIGNED_MESSAGES`] (the message's first byte
///   picks it);
/// - mode 2: a mutation of a near-valid signature from [`near_valid`] (first byte: which),
///   judged on [`NEAR_VALID_MESSAGE`];
/// - mode 3: an e = 3 forgery: the material is the top of an encoded message, the signature
///   its integer cube root rounded up, whose cube keeps the material's top third and ends in
///   garbage (Bleichenbacher's 2006 attack on parsers that stop after the digest).
///
/// Every signature is made without a private-key operation per input (those cost
/// milliseconds): valid ones are remembered, near-valid ones made once per key and hash.
pub fn rsa(data: &[u8]) {
    let mut input = Input::new(data);
    let mut index = usize::from(input.byte()) % keys::RSA_FILES.len();
    let scheme = input.byte();
    let mode = input.byte() % 4;
    let mut message = input.field().to_vec();
    let material = input.rest();
    let pss = scheme & 1 == 1;
    let (bits, _) = digest(scheme >> 1, b"");
    // A near-valid signature left as made must get the verdict it was made for.
    let mut expected = None;
    let sig = match mode {
        0 => material.to_vec(),
        1 => {
            // Signing takes milliseconds: the message is one of a few, each signed once.
            let which = message
                .first()
                .map_or(0, |b| usize::from(*b) % SIGNED_MESSAGES.len());
            message = SIGNED_MESSAGES[which].to_vec();
            let mut sig = remembered((index, scheme, message.clone()), || {
                sign(index, scheme, &message)
            });
            mutate(&mut sig, material);
            sig
        }
        2 => {
            let pool = near_valid(index, scheme);
            let (&which, bits) = material.split_first().unwrap_or((&0, &[]));
            let Some(sig) = pool.get(usize::from(which) % pool.len().max(1)) else {
                return;
            };
            let mut sig = sig.clone();
            mutate(&mut sig, bits);
            if bits.is_empty() {
                expected = Some(usize::from(which) % pool.len() == 0);
            }
            message = NEAR_VALID_MESSAGE.to_vec();
            sig
        }
        _ => {
            index = E3;
            let Some(sig) = cube_root_forgery(&fast_rsa()[E3].1, material) else {
                return;
            };
            sig
        }
    };
    let (fast, public) = &fast_rsa()[index];
    let (_, hashed) = digest(scheme >> 1, &message);
    let (verdict, reference) = if pss {
        (
            fast.verify_pss(bits, &message, &sig),
            reference_pss(public, bits, &message, &sig),
        )
    } else {
        (
            fast.verify_pkcs1v15(bits, &message, &sig),
            public.verify(pkcs1_scheme(bits), &hashed, &sig).is_ok(),
        )
    };
    assert_eq!(
        verdict,
        Some(reference),
        "RSA {} {} SHA-{bits} mode {mode}: fast {verdict:?}, reference {reference}",
        keys::RSA_FILES[index].0,
        if pss { "PSS" } else { "PKCS#1 v1.5" }
    );
    if mode == 1 && material.len() < 2 {
        assert!(reference, "a valid signature refused");
    }
    if let Some(valid) = expected {
        assert_eq!(reference, valid, "near-valid signature {material:?}");
    }
}

/// The index of the e = 3 key in [`keys::RSA_FILES`].
const E3: usize = 1;

/// A valid signature: PKCS#1 v1.5, or PSS with a salt as long as the hash (RFC 7518 §3.5) and
/// randomness from the key and scheme, so that signing stays a function of the input.
fn sign(index: usize, scheme: u8, message: &[u8]) -> Vec<u8> {
    let private = &keys::rsa()[index];
    let (bits, hashed) = digest(scheme >> 1, message);
    if scheme & 1 == 1 {
        let mut rng = SplitMix(u64::from(scheme) ^ ((index as u64) << 8));
        let salt = usize::from(bits / 8);
        sign_pss(private, &mut rng, bits, salt, &hashed)
    } else {
        private.sign(pkcs1_scheme(bits), &hashed).expect("signing")
    }
}

fn sign_pss(
    private: &RsaPrivateKey,
    rng: &mut SplitMix,
    bits: u16,
    salt: usize,
    hashed: &[u8],
) -> Vec<u8> {
    let scheme = match bits {
        256 => Pss::new_with_salt::<Sha256>(salt),
        384 => Pss::new_with_salt::<Sha384>(salt),
        _ => Pss::new_with_salt::<Sha512>(salt),
    };
    private.sign_with_rng(rng, scheme, hashed).expect("signing")
}

/// The messages of mode 1: empty, a JWS signing input, and one longer than a hash block.
const SIGNED_MESSAGES: [&[u8]; 3] = [
    b"",
    b"eyJhbGciOiJSUzI1NiJ9.e30",
    b"eyJhbGciOiJQUzUxMiIsImtpZCI6ImsifQ.eyJzdWIiOiJhIiwiaXNzIjoiaHR0cHM6Ly9pc3N1ZXIudGVzdCIsImF1ZCI6ImFwaSIsImV4cCI6MTc2NzIyNTYwMH0",
];

/// What the near-valid signatures sign.
const NEAR_VALID_MESSAGE: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0";

/// How many PKCS#1 v1.5 encodings [`pkcs1_encodings`] makes; the first is the valid one.
const PKCS1_FLAWS: usize = 10;

/// DigestInfo's DER prefix for SHA-256/384/512 (RFC 8017 §9.2, note 1).
fn digest_info_prefix(bits: u16) -> Vec<u8> {
    let (len, oid_last) = match bits {
        256 => (0x31, 0x01),
        384 => (0x41, 0x02),
        _ => (0x51, 0x03),
    };
    vec![
        0x30,
        len,
        0x30,
        0x0d,
        0x06,
        0x09,
        0x60,
        0x86,
        0x48,
        0x01,
        0x65,
        0x03,
        0x04,
        0x02,
        oid_last,
        0x05,
        0x00,
        0x04,
        (bits / 8) as u8,
    ]
}

/// `00 01 FF… 00 T` in k bytes, the padding taking what T leaves.
fn pkcs1_em(k: usize, t: &[u8], padding: u8) -> Vec<u8> {
    let mut em = vec![0x00, 0x01];
    em.extend(std::iter::repeat_n(padding, k.saturating_sub(3 + t.len())));
    em.push(0x00);
    em.extend_from_slice(t);
    em
}

/// The valid PKCS#1 v1.5 encoding of `hashed` and nine known flaws of it, each one a
/// verifier has been caught accepting: block type 2, a padding byte not FF, no zero
/// separator, garbage after the digest (Bleichenbacher 2006), DigestInfo without the NULL
/// parameters, another hash's OID, a long-form DER length (BERserk), a wrong digest byte, and
/// a padding shorter than 8 bytes with the DigestInfo moved up.
fn pkcs1_encodings(k: usize, bits: u16, hashed: &[u8]) -> Vec<Vec<u8>> {
    let prefix = digest_info_prefix(bits);
    let t = [prefix.as_slice(), hashed].concat();
    let valid = pkcs1_em(k, &t, 0xff);
    let mut type2 = valid.clone();
    type2[1] = 0x02;
    let mut not_ff = valid.clone();
    not_ff[5] = 0xfe;
    let mut no_separator = valid.clone();
    no_separator[k - t.len() - 1] = 0xff;
    let garbage_after = pkcs1_em(k, &[t.as_slice(), &[0xab; 16]].concat(), 0xff);
    // SEQUENCE { SEQUENCE { OID }, OCTET STRING }: 2 bytes shorter without `05 00`.
    let mut no_null = vec![0x30, prefix[1] - 2, 0x30, 0x0b];
    no_null.extend_from_slice(&prefix[4..15]);
    no_null.extend_from_slice(&prefix[17..]);
    let no_null = pkcs1_em(k, &[no_null.as_slice(), hashed].concat(), 0xff);
    let mut other_oid = t.clone();
    other_oid[14] ^= 0x03;
    let other_oid = pkcs1_em(k, &other_oid, 0xff);
    let long_length = [&[0x30, 0x81][..], &t[1..]].concat();
    let long_length = pkcs1_em(k, &long_length, 0xff);
    let mut wrong_digest = valid.clone();
    wrong_digest[k - 1] ^= 0x01;
    let mut short_padding = vec![0x00, 0x01];
    short_padding.extend([0xff; 7]);
    short_padding.push(0x00);
    short_padding.extend_from_slice(&t);
    short_padding.resize(k, 0x00);
    vec![
        valid,
        type2,
        not_ff,
        no_separator,
        garbage_after,
        no_null,
        other_oid,
        long_length,
        wrong_digest,
        short_padding,
    ]
}

/// Signatures of near-valid encodings of [`NEAR_VALID_MESSAGE`] for a key and scheme, made
/// once: the PKCS#1 v1.5 flaws of [`pkcs1_encodings`], or PSS with a salt of 0 and of half
/// the hash (JWS wants the hash's length) and the valid one.
fn near_valid(index: usize, scheme: u8) -> &'static [Vec<u8>] {
    const SCHEMES: usize = 6;
    static POOLS: OnceLock<Vec<OnceLock<Vec<Vec<u8>>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| {
        (0..keys::RSA_FILES.len() * SCHEMES)
            .map(|_| OnceLock::new())
            .collect()
    });
    let scheme = scheme % SCHEMES as u8;
    let Some(pool) = pools.get(index * SCHEMES + usize::from(scheme)) else {
        return &[];
    };
    pool.get_or_init(|| {
        let private = &keys::rsa()[index];
        let (bits, hashed) = digest(scheme >> 1, NEAR_VALID_MESSAGE);
        if scheme & 1 == 1 {
            let mut rng = SplitMix(0x5eed);
            [usize::from(bits / 8), 0, usize::from(bits / 16)]
                .into_iter()
                .map(|salt| sign_pss(private, &mut rng, bits, salt, &hashed))
                .collect()
        } else {
            pkcs1_encodings(private.size(), bits, &hashed)
                .iter()
                .filter_map(|em| private_image(private, em))
                .collect()
        }
    })
}

/// The signature whose public-key image is `em` (k bytes), or `None` when `em` ≥ n.
fn private_image(private: &RsaPrivateKey, em: &[u8]) -> Option<Vec<u8>> {
    let s =
        rsa::hazmat::rsa_decrypt::<SplitMix>(None, private, &BigUint::from_bytes_be(em)).ok()?;
    Some(left_pad(&s.to_bytes_be(), private.size()))
}

fn left_pad(bytes: &[u8], k: usize) -> Vec<u8> {
    let mut out = vec![0u8; k.saturating_sub(bytes.len())];
    out.extend_from_slice(bytes);
    out
}

/// The smallest s with s³ ≥ the material read as the top of a k-byte encoded message, if
/// s³ < n: then s verifies as an encoding whose top third is the material's.
fn cube_root_forgery(public: &rsa::RsaPublicKey, material: &[u8]) -> Option<Vec<u8>> {
    let k = public.size();
    let mut em = vec![0u8; k];
    for (dst, src) in em.iter_mut().zip(material) {
        *dst = *src;
    }
    let target = BigUint::from_bytes_be(&em);
    let mut s = target.cbrt();
    if &s * &s * &s < target {
        s += 1u32;
    }
    (&s * &s * &s < *public.n()).then(|| left_pad(&s.to_bytes_be(), k))
}

pub fn rsa_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for key in 0..keys::RSA_FILES.len() as u8 {
        for scheme in 0..6u8 {
            seeds.push(
                Seed::new()
                    .byte(key)
                    .byte(scheme)
                    .byte(1)
                    .field("eyJhbGciOiJSUzI1NiJ9.e30")
                    .build(),
            );
        }
    }
    for flaw in 0..PKCS1_FLAWS as u8 {
        seeds.push(Seed::new().byte(0).byte(0).byte(2).field("").rest([flaw]));
    }
    for salt in 0..3u8 {
        seeds.push(Seed::new().byte(4).byte(1).byte(2).field("").rest([salt]));
    }
    // Bleichenbacher's forgery of SHA-256 under e = 3: 00 01 FF 00 DigestInfo H, garbage after.
    let mut forged = vec![0x00, 0x01, 0xff, 0x00];
    forged.extend(digest_info_prefix(256));
    forged.extend_from_slice(&Sha256::digest(b"m"));
    seeds.push(Seed::new().byte(1).byte(0).byte(3).field("m").rest(&forged));
    seeds.push(
        Seed::new()
            .byte(1)
            .byte(0)
            .byte(0)
            .field("m")
            .rest([0xff; 256]),
    );
    seeds
}

/// Valid signatures made so far, by (key, scheme, message): signing is deterministic, so a
/// remembered one is the one signing would give again.
type Signed = HashMap<(usize, u8, Vec<u8>), Vec<u8>>;

thread_local! {
    static SIGNED: RefCell<Signed> = RefCell::new(HashMap::new());
}

fn remembered(key: (usize, u8, Vec<u8>), sign: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
    if let Some(sig) = SIGNED.with(|m| m.borrow().get(&key).cloned()) {
        return sig;
    }
    let sig = sign();
    SIGNED.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= 4096 {
            m.clear();
        }
        m.insert(key, sig.clone());
    });
    sig
}

/// Deterministic randomness for PSS salts: the target must be a function of its input.
struct SplitMix(u64);

impl rsa::rand_core::RngCore for SplitMix {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for SplitMix {}

/// One curve: its fast key, RustCrypto's signer and verifier, and the group order.
struct EcCurve {
    bits: u16,
    size: usize,
    fast: EcdsaKey,
    sign: fn(&[u8]) -> Vec<u8>,
    verify: fn(&[u8], &[u8]) -> bool,
    order: Vec<u8>,
}

macro_rules! curve {
    ($bits:expr, $size:expr, $krate:ident, $key:path, $order:expr) => {{
        use $krate::ecdsa::signature::{Signer, Verifier};
        use $krate::ecdsa::{Signature, SigningKey, VerifyingKey};
        thread_local! {
            // Deriving the public key is a scalar multiplication: once per thread.
            static KEYS: (SigningKey, VerifyingKey) = {
                let signing = $key();
                let verifying = *signing.verifying_key();
                (signing, verifying)
            };
        }
        let point = $key()
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec();
        EcCurve {
            bits: $bits,
            size: $size,
            fast: EcdsaKey::new($bits, &point).expect("fast key"),
            sign: |message| {
                remembered(($bits, 0, message.to_vec()), || {
                    let signature: Signature = KEYS.with(|(k, _)| k.sign(message));
                    signature.to_bytes().to_vec()
                })
            },
            verify: |message, sig| {
                let Ok(signature) = Signature::from_slice(sig) else {
                    return false;
                };
                KEYS.with(|(_, k)| k.verify(message, &signature).is_ok())
            },
            order: hex($order),
        }
    }};
}

/// Big-endian bytes of hex digits.
fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

// The group orders (SEC 2 / FIPS 186-4), as many bytes as a scalar of the curve.
const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const P384_ORDER: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
const P521_ORDER: &str = "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409";

thread_local! {
    static CURVES: Vec<EcCurve> = vec![
        curve!(256, 32, p256, keys::p256, P256_ORDER),
        curve!(384, 48, p384, keys::p384, P384_ORDER),
        curve!(521, 66, p521, keys::p521, P521_ORDER),
    ];
}

/// Layout: curve, mode, message, then the signature (mode 0), a mutation of a valid one
/// (mode 1), or (mode 2) a valid one with r or s replaced by an edge value the input picks;
/// modes 1 and 2 sign one of [`SIGNED_MESSAGES`], which the message's first byte picks. Edges:
/// 0, 1, n − 1, n, n + 1, all ones, or n − s (the other valid signature, accepted by both,
/// since JWS does not ask for low s).
pub fn ecdsa(data: &[u8]) {
    let mut input = Input::new(data);
    let which = usize::from(input.byte()) % 3;
    let mode = input.byte() % 3;
    let mut message = input.field().to_vec();
    let material = input.rest();
    if mode != 0 {
        // Signing costs as much as verifying: modes 1 and 2 sign one of a few messages, once.
        let which = message
            .first()
            .map_or(0, |b| usize::from(*b) % SIGNED_MESSAGES.len());
        message = SIGNED_MESSAGES[which].to_vec();
    }
    CURVES.with(|curves| {
        let curve = &curves[which];
        let sig = match mode {
            0 => material.to_vec(),
            1 => {
                let mut sig = (curve.sign)(&message);
                mutate(&mut sig, material);
                sig
            }
            _ => {
                let mut sig = (curve.sign)(&message);
                edge(curve, &mut sig, material);
                sig
            }
        };
        let verdict = curve.fast.verify(&message, &sig);
        let reference = (curve.verify)(&message, &sig);
        assert_eq!(
            verdict, reference,
            "ES{} mode {mode}: fast {verdict}, reference {reference}, sig {sig:02x?}",
            curve.bits
        );
        if mode == 1 && material.len() < 2 {
            assert!(reference, "a valid signature refused");
        }
    });
}

/// Big-endian a − b (a ≥ b), same length.
fn be_sub(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut borrow = 0i16;
    for (o, y) in out.iter_mut().rev().zip(b.iter().rev()) {
        let d = i16::from(*o) - i16::from(*y) - borrow;
        borrow = i16::from(d < 0);
        *o = d.rem_euclid(256) as u8;
    }
    out
}

/// Big-endian a + small.
fn be_add(a: &[u8], small: u8) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut carry = u16::from(small);
    for o in out.iter_mut().rev() {
        let s = u16::from(*o) + carry;
        *o = s as u8;
        carry = s >> 8;
    }
    out
}

fn edge(curve: &EcCurve, sig: &mut [u8], material: &[u8]) {
    let choice = material.first().copied().unwrap_or(0);
    let n = &curve.order;
    let size = curve.size;
    let (r, s) = sig.split_at_mut(size);
    let target: &mut [u8] = if choice & 0x80 == 0 { s } else { r };
    let value = match choice % 7 {
        0 => vec![0; size],
        1 => be_add(&vec![0; size], 1),
        2 => be_sub(n, &be_add(&vec![0; size], 1)),
        3 => n.clone(),
        4 => be_add(n, 1),
        5 => vec![0xff; size],
        _ => be_sub(n, target),
    };
    target.copy_from_slice(&value);
}

pub fn ecdsa_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for curve in 0..3u8 {
        seeds.push(
            Seed::new()
                .byte(curve)
                .byte(1)
                .field("eyJhbGciOiJFUzI1NiJ9.e30")
                .build(),
        );
        for choice in [0u8, 3, 6, 0x86] {
            seeds.push(Seed::new().byte(curve).byte(2).field("m").rest([choice]));
        }
    }
    seeds
}

/// Layout: mode, message, then the signature (mode 0), a mutation of a valid one (mode 1),
/// a valid one with the order L added to S (mode 2, not canonical: both refuse), or (mode 3)
/// a 32-byte public key followed by the signature.
pub fn ed25519(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte() % 4;
    let message = input.field().to_vec();
    let material = input.rest();
    // Deriving the public key is a scalar multiplication: once.
    static PAIR: OnceLock<ed25519_compact::KeyPair> = OnceLock::new();
    let pair = PAIR.get_or_init(keys::ed25519);
    let valid = || {
        remembered((25519, 0, message.clone()), || {
            pair.sk.sign(&message, None).to_vec()
        })
    };
    let (public, sig) = match mode {
        0 => (pair.pk.to_vec(), material.to_vec()),
        1 => {
            let mut sig = valid();
            mutate(&mut sig, material);
            (pair.pk.to_vec(), sig)
        }
        2 => {
            let mut sig = valid();
            add_order(&mut sig);
            (pair.pk.to_vec(), sig)
        }
        _ => {
            let (public, sig) = material.split_at(material.len().min(32));
            (public.to_vec(), sig.to_vec())
        }
    };
    // A key the fast verifier refuses (small order, not a point) verifies nothing.
    let verdict = authn::ed25519_verify(&public, &message, &sig).unwrap_or(false);
    let reference = ed25519_compact::PublicKey::from_slice(&public)
        .and_then(|pk| {
            let sig = ed25519_compact::Signature::from_slice(&sig)?;
            pk.verify(&message, &sig)
        })
        .is_ok();
    assert_eq!(
        verdict, reference,
        "EdDSA mode {mode}: fast {verdict}, reference {reference}, key {public:02x?}, sig {sig:02x?}"
    );
    if mode == 1 && material.len() < 2 {
        assert!(reference, "a valid signature refused");
    }
}

/// S + L (little-endian): the same scalar, not canonical.
fn add_order(sig: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (byte, l) in sig.iter_mut().skip(32).zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
}

pub fn ed25519_seeds() -> Vec<Vec<u8>> {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let forgery = [&identity[..], &identity[..], &[0u8; 32][..]].concat();
    vec![
        Seed::new()
            .byte(1)
            .field("eyJhbGciOiJFZERTQSJ9.e30")
            .build(),
        Seed::new().byte(2).field("m").build(),
        Seed::new().byte(3).field("anything").rest(forgery),
        Seed::new().byte(0).field("m").rest([0u8; 64]),
    ]
}
