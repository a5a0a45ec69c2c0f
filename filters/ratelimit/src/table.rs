//! The shared-data side of the buckets: the per-Envoy hash seed and each rule's fixed table of
//! slots, created in `on_configure` so the request path never creates a key.
//!
//! Why create up front: in Envoy a write to a missing key always succeeds, whatever CAS token
//! it carries, so two workers creating the same bucket could both hand out its first tokens.
//! Envoy configures a plugin first in a "configuration canary" VM on the main thread, before
//! any worker VM exists, so that one pass creates every key; the workers' own `on_configure`
//! then finds them all and writes nothing.

use crate::bucket::SlotState;
use crate::config::Rule;
use wasmgate_shared::host::unix_nanos;
use wasmgate_shared::Host;

pub const SEED_KEY: &str = "wasmgate.ratelimit.seed";

/// The hash seed all workers share; created (from the host's randomness) if missing.
pub fn seed(host: &(impl Host + ?Sized)) -> (u64, u64) {
    if let Some(seed) = read_seed(host) {
        return seed;
    }
    let mut bytes = [0u8; 16];
    host.random_bytes(&mut bytes);
    // A failed write leaves us with our own value; the re-read below prefers the stored one.
    let _ = host.set_shared_data(SEED_KEY, &bytes, None);
    read_seed(host).unwrap_or_else(|| split_seed(&bytes))
}

fn read_seed(host: &(impl Host + ?Sized)) -> Option<(u64, u64)> {
    let (value, _) = host.shared_data(SEED_KEY);
    let bytes: [u8; 16] = value?.as_slice().try_into().ok()?;
    Some(split_seed(&bytes))
}

fn split_seed(bytes: &[u8; 16]) -> (u64, u64) {
    let mut k0 = [0u8; 8];
    let mut k1 = [0u8; 8];
    k0.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
    k1.copy_from_slice(bytes.get(8..).unwrap_or(&[0; 8]));
    (u64::from_le_bytes(k0), u64::from_le_bytes(k1))
}

/// Creates every missing slot of `rule` as a full bucket; returns how many it created.
pub fn create_slots(host: &(impl Host + ?Sized), rule: &Rule) -> u32 {
    let fresh = rule.limit.fresh(unix_nanos(host.now())).encode();
    let mut created = 0;
    for slot in 0..rule.slot_count() {
        let key = rule.slot_key(slot);
        if host.shared_data(&key).0.is_none() && host.set_shared_data(&key, &fresh, None).is_ok() {
            created += 1;
        }
    }
    created
}

/// A slot as read: its state (a value that does not decode counts as a full, unused bucket)
/// and the CAS token to write it back with. `None` if the key does not exist.
pub fn read_slot(
    host: &(impl Host + ?Sized),
    rule: &Rule,
    key: &str,
    now_ns: u64,
) -> Option<(SlotState, u32)> {
    match host.shared_data(key) {
        (Some(bytes), Some(cas)) => {
            let state = SlotState::decode(&bytes).unwrap_or_else(|| rule.limit.fresh(now_ns));
            Some((state, cas))
        }
        _ => None,
    }
}
