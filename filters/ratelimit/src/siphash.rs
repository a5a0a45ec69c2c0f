//! SipHash-1-3 (Aumasson & Bernstein), the keyed hash that maps key values to slots. Keyed with a
//! per-Envoy random seed, a client cannot choose values that land in a victim's slot.

#[inline]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// An incremental SipHash-1-3 over a byte stream.
#[derive(Clone)]
pub struct Sip13 {
    v: [u64; 4],
    tail: u64,
    tail_len: u32,
    total: u64,
}

impl Sip13 {
    pub fn new(key: (u64, u64)) -> Self {
        let (k0, k1) = key;
        Self {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            tail_len: 0,
            total: 0,
        }
    }

    fn compress(&mut self, m: u64) {
        self.v[3] ^= m;
        round(&mut self.v);
        self.v[0] ^= m;
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.total = self.total.wrapping_add(bytes.len() as u64);
        for &b in bytes {
            self.tail |= u64::from(b) << (8 * self.tail_len);
            self.tail_len += 1;
            if self.tail_len == 8 {
                let m = self.tail;
                self.compress(m);
                self.tail = 0;
                self.tail_len = 0;
            }
        }
    }

    pub fn finish(mut self) -> u64 {
        let m = self.tail | ((self.total & 0xff) << 56);
        self.compress(m);
        self.v[2] ^= 0xff;
        for _ in 0..3 {
            round(&mut self.v);
        }
        self.v[0] ^ self.v[1] ^ self.v[2] ^ self.v[3]
    }
}

/// SipHash-1-3 of `bytes` under `key`.
pub fn sip13(key: (u64, u64), bytes: &[u8]) -> u64 {
    let mut h = Sip13::new(key);
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hasher;

    #[test]
    fn matches_the_standard_library_siphash13_with_zero_keys() {
        // std's DefaultHasher::new() is SipHash-1-3 with keys (0, 0); `write` feeds raw bytes.
        for input in [
            &b""[..],
            b"a",
            b"1234567",
            b"12345678",
            b"the quick brown fox jumps",
        ] {
            let mut std_hasher = std::collections::hash_map::DefaultHasher::new();
            std_hasher.write(input);
            assert_eq!(sip13((0, 0), input), std_hasher.finish(), "{input:?}");
        }
    }

    #[test]
    fn split_writes_equal_one_write_and_keys_matter() {
        let mut h = Sip13::new((1, 2));
        h.write(b"hello ");
        h.write(b"world");
        assert_eq!(h.finish(), sip13((1, 2), b"hello world"));
        assert_ne!(sip13((1, 2), b"x"), sip13((2, 1), b"x"));
    }
}
