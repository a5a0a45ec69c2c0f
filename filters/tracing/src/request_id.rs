//! `x-request-id`: a caller's id is kept when it is a sane token; otherwise the gateway makes
//! a UUIDv4 from the host's randomness.

use crate::hex;

/// Longest incoming request id kept.
pub const MAX_LEN: usize = 128;

/// 1 to 128 characters of `A-Z a-z 0-9 - _ . : / + = ~`: enough for UUIDs, ULIDs and base64
/// ids, and nothing that can break a log line or a header.
pub fn is_acceptable(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_LEN
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.:/+=~".contains(&c))
}

/// A version 4 (random) UUID in its canonical lower-case 8-4-4-4-12 form (RFC 9562 §5.4).
pub fn uuid_v4(mut random: [u8; 16]) -> String {
    random[6] = (random[6] & 0x0f) | 0x40;
    random[8] = (random[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    let (mut rest, mut first) = (&random[..], true);
    for len in [4, 2, 2, 2, 6] {
        let (group, tail) = rest.split_at(len.min(rest.len()));
        if !first {
            out.push('-');
        }
        first = false;
        hex::push(&mut out, group);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_uuid_v4(s: &str) -> bool {
        let groups: Vec<&str> = s.split('-').collect();
        groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && s.bytes()
                .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            && groups[2].starts_with('4')
            && matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
    }

    #[test]
    fn uuid_v4_has_version_and_variant_bits() {
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let mut seed = 1u8;
        for _ in 0..256 {
            let bytes: [u8; 16] = std::array::from_fn(|i| {
                seed = seed.wrapping_mul(37).wrapping_add(i as u8);
                seed
            });
            let id = uuid_v4(bytes);
            assert!(is_uuid_v4(&id), "{id}");
        }
    }

    #[test]
    fn acceptable_request_ids() {
        for ok in [
            "a",
            "f47ac10b-58cc-4372-a567-0e02b2c3d479",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "YWJj+/=",
            &"x".repeat(128),
        ] {
            assert!(is_acceptable(ok), "{ok}");
        }
        for bad in [
            "",
            " a",
            "a b",
            "a\nb",
            "a,b",
            "é",
            "<script>",
            &"x".repeat(129),
        ] {
            assert!(!is_acceptable(bad), "{bad:?}");
        }
    }
}
