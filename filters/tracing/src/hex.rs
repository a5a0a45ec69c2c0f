//! Lower-case hex, the only spelling W3C Trace Context and B3 allow for ids.

/// Decodes exactly `2 * N` lower-case hex characters; anything else (upper case, other
/// characters, wrong length) is `None`.
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (dst, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (nibble(*hi)?, nibble(*lo)?),
            _ => return None,
        };
        *dst = (hi << 4) | lo;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Appends `bytes` as lower-case hex.
pub fn push(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        for n in [b >> 4, b & 0x0f] {
            // A nibble is always a base-16 digit; `from_digit` writes it in lower case.
            out.push(char::from_digit(u32::from(n), 16).unwrap_or('0'));
        }
    }
}

pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push(&mut out, bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_lower_case_only_and_exact_length() {
        assert_eq!(decode::<2>("00ff"), Some([0, 255]));
        assert_eq!(decode::<2>("00FF"), None);
        assert_eq!(decode::<2>("00f"), None);
        assert_eq!(decode::<2>("00fff"), None);
        assert_eq!(decode::<2>("0g00"), None);
        assert_eq!(decode::<1>("é"), None);
    }

    #[test]
    fn encodes_round_trip() {
        let bytes = [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6];
        assert_eq!(encode(&bytes), "4bf92f3577b34da6");
        assert_eq!(decode::<8>(&encode(&bytes)), Some(bytes));
    }
}
