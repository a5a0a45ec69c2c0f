//! EMSA-PSS verification (RFC 8017 §9.1.2) for PS256/PS384/PS512.
//!
//! RFC 7518 §3.5 fixes what a JWS may use: MGF1 with the signature's own hash and a salt exactly
//! as long as that hash. Both are fixed here rather than read from the encoding, so a signature
//! made with another salt length fails the separator check of step 10.

use super::rsa::RsaHash;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// True iff `em` is an EMSA-PSS encoding of `message` with `hash`, for an encoding of `em_bits`
/// bits (`em` must be exactly ⌈em_bits/8⌉ bytes). `em` is unmasked in place.
pub(super) fn verify_encoding(
    hash: RsaHash,
    message: &[u8],
    em: &mut [u8],
    em_bits: usize,
) -> bool {
    match hash {
        RsaHash::Sha256 => verify_with::<Sha256>(message, em, em_bits),
        RsaHash::Sha384 => verify_with::<Sha384>(message, em, em_bits),
        RsaHash::Sha512 => verify_with::<Sha512>(message, em, em_bits),
    }
}

/// EM = maskedDB ‖ H ‖ 0xbc, with DB = 0x00… ‖ 0x01 ‖ salt and H = Hash(0x00×8 ‖ mHash ‖ salt).
fn verify_with<D: Digest + Clone>(message: &[u8], em: &mut [u8], em_bits: usize) -> bool {
    let h_len = <D as Digest>::output_size();
    // The 8·emLen − emBits top bits of EM are outside the encoding (steps 6 and 9).
    let Some(unused_bits) = (em.len() * 8).checked_sub(em_bits).filter(|&b| b < 8) else {
        return false;
    };
    let top_mask = 0xffu8 >> unused_bits;
    let Some((&mut trailer, rest)) = em.split_last_mut() else {
        return false;
    };
    // Step 3 with sLen = hLen: DB holds at least the 0x01 separator and the salt.
    let db_len = rest.len().saturating_sub(h_len);
    if trailer != 0xbc || db_len <= h_len {
        return false;
    }
    let Some((db, h)) = rest.split_at_mut_checked(db_len) else {
        return false;
    };
    if db.first().is_none_or(|&top| top & !top_mask != 0) {
        return false;
    }
    mgf1_xor::<D>(h, db);
    if let Some(top) = db.first_mut() {
        *top &= top_mask;
    }
    // Step 10: zeros, then 0x01 just before the salt.
    let Some((padding, salt)) = db.split_at_checked(db_len - h_len) else {
        return false;
    };
    let Some((&separator, zeros)) = padding.split_last() else {
        return false;
    };
    if separator != 0x01 || zeros.iter().any(|&b| b != 0) {
        return false;
    }
    let h_prime = D::new()
        .chain_update([0u8; 8])
        .chain_update(D::digest(message))
        .chain_update(salt)
        .finalize();
    h_prime.as_slice() == &*h
}

/// `db ^= MGF1(seed)`: mask block i is Hash(seed ‖ i as 4 big-endian bytes) (RFC 8017 §B.2.1).
fn mgf1_xor<D: Digest + Clone>(seed: &[u8], db: &mut [u8]) {
    let seeded = D::new().chain_update(seed);
    for (block, counter) in db.chunks_mut(<D as Digest>::output_size()).zip(0u32..) {
        let mask = seeded
            .clone()
            .chain_update(counter.to_be_bytes())
            .finalize();
        for (byte, m) in block.iter_mut().zip(mask.iter()) {
            *byte ^= m;
        }
    }
}
