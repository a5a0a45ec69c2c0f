//! The authn policy of one worker (one Wasm VM): the compiled configuration, what it keeps
//! between requests (remote key sets, the token cache, paused requests) and the JWKS fetches
//! in flight. A request decides with [`Request`]; one that waits for keys is named again by
//! `on_tick` or by its provider's fetch answer, then decided for good on `on_wake`.

use crate::config::{AuthnConfig, RawAuthnConfig};
use crate::denial::Denial;
use crate::jwks::KeySet;
use crate::metrics::AuthnMetrics;
use crate::remote::RemoteState;
use crate::request::{Outcome, Request};
use crate::span_attributes::{KEYS_WAIT, OUTCOME, REASON, WAIT_MS};
use crate::state::{Waiter, WorkerState};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};
use wasmgate_shared::host::unix_millis;
use wasmgate_shared::span_notes::NoteValue;
use wasmgate_shared::{config, ConfigError, Flow, Host, Policy, RequestView, SpanNotes};

pub struct Worker {
    config: AuthnConfig,
    metrics: AuthnMetrics,
    state: RefCell<WorkerState>,
    /// Our JWKS fetches in flight: call token → provider index.
    fetches: RefCell<HashMap<u32, usize>>,
}

/// A request remembers its stream, under which it waits for keys.
#[derive(Debug)]
pub struct AuthnStream {
    context_id: u32,
    /// When the request started waiting for keys, for the span's wait event.
    waiting_since: Option<SystemTime>,
}

impl AuthnStream {
    pub fn new(context_id: u32) -> Self {
        Self {
            context_id,
            waiting_since: None,
        }
    }
}

impl Worker {
    pub fn compile(host: &(impl Host + ?Sized), raw: RawAuthnConfig) -> Result<Self, ConfigError> {
        let config = raw.compile()?;
        let mut seed = [0u8; 8];
        host.random_bytes(&mut seed);
        let metrics = AuthnMetrics::define(host, &config);
        let mut state = WorkerState::new(&config, u64::from_le_bytes(seed));
        for ((p, m), remote) in config
            .providers
            .iter()
            .zip(&metrics.providers)
            .zip(&mut state.remote)
        {
            let mut loaded = p.inline_keys.key_count();
            if let (Some(cfg), Some(remote)) = (&p.remote, remote) {
                remote.adopt_shared(host, cfg, &p.algorithms);
                loaded += remote.keys.as_ref().map_or(0, KeySet::key_count);
            }
            m.keys_loaded.record(host, loaded as u64);
        }
        let state = RefCell::new(state);
        Ok(Self {
            config,
            metrics,
            state,
            fetches: RefCell::default(),
        })
    }

    /// Back to the state of a fresh configuration: no cached token, no remote keys, nothing
    /// waiting. A fuzz target reuses one configured worker, and each input must start alike.
    #[cfg(feature = "fuzzing")]
    pub fn forget(&self, seed: u64) {
        *self.state.borrow_mut() = WorkerState::new(&self.config, seed);
        self.fetches.borrow_mut().clear();
    }

    fn decide(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        may_wait: bool,
    ) -> Outcome {
        let mut state = self.state.borrow_mut();
        Request {
            config: &self.config,
            state: &mut state,
            metrics: &self.metrics,
            host,
            may_wait,
        }
        .decide(request)
    }

    /// The flow of an outcome, noted for the span; a wait is registered under the request's
    /// stream.
    fn flow(
        &self,
        host: &(impl Host + ?Sized),
        outcome: Outcome,
        request: &mut RequestView,
        stream: &mut AuthnStream,
    ) -> Flow {
        let notes = &mut request.notes;
        let denied = |notes: &mut SpanNotes, reason: &str| {
            notes.attribute(OUTCOME, "denied");
            notes.attribute(REASON, reason);
        };
        match outcome {
            Outcome::Allow => Flow::Continue,
            Outcome::Deny(denial) => {
                denied(notes, denial.reason());
                Flow::Reply(denial.reply(&self.config.realm))
            }
            Outcome::InvalidPath(refusal) => {
                denied(notes, refusal.reason());
                Flow::Reply(refusal.reply())
            }
            Outcome::Wait {
                provider,
                reason,
                deadline_ms,
            } => {
                let mut state = self.state.borrow_mut();
                let generation = state.generation(provider);
                state.waiters.push(Waiter {
                    context_id: stream.context_id,
                    provider,
                    reason,
                    generation,
                    deadline_ms,
                });
                stream.waiting_since = Some(host.now());
                Flow::Pause
            }
        }
    }

    /// Fetch metrics and the keys-loaded gauge of provider `p`.
    fn record_fetch(
        &self,
        host: &(impl Host + ?Sized),
        p: usize,
        remote: &RemoteState,
        installed: bool,
        failed: bool,
    ) {
        let Some(m) = self.metrics.providers.get(p) else {
            return;
        };
        if installed {
            m.jwks_fetch_success.inc(host);
        }
        if failed {
            m.jwks_fetch_failure.inc(host);
        }
        let inline = self
            .config
            .providers
            .get(p)
            .map_or(0, |pr| pr.inline_keys.key_count());
        let loaded = inline + remote.keys.as_ref().map_or(0, KeySet::key_count);
        m.keys_loaded.record(host, loaded as u64);
    }

    /// The paused requests that can be decided now.
    fn ready(&self, host: &(impl Host + ?Sized)) -> Vec<u32> {
        let now = unix_millis(host.now());
        let ready = self.state.borrow_mut().take_ready_waiters(now);
        ready.into_iter().map(|w| w.context_id).collect()
    }
}

impl Policy for Worker {
    const NAME: &'static str = "authn";
    type Stream = AuthnStream;

    fn configure(host: &(impl Host + ?Sized), bytes: Option<&[u8]>) -> Result<Self, ConfigError> {
        config::parse(bytes)
            .and_then(|raw| Self::compile(host, raw))
            .map_err(|e| e.within(Self::NAME))
    }

    /// Ticks flush metrics; with remote JWKS they also poll shared keys and settle paused
    /// requests, which wants a short period.
    fn tick_period(&self) -> Duration {
        let remote = self.config.providers.iter().any(|p| p.remote.is_some());
        Duration::from_millis(if remote { 100 } else { 1000 })
    }

    /// Decisions are batched and reach Envoy on the tick: a replaced configuration sends its
    /// last ones here.
    fn retire(&self, host: &(impl Host + ?Sized)) {
        self.metrics.flush(host);
    }

    fn new_stream(&self, context_id: u32) -> AuthnStream {
        AuthnStream::new(context_id)
    }

    fn on_request(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut AuthnStream,
    ) -> Flow {
        let outcome = self.decide(host, request, true);
        self.flow(host, outcome, request, stream)
    }

    fn on_tick(&self, host: &(impl Host + ?Sized)) -> Vec<u32> {
        self.metrics.flush(host);
        let now = unix_millis(host.now());
        for (p, provider) in self.config.providers.iter().enumerate() {
            let Some(cfg) = &provider.remote else {
                continue;
            };
            let mut state = self.state.borrow_mut();
            let Some(Some(remote)) = state.remote.get_mut(p) else {
                continue;
            };
            let result = remote.poll(host, cfg, &provider.algorithms, now);
            if let Some(token) = result.dispatched {
                self.fetches.borrow_mut().insert(token, p);
            }
            if result.installed || result.failed {
                self.record_fetch(host, p, remote, false, result.failed);
            }
        }
        self.ready(host)
    }

    fn on_http_call_response(
        &self,
        host: &(impl Host + ?Sized),
        token: u32,
        body_size: usize,
    ) -> Vec<u32> {
        let Some(p) = self.fetches.borrow_mut().remove(&token) else {
            return Vec::new();
        };
        let status = host
            .http_call_response_headers()
            .into_iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse::<u16>().ok());
        let body = host.http_call_response_body(body_size).unwrap_or_default();
        if let (Some(provider), Some(cfg)) = (
            self.config.providers.get(p),
            self.config
                .providers
                .get(p)
                .and_then(|pr| pr.remote.as_ref()),
        ) {
            let mut state = self.state.borrow_mut();
            if let Some(Some(remote)) = state.remote.get_mut(p) {
                let now = unix_millis(host.now());
                let answer = status.map(|s| (s, body));
                let result = remote.on_response(host, cfg, &provider.algorithms, answer, now);
                self.record_fetch(host, p, remote, result.installed, result.failed);
            }
        }
        self.ready(host)
    }

    /// Decided for good: keys still missing now mean 503.
    fn on_wake(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut AuthnStream,
    ) -> Flow {
        let waited_since = stream.waiting_since.take();
        // The event's attributes are a heap allocation: only for a span that is exported.
        if let Some(since) = waited_since.filter(|_| request.notes.is_recording()) {
            let now = host.now();
            let waited = now.duration_since(since).unwrap_or_default().as_millis();
            let waited = i64::try_from(waited).unwrap_or(i64::MAX);
            request
                .notes
                .event(KEYS_WAIT, now, vec![(WAIT_MS, NoteValue::Int(waited))]);
        }
        let outcome = match self.decide(host, request, false) {
            Outcome::Wait { .. } => Outcome::Deny(Denial::KeysUnavailable),
            outcome => outcome,
        };
        self.flow(host, outcome, request, stream)
    }

    fn on_stream_end(&self, stream: &mut AuthnStream) {
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.waiters.retain(|w| w.context_id != stream.context_id);
        }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
