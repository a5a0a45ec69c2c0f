//! The verified-token cache: a token that passed signature and claim checks maps to what the
//! request path needs (provider, deadline, signing key, identity to inject), so a client that
//! reuses its token pays the signature check once per worker.
//!
//! Per worker (per Wasm VM), not in shared data: a hit must cost near nothing, and shared data
//! would mean a host call, a copy and a decode per request; the price is one signature check
//! per token per worker. Bounded by entry count with CLOCK (second-chance) eviction. Keyed by
//! a seeded 64-bit hash of the token, confirmed by comparing the whole token, so a hash
//! collision can only cause a miss, never a wrong identity.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The key is already a seeded hash; hashing it again would only cost time.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// A fast seeded hash over 8-byte words (64-bit multiplies are native in Wasm; 128-bit are not).
pub fn token_hash(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K1);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K1)
            .rotate_left(29);
    }
    let mut tail = [0u8; 8];
    for (dst, src) in tail.iter_mut().zip(chunks.remainder()) {
        *dst = *src;
    }
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K2);
    h ^= h >> 32;
    h = h.wrapping_mul(K1);
    h ^ (h >> 29)
}

struct Slot<V> {
    token: Box<str>,
    hash: u64,
    /// Unix seconds after which the entry is dead (token `exp` + skew, capped by the TTL).
    deadline: u64,
    referenced: bool,
    value: V,
}

pub struct TokenCache<V> {
    capacity: usize,
    seed: u64,
    slots: Vec<Slot<V>>,
    index: HashMap<u64, usize, BuildHasherDefault<PassThrough>>,
    hand: usize,
}

impl<V> TokenCache<V> {
    /// `capacity` 0 disables the cache.
    pub fn new(capacity: usize, seed: u64) -> Self {
        Self {
            capacity,
            seed,
            slots: Vec::new(),
            index: HashMap::default(),
            hand: 0,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The live entry for `token`, marked as recently used.
    pub fn get(&mut self, token: &str, now_secs: u64) -> Option<&mut V> {
        let hash = token_hash(self.seed, token.as_bytes());
        let at = *self.index.get(&hash)?;
        let live = self
            .slots
            .get(at)
            .is_some_and(|s| &*s.token == token && now_secs <= s.deadline);
        if !live {
            if self.slots.get(at).is_some_and(|s| &*s.token == token) {
                self.remove_at(at);
            }
            return None;
        }
        let slot = self.slots.get_mut(at)?;
        slot.referenced = true;
        Some(&mut slot.value)
    }

    /// Drops the entry for `token` (its signing key left the key set).
    pub fn remove(&mut self, token: &str) {
        let hash = token_hash(self.seed, token.as_bytes());
        if let Some(&at) = self.index.get(&hash) {
            if self.slots.get(at).is_some_and(|s| &*s.token == token) {
                self.remove_at(at);
            }
        }
    }

    pub fn insert(&mut self, token: &str, deadline: u64, value: V) {
        if self.capacity == 0 {
            return;
        }
        let hash = token_hash(self.seed, token.as_bytes());
        let slot = Slot {
            token: token.into(),
            hash,
            deadline,
            referenced: false,
            value,
        };
        if let Some(&at) = self.index.get(&hash) {
            if let Some(existing) = self.slots.get_mut(at) {
                *existing = slot;
                return;
            }
        }
        if self.slots.len() < self.capacity {
            self.index.insert(hash, self.slots.len());
            self.slots.push(slot);
            return;
        }
        let victim = self.victim();
        if let Some(old) = self.slots.get_mut(victim) {
            let old_hash = old.hash;
            *old = slot;
            self.index.remove(&old_hash);
            self.index.insert(hash, victim);
        }
    }

    /// CLOCK: sweep, clearing reference bits, until an unreferenced slot.
    fn victim(&mut self) -> usize {
        let len = self.slots.len().max(1);
        loop {
            let at = self.hand % len;
            self.hand = (at + 1) % len;
            match self.slots.get_mut(at) {
                Some(s) if s.referenced => s.referenced = false,
                _ => return at,
            }
        }
    }

    fn remove_at(&mut self, at: usize) {
        if at >= self.slots.len() {
            return;
        }
        let removed = self.slots.swap_remove(at);
        self.index.remove(&removed.hash);
        if let Some(moved) = self.slots.get(at) {
            self.index.insert(moved.hash, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_and_whole_token_comparison() {
        let mut c = TokenCache::new(4, 7);
        c.insert("a.b.c", 100, 1);
        assert_eq!(c.get("a.b.c", 50).copied(), Some(1));
        assert_eq!(c.get("a.b.d", 50).copied(), None);
        assert_eq!(c.get("a.b.c", 100).copied(), Some(1));
    }

    #[test]
    fn entries_expire_at_their_deadline() {
        let mut c = TokenCache::new(4, 7);
        c.insert("t", 100, 1);
        assert_eq!(c.get("t", 101).copied(), None);
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_with_clock_eviction_keeping_recently_used() {
        let mut c = TokenCache::new(3, 1);
        for t in ["t1", "t2", "t3"] {
            c.insert(t, 1000, t.len());
        }
        assert!(c.get("t1", 0).is_some());
        c.insert("t4", 1000, 2);
        assert_eq!(c.len(), 3);
        assert!(c.get("t1", 0).is_some(), "recently used survives");
        assert!(c.get("t4", 0).is_some());
        assert_eq!(
            ["t2", "t3"]
                .iter()
                .filter(|t| c.get(t, 0).is_some())
                .count(),
            1
        );
        for i in 0..100 {
            c.insert(&format!("x{i}"), 1000, i);
        }
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn remove_and_reinsert() {
        let mut c = TokenCache::new(3, 1);
        c.insert("a", 10, 1);
        c.insert("b", 10, 2);
        c.remove("a");
        assert!(c.get("a", 0).is_none());
        assert_eq!(c.get("b", 0).copied(), Some(2));
        c.insert("b", 10, 3);
        assert_eq!(c.get("b", 0).copied(), Some(3));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn zero_capacity_disables() {
        let mut c = TokenCache::new(0, 1);
        c.insert("a", 10, 1);
        assert!(c.get("a", 0).is_none());
    }

    #[test]
    fn hash_depends_on_seed_and_every_byte() {
        let t = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln";
        assert_ne!(token_hash(1, t.as_bytes()), token_hash(2, t.as_bytes()));
        let mut other = t.as_bytes().to_vec();
        if let Some(last) = other.last_mut() {
            *last ^= 1;
        }
        assert_ne!(token_hash(1, t.as_bytes()), token_hash(1, &other));
    }
}
