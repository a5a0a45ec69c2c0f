//! PEM public keys: a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) holding an RSA (RFC 8017
//! A.1.1), EC P-256/P-384/P-521 (RFC 5480) or Ed25519 (RFC 8410) key, or a PKCS#1
//! `RSA PUBLIC KEY`. A small strict DER reader, so the module carries no ASN.1 library: every
//! length definite and minimal, every integer minimal, no byte left over anywhere.

use crate::algorithm::KeyFamily;
use base64::Engine;

/// A public key as the SubjectPublicKeyInfo gives it, borrowed from the DER.
#[derive(Debug, PartialEq, Eq)]
pub enum SpkiKey<'a> {
    /// Big-endian modulus and exponent, without sign bytes.
    Rsa {
        n: &'a [u8],
        e: &'a [u8],
    },
    /// `family` is P256, P384 or P521; `point` is SEC1 uncompressed (`04 ‖ x ‖ y`).
    Ec {
        family: KeyFamily,
        point: &'a [u8],
    },
    Ed25519(&'a [u8]),
}

/// What a PEM block's label says its DER holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemKind {
    /// `PUBLIC KEY`: a SubjectPublicKeyInfo.
    Spki,
    /// `RSA PUBLIC KEY`: a bare PKCS#1 RSAPublicKey.
    Pkcs1,
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;

// Object identifier contents (the bytes after tag and length).
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]; // 1.2.840.113549.1.1.1
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]; // 1.2.840.10045.2.1
const SECP256R1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]; // 1.2.840.10045.3.1.7
const SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22]; // 1.3.132.0.34
const SECP521R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23]; // 1.3.132.0.35
const ED25519: &[u8] = &[0x2b, 0x65, 0x70]; // 1.3.101.112

/// Reads DER elements off the front of a byte string.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        let (&first, rest) = self.rest.split_first().ok_or("truncated DER")?;
        self.rest = rest;
        Ok(first)
    }

    /// The contents of the next element, which must have tag `tag`.
    fn element(&mut self, tag: u8) -> Result<&'a [u8], &'static str> {
        if self.byte()? != tag {
            return Err("unexpected DER tag");
        }
        let first = self.byte()?;
        let len = match first {
            0..=0x7f => usize::from(first),
            0x80 => return Err("indefinite DER length"),
            // More than 3 length bytes would mean a key of 16 MB.
            0x81..=0x83 => {
                let mut len = 0usize;
                for i in 0..(first & 0x7f) {
                    let b = self.byte()?;
                    if i == 0 && b == 0 {
                        return Err("DER length with a leading zero");
                    }
                    len = (len << 8) | usize::from(b);
                }
                if len < 0x80 {
                    return Err("DER length not in its shortest form");
                }
                len
            }
            _ => return Err("DER length too long"),
        };
        if len > self.rest.len() {
            return Err("truncated DER");
        }
        let (contents, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(contents)
    }

    /// A positive INTEGER, minimally encoded, without its sign byte.
    fn positive_integer(&mut self) -> Result<&'a [u8], &'static str> {
        match self.element(INTEGER)? {
            [] => Err("empty DER integer"),
            [0, next, ..] if *next < 0x80 => Err("DER integer not in its shortest form"),
            [0] => Err("integer must be positive"),
            [0, rest @ ..] => Ok(rest),
            [first, ..] if *first >= 0x80 => Err("integer must be positive"),
            all => Ok(all),
        }
    }

    /// A BIT STRING of whole bytes.
    fn octet_aligned_bits(&mut self) -> Result<&'a [u8], &'static str> {
        match self.element(BIT_STRING)? {
            [0, bits @ ..] => Ok(bits),
            _ => Err("public key bit string with unused bits"),
        }
    }

    fn end(&self) -> Result<(), &'static str> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes after the DER")
        }
    }
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`, the whole input.
fn rsa_public_key(der: &[u8]) -> Result<SpkiKey<'_>, &'static str> {
    let mut outer = Der::new(der);
    let mut fields = Der::new(outer.element(SEQUENCE)?);
    outer.end()?;
    let n = fields.positive_integer()?;
    let e = fields.positive_integer()?;
    fields.end()?;
    Ok(SpkiKey::Rsa { n, e })
}

/// A DER SubjectPublicKeyInfo of one of the supported key types.
pub fn parse_spki(der: &[u8]) -> Result<SpkiKey<'_>, &'static str> {
    let mut outer = Der::new(der);
    let mut info = Der::new(outer.element(SEQUENCE)?);
    outer.end()?;
    let mut algorithm = Der::new(info.element(SEQUENCE)?);
    let key = info.octet_aligned_bits()?;
    info.end()?;
    let oid = algorithm.element(OID)?;
    let key = if oid == RSA_ENCRYPTION {
        // RFC 3279 §2.3.1: the parameters MUST be NULL.
        if !algorithm.element(NULL)?.is_empty() {
            return Err("NULL with contents");
        }
        rsa_public_key(key)?
    } else if oid == EC_PUBLIC_KEY {
        // RFC 5480 §2.1.1: namedCurve only (no implicit or explicit curves).
        let (family, size) = match algorithm.element(OID)? {
            SECP256R1 => (KeyFamily::P256, 32),
            SECP384R1 => (KeyFamily::P384, 48),
            SECP521R1 => (KeyFamily::P521, 66),
            _ => return Err("EC key on an unsupported curve"),
        };
        if key.len() != 1 + 2 * size || key.first() != Some(&4) {
            return Err("EC point not uncompressed or of the wrong size");
        }
        SpkiKey::Ec { family, point: key }
    } else if oid == ED25519 {
        // RFC 8410 §3: parameters absent.
        if key.len() != 32 {
            return Err("Ed25519 key not 32 bytes");
        }
        SpkiKey::Ed25519(key)
    } else {
        return Err("unsupported key algorithm");
    };
    algorithm.end()?;
    Ok(key)
}

/// The DER inside a PEM block (RFC 7468): one `PUBLIC KEY` or `RSA PUBLIC KEY` block, strict
/// base64 (padding as required, whitespace only between lines), nothing around it.
pub fn pem_der(pem: &str) -> Result<(PemKind, Vec<u8>), &'static str> {
    let pem = pem.trim();
    let (kind, body) = [
        (PemKind::Spki, "PUBLIC KEY"),
        (PemKind::Pkcs1, "RSA PUBLIC KEY"),
    ]
    .into_iter()
    .find_map(|(kind, label)| {
        let body = pem
            .strip_prefix(&format!("-----BEGIN {label}-----"))?
            .strip_suffix(&format!("-----END {label}-----"))?;
        Some((kind, body))
    })
    .ok_or("no `PUBLIC KEY` or `RSA PUBLIC KEY` block")?;
    let text: String = body.split_ascii_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| "PEM body is not base64")?;
    Ok((kind, der))
}

/// The key of a PEM block, borrowed from `der` as [`pem_der`] returned it.
pub fn parse_pem_der(kind: PemKind, der: &[u8]) -> Result<SpkiKey<'_>, &'static str> {
    match kind {
        PemKind::Spki => parse_spki(der),
        PemKind::Pkcs1 => rsa_public_key(der),
    }
}

#[cfg(test)]
#[path = "spki_tests.rs"]
mod tests;
