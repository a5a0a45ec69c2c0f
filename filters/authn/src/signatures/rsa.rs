//! RSA signature verification over the wasm32-shaped Montgomery code: RSASSA-PKCS1-v1_5
//! (RS256/RS384/RS512) here, RSASSA-PSS (PS256/PS384/PS512) with its encoding check in `pss.rs`.
//!
//! A PKCS#1 v1.5 block is never parsed: the expected EMSA-PKCS1-v1_5 encoding of the message is
//! rebuilt and compared whole (RFC 8017 §8.2.2), which leaves no padding or ASN.1 parser to fool.

use super::montgomery::{Modulus, MAX_MODULUS_BYTES};
use super::pss;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Smallest modulus accepted; callers wanting RFC 7518's 2048-bit floor check `bits()`.
pub const MIN_MODULUS_BITS: usize = 1024;

/// Largest public exponent accepted (the `rsa` crate's limit; JWKs use 65537).
const MAX_PUBLIC_EXPONENT: u64 = (1 << 33) - 1;

/// Hash of an RSA signature: RS256/PS256, RS384/PS384 or RS512/PS512.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaHash {
    Sha256,
    Sha384,
    Sha512,
}

impl RsaHash {
    /// DER of the DigestInfo up to the digest bytes (RFC 8017 §9.2, note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Self::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Self::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Self::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// Writes the digest of `message` at the start of `out`; returns its length.
    fn digest_into(self, message: &[u8], out: &mut [u8; 64]) -> usize {
        fn write(digest: &[u8], out: &mut [u8; 64]) -> usize {
            for (slot, &byte) in out.iter_mut().zip(digest) {
                *slot = byte;
            }
            digest.len()
        }
        match self {
            Self::Sha256 => write(&Sha256::digest(message), out),
            Self::Sha384 => write(&Sha384::digest(message), out),
            Self::Sha512 => write(&Sha512::digest(message), out),
        }
    }
}

/// An RSA public key prepared for repeated verification (all per-key work done once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaPublicKey {
    modulus: Modulus,
    exponent: u64,
}

impl RsaPublicKey {
    /// Big-endian `n` and `e` as in a JWK (leading zeros allowed). None unless n is odd with
    /// 1024..=4096 bits and e is odd with 3 ≤ e ≤ 2^33 − 1.
    pub fn from_components(n: &[u8], e: &[u8]) -> Option<Self> {
        let exponent = exponent_from_be_bytes(e)?;
        if exponent < 3 || exponent & 1 == 0 || exponent > MAX_PUBLIC_EXPONENT {
            return None;
        }
        let modulus = Modulus::from_be_bytes(n)?;
        if modulus.bits() < MIN_MODULUS_BITS {
            return None;
        }
        Some(Self { modulus, exponent })
    }

    /// Significant bits of the modulus.
    pub fn bits(&self) -> usize {
        self.modulus.bits()
    }

    /// True iff `signature` is a valid RSASSA-PKCS1-v1_5 signature of `signing_input` with `hash`.
    /// The signature must be exactly as long as the modulus and, as a number, below it.
    pub fn verify_pkcs1v15(&self, hash: RsaHash, signing_input: &[u8], signature: &[u8]) -> bool {
        let em_len = self.modulus.byte_len();
        let mut decrypted_buf = [0u8; MAX_MODULUS_BYTES];
        let mut expected_buf = [0u8; MAX_MODULUS_BYTES];
        let (Some(decrypted), Some(expected)) = (
            decrypted_buf.get_mut(..em_len),
            expected_buf.get_mut(..em_len),
        ) else {
            return false;
        };
        if signature.len() != em_len
            || !encode_pkcs1v15(hash, signing_input, expected)
            || !self.modulus.pow_odd(signature, self.exponent, decrypted)
        {
            return false;
        }
        decrypted == expected
    }

    /// True iff `signature` is a valid RSASSA-PSS signature (RFC 8017 §8.1.2) of `signing_input`
    /// with `hash`, MGF1 over the same hash and a salt as long as the hash (RFC 7518 §3.5).
    /// The signature must be exactly as long as the modulus and, as a number, below it.
    pub fn verify_pss(&self, hash: RsaHash, signing_input: &[u8], signature: &[u8]) -> bool {
        let k = self.modulus.byte_len();
        let mut decrypted_buf = [0u8; MAX_MODULUS_BYTES];
        let Some(decrypted) = decrypted_buf.get_mut(..k) else {
            return false;
        };
        if signature.len() != k || !self.modulus.pow_odd(signature, self.exponent, decrypted) {
            return false;
        }
        // emBits = modBits − 1, so for modBits = 8j + 1 EM is one byte shorter than the RSA
        // output, whose top byte must then be zero (I2OSP to emLen bytes, §8.1.2 step 2c).
        let em_bits = self.bits() - 1;
        let Some((top, em)) = decrypted.split_at_mut_checked(k - em_bits.div_ceil(8)) else {
            return false;
        };
        top.iter().all(|&b| b == 0) && pss::verify_encoding(hash, signing_input, em, em_bits)
    }
}

/// EM = 0x00 ‖ 0x01 ‖ 0xff… ‖ 0x00 ‖ DigestInfo ‖ H, filling `em`; false if `em` is too short.
fn encode_pkcs1v15(hash: RsaHash, message: &[u8], em: &mut [u8]) -> bool {
    let mut digest = [0u8; 64];
    let digest_len = hash.digest_into(message, &mut digest);
    let prefix = hash.digest_info_prefix();
    let t_len = prefix.len() + digest_len;
    // RFC 8017 §9.2 step 3: at least eight 0xff bytes of padding.
    let Some(padding_len) = em.len().checked_sub(t_len + 3).filter(|&p| p >= 8) else {
        return false;
    };
    let digest = digest.iter().take(digest_len);
    let encoding = [0x00u8, 0x01]
        .iter()
        .chain(std::iter::repeat_n(&0xffu8, padding_len))
        .chain(std::iter::once(&0x00u8))
        .chain(prefix)
        .chain(digest);
    for (slot, &byte) in em.iter_mut().zip(encoding) {
        *slot = byte;
    }
    true
}

fn exponent_from_be_bytes(e: &[u8]) -> Option<u64> {
    let significant = e.get(e.iter().take_while(|&&b| b == 0).count()..)?;
    if significant.len() > 8 {
        return None;
    }
    Some(
        significant
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    )
}
