//! What one worker (one Wasm VM) keeps between requests: each provider's remote key set, the
//! verified-token cache, and the requests paused until keys arrive. Shared by the root context
//! and the stream contexts of that worker through an `Rc<RefCell<_>>` (one thread).

use crate::algorithm::Algorithm;
use crate::cache::TokenCache;
use crate::config::AuthnConfig;
use crate::jwks::Key;
use crate::remote::RemoteState;
use serde_json::{Map, Value};
use std::rc::Rc;

/// A token that passed every provider check; what a cache hit returns.
#[derive(Debug)]
pub struct Verified {
    pub provider: usize,
    pub key_fingerprint: u64,
    /// The provider's key generation when verified (re-checked when it moves).
    pub generation: u64,
    /// Shared with the gateway's later stages as the request's identity.
    pub claims: Rc<Map<String, Value>>,
    /// Upstream headers to set, computed once.
    pub headers: Vec<(String, String)>,
}

/// Why a paused request waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// The provider has no keys yet.
    FirstKeys,
    /// The token names a kid we lack; a refetch was requested.
    Rotation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    pub context_id: u32,
    pub provider: usize,
    pub reason: WaitReason,
    pub generation: u64,
    pub deadline_ms: u64,
}

pub struct WorkerState {
    /// Indexed like `config.providers`; `None` for providers without remote JWKS.
    pub remote: Vec<Option<RemoteState>>,
    pub cache: TokenCache<Rc<Verified>>,
    pub waiters: Vec<Waiter>,
}

impl WorkerState {
    pub fn new(config: &AuthnConfig, seed: u64) -> Self {
        Self {
            remote: config
                .providers
                .iter()
                .map(|p| p.remote.as_ref().map(|_| RemoteState::default()))
                .collect(),
            cache: TokenCache::new(config.cache_entries, seed),
            waiters: Vec::new(),
        }
    }

    pub fn generation(&self, provider: usize) -> u64 {
        self.remote
            .get(provider)
            .and_then(Option::as_ref)
            .map_or(0, |r| r.generation)
    }

    /// Whether a provider with remote JWKS has never loaded keys on this worker.
    pub fn awaiting_first_keys(&self, provider: usize) -> bool {
        self.remote
            .get(provider)
            .and_then(Option::as_ref)
            .is_some_and(|r| r.keys.is_none())
    }

    /// Keys of `provider` that may have signed a token with this `kid`/`alg`: inline first.
    pub fn candidates<'a>(
        &'a self,
        config: &'a AuthnConfig,
        provider: usize,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> Vec<&'a Key> {
        let mut out: Vec<&Key> = Vec::new();
        if let Some(p) = config.providers.get(provider) {
            out.extend(p.inline_keys.candidates(kid, alg));
        }
        if let Some(Some(r)) = self.remote.get(provider) {
            if let Some(keys) = &r.keys {
                out.extend(keys.candidates(kid, alg));
            }
        }
        out
    }

    pub fn has_fingerprint(&self, config: &AuthnConfig, provider: usize, fingerprint: u64) -> bool {
        let inline = config
            .providers
            .get(provider)
            .is_some_and(|p| p.inline_keys.contains_fingerprint(fingerprint));
        inline
            || matches!(self.remote.get(provider), Some(Some(r)) if r.keys.as_ref().is_some_and(|k| k.contains_fingerprint(fingerprint)))
    }

    /// Paused requests that can be decided now: keys arrived, the refetch ended, or the wait
    /// bound passed. Removed from the list.
    pub fn take_ready_waiters(&mut self, now_ms: u64) -> Vec<Waiter> {
        let remote = &self.remote;
        let ready = |w: &Waiter| {
            let Some(Some(r)) = remote.get(w.provider) else {
                return true;
            };
            now_ms >= w.deadline_ms
                || r.generation != w.generation
                || match w.reason {
                    WaitReason::FirstKeys => r.keys.is_some(),
                    WaitReason::Rotation => !r.refetch_wanted && r.in_flight.is_none(),
                }
        };
        let (ready, waiting): (Vec<Waiter>, Vec<Waiter>) = self.waiters.drain(..).partition(ready);
        self.waiters = waiting;
        ready
    }
}
