//! Remote JWKS shared by every worker: one fetch serves all of them. The JWKS body and its
//! bookkeeping live in ONE shared-data value (so they change atomically):
//! `v1 <version> <fetched_at_ms> <lease_until_ms> <next_attempt_ms> <failures>\n<body>`.
//! A worker that finds a refresh due takes the lease with a compare-and-swap and fetches; the
//! others see the version move on their next tick and re-parse only then. A failed fetch
//! keeps the last good body and backs off exponentially.

use crate::algorithm::Algorithm;
use crate::config::RemoteJwks;
use crate::jwks::KeySet;
use std::time::Duration;
use wasmgate_shared::Host;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SharedJwks {
    pub version: u64,
    pub fetched_at_ms: u64,
    pub lease_until_ms: u64,
    pub next_attempt_ms: u64,
    pub failures: u32,
    pub body: Vec<u8>,
}

impl SharedJwks {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "v1 {} {} {} {} {}\n",
            self.version,
            self.fetched_at_ms,
            self.lease_until_ms,
            self.next_attempt_ms,
            self.failures
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let newline = bytes.iter().position(|b| *b == b'\n')?;
        let head = std::str::from_utf8(bytes.get(..newline)?).ok()?;
        let mut fields = head.split(' ');
        if fields.next()? != "v1" {
            return None;
        }
        let mut num = || fields.next()?.parse::<u64>().ok();
        Some(Self {
            version: num()?,
            fetched_at_ms: num()?,
            lease_until_ms: num()?,
            next_attempt_ms: num()?,
            failures: u32::try_from(num()?).ok()?,
            body: bytes.get(newline + 1..)?.to_vec(),
        })
    }
}

/// One worker's view of a provider's remote key set.
#[derive(Debug, Default)]
pub struct RemoteState {
    pub keys: Option<KeySet>,
    /// Shared version the local keys were parsed from.
    pub version: u64,
    /// Bumped whenever the local key set changes (cache entries remember it).
    pub generation: u64,
    pub fetched_at_ms: u64,
    /// A token named a kid we do not have: fetch again if the rate limit allows.
    pub refetch_wanted: bool,
    /// Token of our own fetch in flight.
    pub in_flight: Option<u32>,
}

/// What a poll or a response did, for metrics and for resuming waiting requests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PollResult {
    /// New keys were installed locally.
    pub installed: bool,
    /// A fetch was started with this call token.
    pub dispatched: Option<u32>,
    /// A fetch attempt ended without new keys.
    pub failed: bool,
}

fn backoff_ms(cfg: &RemoteJwks, failures: u32) -> u64 {
    let shift = failures.saturating_sub(1).min(20);
    cfg.retry_initial_ms
        .saturating_mul(1 << shift)
        .min(cfg.retry_max_ms)
}

fn read(host: &(impl Host + ?Sized), key: &str) -> (SharedJwks, Option<u32>) {
    let (value, cas) = host.shared_data(key);
    (
        value
            .as_deref()
            .and_then(SharedJwks::decode)
            .unwrap_or_default(),
        cas,
    )
}

impl RemoteState {
    /// Whether a token with an unknown kid may trigger a fetch now.
    pub fn may_refetch(&self, cfg: &RemoteJwks, now_ms: u64) -> bool {
        now_ms >= self.fetched_at_ms.saturating_add(cfg.refetch_min_ms)
    }

    /// Keys already in shared data, parsed at configure: a configuration that replaces
    /// another (an ECDS or `WasmPlugin` change makes a new root context in the same VM, with
    /// empty state) serves with them at once instead of pausing requests until its first tick.
    /// Never fetches: the canary Envoy configures a new configuration in must not call out.
    pub fn adopt_shared(
        &mut self,
        host: &(impl Host + ?Sized),
        cfg: &RemoteJwks,
        algorithms: &[Algorithm],
    ) -> bool {
        let (shared, _) = read(host, &cfg.shared_key);
        shared.version > self.version && self.install(&shared, algorithms)
    }

    /// Keys another worker fetched (or an earlier answer of ours): parsed here.
    fn install(&mut self, shared: &SharedJwks, algorithms: &[Algorithm]) -> bool {
        match KeySet::from_jwks_lenient(&shared.body, algorithms, self.keys.as_ref()) {
            Ok((set, _)) if !set.is_empty() => {
                self.adopt(set, shared);
                true
            }
            _ => false,
        }
    }

    fn adopt(&mut self, set: KeySet, shared: &SharedJwks) {
        self.keys = Some(set);
        self.version = shared.version;
        self.fetched_at_ms = shared.fetched_at_ms;
        self.generation += 1;
    }

    /// On every tick: pick up keys another worker fetched, and start a fetch if one is due and
    /// we win the lease.
    pub fn poll(
        &mut self,
        host: &(impl Host + ?Sized),
        cfg: &RemoteJwks,
        algorithms: &[Algorithm],
        now_ms: u64,
    ) -> PollResult {
        let mut result = PollResult::default();
        let (mut shared, mut cas) = read(host, &cfg.shared_key);
        if shared.version > self.version {
            result.installed = self.install(&shared, algorithms);
            self.version = shared.version;
            self.fetched_at_ms = shared.fetched_at_ms;
        }
        if self.in_flight.is_some() {
            return result;
        }
        let refetch = self.refetch_wanted && self.may_refetch(cfg, now_ms);
        if self.refetch_wanted && !refetch {
            // Rate-limited (another worker just fetched): the waiting request decides now.
            self.refetch_wanted = false;
        }
        let due = shared.version == 0
            || now_ms >= shared.fetched_at_ms.saturating_add(cfg.refresh_ms)
            || refetch;
        if !due || now_ms < shared.lease_until_ms || now_ms < shared.next_attempt_ms {
            return result;
        }
        if cas.is_none() {
            // Creating a key is not atomic in Envoy: create it empty, then race on its CAS.
            if host
                .set_shared_data(&cfg.shared_key, &shared.encode(), None)
                .is_err()
            {
                return result;
            }
            (shared, cas) = read(host, &cfg.shared_key);
        }
        shared.lease_until_ms = now_ms + cfg.timeout_ms + 1000;
        if host
            .set_shared_data(&cfg.shared_key, &shared.encode(), cas)
            .is_err()
        {
            return result;
        }
        let headers = [
            (":method", "GET"),
            (":path", cfg.path.as_str()),
            (":authority", cfg.authority.as_str()),
            ("accept", "application/json"),
        ];
        match host.dispatch_http_call(
            &cfg.cluster,
            &headers,
            None,
            Duration::from_millis(cfg.timeout_ms),
        ) {
            Ok(token) => {
                self.in_flight = Some(token);
                result.dispatched = Some(token);
            }
            Err(e) => {
                log::warn!(
                    "wasmgate authn: JWKS fetch from cluster {} failed to start: {}",
                    cfg.cluster,
                    e.0
                );
                self.finish(host, cfg, algorithms, None, now_ms, &mut result);
            }
        }
        result
    }

    /// The fetch we started answered (`status`, `body`), or failed (`None`).
    pub fn on_response(
        &mut self,
        host: &(impl Host + ?Sized),
        cfg: &RemoteJwks,
        algorithms: &[Algorithm],
        response: Option<(u16, Vec<u8>)>,
        now_ms: u64,
    ) -> PollResult {
        self.in_flight = None;
        let mut result = PollResult::default();
        let body = response.and_then(|(status, body)| (status == 200).then_some(body));
        self.finish(host, cfg, algorithms, body, now_ms, &mut result);
        result
    }

    fn finish(
        &mut self,
        host: &(impl Host + ?Sized),
        cfg: &RemoteJwks,
        algorithms: &[Algorithm],
        body: Option<Vec<u8>>,
        now_ms: u64,
        result: &mut PollResult,
    ) {
        // Parsed once: the set that proves the body usable is the one installed (ES* keys build
        // tables, which should not be built twice).
        let usable = body.and_then(|body| {
            match KeySet::from_jwks_lenient(&body, algorithms, self.keys.as_ref()) {
                Ok((set, _)) if !set.is_empty() => Some((body, set)),
                _ => None,
            }
        });
        self.refetch_wanted = false;
        for _ in 0..8 {
            let (mut shared, cas) = read(host, &cfg.shared_key);
            shared.lease_until_ms = 0;
            match &usable {
                Some((body, _)) => {
                    shared.version += 1;
                    shared.fetched_at_ms = now_ms;
                    shared.failures = 0;
                    shared.next_attempt_ms = 0;
                    shared.body = body.clone();
                }
                None => {
                    shared.failures = shared.failures.saturating_add(1);
                    shared.next_attempt_ms = now_ms + backoff_ms(cfg, shared.failures);
                }
            }
            if host
                .set_shared_data(&cfg.shared_key, &shared.encode(), cas)
                .is_ok()
            {
                if let Some((_, set)) = usable {
                    self.adopt(set, &shared);
                    result.installed = true;
                } else {
                    result.failed = true;
                    // Keep waiting requests from waiting on a refresh that will not come soon.
                    self.fetched_at_ms = self.fetched_at_ms.max(shared.fetched_at_ms);
                }
                return;
            }
        }
        result.failed = usable.is_none();
    }
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
