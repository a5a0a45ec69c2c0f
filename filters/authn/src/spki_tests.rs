//! The PEM reader against jwt-simple's (and, for P-521, the p521 crate's) on generated keys of
//! every type, and malformed DER of every kind refused.

use super::*;
use crate::testkit::*;
use jwt_simple::prelude::*;

fn der(pem: &str) -> Vec<u8> {
    let (kind, der) = pem_der(pem).unwrap();
    assert_eq!(kind, PemKind::Spki);
    der
}

fn point_of(pem: &str) -> (KeyFamily, Vec<u8>) {
    let der = der(pem);
    match parse_spki(&der).unwrap() {
        SpkiKey::Ec { family, point } => (family, point.to_vec()),
        other => panic!("not an EC key: {other:?}"),
    }
}

#[test]
fn keys_of_every_type_read_as_jwt_simple_reads_them() {
    for rsa in [rsa_a(), rsa_b()] {
        let pem = rsa.public_key().to_pem().unwrap();
        let c = RS256PublicKey::from_pem(&pem).unwrap().to_components();
        assert_eq!(
            parse_spki(&der(&pem)).unwrap(),
            SpkiKey::Rsa { n: &c.n, e: &c.e }
        );
    }
    for _ in 0..8 {
        let pem = ES256KeyPair::generate().public_key().to_pem().unwrap();
        let reference = ES256PublicKey::from_pem(&pem).unwrap();
        let expected = reference.public_key().to_bytes_uncompressed();
        assert_eq!(point_of(&pem), (KeyFamily::P256, expected));

        let pem = ES384KeyPair::generate().public_key().to_pem().unwrap();
        let reference = ES384PublicKey::from_pem(&pem).unwrap();
        let expected = reference.public_key().to_bytes_uncompressed();
        assert_eq!(point_of(&pem), (KeyFamily::P384, expected));

        let pem = Ed25519KeyPair::generate().public_key().to_pem();
        let expected = Ed25519PublicKey::from_pem(&pem).unwrap().to_bytes();
        assert_eq!(parse_spki(&der(&pem)).unwrap(), SpkiKey::Ed25519(&expected));
    }
    for seed in 0u8..8 {
        let key = Es512Key::new(&[seed]);
        assert_eq!(point_of(&key.pem()), (KeyFamily::P521, key.point()));
    }
}

#[test]
fn pkcs1_rsa_public_keys_are_read_too() {
    // RSAPublicKey is the SPKI's inner bit string; jwt-simple accepts both labels.
    let pem = rsa_a().public_key().to_pem().unwrap();
    let spki = der(&pem);
    let SpkiKey::Rsa { n, e } = parse_spki(&spki).unwrap() else {
        panic!("not RSA");
    };
    let inner = {
        let mut outer = Der::new(&spki);
        let mut info = Der::new(outer.element(SEQUENCE).unwrap());
        info.element(SEQUENCE).unwrap();
        info.octet_aligned_bits().unwrap()
    };
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(inner);
    // 64 characters a line (RFC 7468 §2), which jwt-simple's reader insists on.
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    let pkcs1 = format!(
        "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
        lines.join("\n")
    );
    let reference = RS256PublicKey::from_pem(&pkcs1).unwrap().to_components();
    let (kind, der) = pem_der(&pkcs1).unwrap();
    assert_eq!(kind, PemKind::Pkcs1);
    let parsed = parse_pem_der(kind, &der).unwrap();
    assert_eq!(parsed, SpkiKey::Rsa { n, e });
    assert_eq!(
        parsed,
        SpkiKey::Rsa {
            n: &reference.n,
            e: &reference.e
        }
    );
}

/// A DER element with a short-form length.
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if contents.len() < 0x80 {
        out.push(contents.len() as u8);
    } else if contents.len() < 0x100 {
        out.extend([0x81, contents.len() as u8]);
    } else {
        out.extend([0x82, (contents.len() >> 8) as u8, contents.len() as u8]);
    }
    out.extend_from_slice(contents);
    out
}

fn spki(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = vec![0];
    bits.extend_from_slice(key);
    let mut body = tlv(SEQUENCE, algorithm);
    body.extend(tlv(BIT_STRING, &bits));
    tlv(SEQUENCE, &body)
}

fn ed25519_spki(key: &[u8]) -> Vec<u8> {
    spki(&tlv(OID, ED25519), key)
}

#[test]
fn malformed_der_is_refused() {
    let good = ed25519_spki(&[7; 32]);
    assert_eq!(parse_spki(&good), Ok(SpkiKey::Ed25519(&[7; 32])));
    let mut p256 = tlv(OID, EC_PUBLIC_KEY);
    p256.extend(tlv(OID, SECP256R1));
    let mut point = vec![4];
    point.extend([9; 64]);
    let mut rsa_alg = tlv(OID, RSA_ENCRYPTION);
    rsa_alg.extend(tlv(NULL, &[]));
    let rsa_key = |n: &[u8], e: &[u8]| {
        let mut ints = tlv(INTEGER, n);
        ints.extend(tlv(INTEGER, e));
        spki(&rsa_alg, &tlv(SEQUENCE, &ints))
    };
    let mut n = vec![0];
    n.extend([0xc5; 256]);
    assert!(parse_spki(&rsa_key(&n, &[1, 0, 1])).is_ok());

    let mut trailing = good.clone();
    trailing.push(0);
    let mut long_form_zero = vec![SEQUENCE, 0x82, 0x00, good.len() as u8 - 2];
    long_form_zero.extend_from_slice(&good[2..]);
    let mut long_form_short = vec![SEQUENCE, 0x81, good.len() as u8 - 2];
    long_form_short.extend_from_slice(&good[2..]);
    let mut indefinite = vec![SEQUENCE, 0x80];
    indefinite.extend_from_slice(&good[2..]);
    indefinite.extend([0, 0]);
    let mut five_length_bytes = vec![SEQUENCE, 0x85, 0, 0, 0, 0, good.len() as u8 - 2];
    five_length_bytes.extend_from_slice(&good[2..]);
    let mut unused_bits = good.clone();
    let at = unused_bits.len() - 33;
    unused_bits[at] = 1;
    let mut with_params = tlv(OID, ED25519);
    with_params.extend(tlv(NULL, &[]));
    let mut p384_size = tlv(OID, EC_PUBLIC_KEY);
    p384_size.extend(tlv(OID, SECP384R1));
    let mut compressed = vec![2];
    compressed.extend([9; 32]);
    let mut secp256k1 = tlv(OID, EC_PUBLIC_KEY);
    secp256k1.extend(tlv(OID, &[0x2b, 0x81, 0x04, 0x00, 0x0a]));
    let mut rsa_no_null = tlv(OID, RSA_ENCRYPTION);
    rsa_no_null.extend(tlv(INTEGER, &[0]));
    let mut padded_n = vec![0, 0];
    padded_n.extend([0xc5; 256]);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("trailing garbage", trailing),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("truncated header", good[..1].to_vec()),
        ("long-form length with a leading zero", long_form_zero),
        ("long form for a short length", long_form_short),
        ("indefinite length", indefinite),
        ("five length bytes", five_length_bytes),
        ("bit string with unused bits", unused_bits),
        ("Ed25519 with parameters", spki(&with_params, &[7; 32])),
        ("Ed25519 of 31 bytes", ed25519_spki(&[7; 31])),
        ("wrong OID", spki(&tlv(OID, &[0x2b, 0x65, 0x71]), &[7; 57])),
        ("P-256 point as P-384", spki(&p384_size, &point)),
        ("compressed point", spki(&p256, &compressed)),
        ("EC on secp256k1", spki(&secp256k1, &point)),
        ("EC without a curve", spki(&tlv(OID, EC_PUBLIC_KEY), &point)),
        ("RSA without NULL", spki(&tlv(OID, RSA_ENCRYPTION), &[])),
        ("RSA with another parameter", spki(&rsa_no_null, &[])),
        (
            "RSA modulus with two leading zeros",
            rsa_key(&padded_n, &[1, 0, 1]),
        ),
        ("RSA negative modulus", rsa_key(&[0xc5; 256], &[1, 0, 1])),
        ("RSA empty exponent", rsa_key(&n, &[])),
        ("RSA zero exponent", rsa_key(&n, &[0])),
        ("not a sequence", tlv(OID, ED25519)),
    ];
    for (name, der) in cases {
        assert!(parse_spki(&der).is_err(), "{name}: {:?}", parse_spki(&der));
    }
    // Every prefix of a valid key is refused, and no input panics.
    let rsa = der(&rsa_a().public_key().to_pem().unwrap());
    for len in 0..rsa.len() {
        assert!(parse_spki(&rsa[..len]).is_err(), "prefix of {len}");
    }
    let mut rng = 0x1234_5678u32;
    for i in 0..rsa.len() * 8 {
        let mut flipped = rsa.clone();
        flipped[i / 8] ^= 1 << (i % 8);
        let _ = parse_spki(&flipped);
        rng = rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let _ = parse_spki(&rsa[..(rng as usize) % rsa.len()]);
    }
}

#[test]
fn pem_framing_is_strict() {
    let pem = Ed25519KeyPair::generate().public_key().to_pem();
    assert!(pem_der(&pem).is_ok());
    assert!(
        pem_der(&format!("  \n{pem}\n\n")).is_ok(),
        "surrounding whitespace"
    );
    let cases = [
        (
            "private key label",
            pem.replace("PUBLIC KEY", "PRIVATE KEY"),
        ),
        (
            "certificate label",
            pem.replace("PUBLIC KEY", "CERTIFICATE"),
        ),
        ("text before", format!("key:\n{pem}")),
        ("no end", pem.replace("-----END PUBLIC KEY-----", "")),
        (
            "mismatched end",
            pem.replace("END PUBLIC KEY", "END RSA PUBLIC KEY"),
        ),
        ("not base64", pem.replace("MC", "M*")),
        ("missing padding", pem.replace('=', "")),
    ];
    for (name, text) in cases {
        assert!(pem_der(&text).is_err(), "{name}");
    }
}
