//! The per-request decision over every rule that applies, against buckets in shared data.
//!
//! Two phases, so no bucket gives a token when another refuses: read every bucket and decide;
//! if all have tokens, write each back with its CAS token. A conflict (another worker wrote
//! first) refunds the buckets already written and redoes the whole decision, at most
//! [`MAX_ATTEMPTS`] times; then the request is refused (never admitted unchecked). The one
//! residue of a conflict is that, between a write and its refund, another request may see one
//! bucket `cost` tokens lower than it should: a refusal that would otherwise have been an
//! admission, never the reverse.
//!
//! Each worker also remembers buckets it last saw short of tokens ([`ShortCache`]). Other
//! workers can only take tokens, so until refill alone would give that bucket enough again a
//! request is refused without reading shared data: a flood of refusals costs no shared-data
//! traffic. (A refund by another worker is only seen once the memory expires: a refusal, never
//! an admission.)

use crate::bucket::SlotState;
use crate::config::{HeaderStyle, MissingKey, RatelimitConfig, Rule};
use crate::headers::{bucket_reset_s, ceil_seconds, fields, retry_after_s, seconds_until, Quota};
use crate::keys::locate;
use crate::metrics::Metrics;
use crate::table::{self, read_slot};
use std::borrow::Cow;
use std::cell::RefCell;
use wasmgate_shared::host::unix_nanos;
use wasmgate_shared::{Host, LocalReply, RequestView, SharedDataError};

/// Decisions tried before giving up on a bucket that keeps changing under us.
pub const MAX_ATTEMPTS: u32 = 8;
/// The owner recorded in a rule's constant / fallback slot.
const FALLBACK_OWNER: u64 = u64::MAX;

pub struct Limiter {
    pub config: RatelimitConfig,
    pub seed: (u64, u64),
    pub metrics: Metrics,
    short: ShortCache,
}

/// Buckets this worker last saw short of tokens, direct-mapped by (rule, slot).
struct ShortCache(RefCell<Vec<Option<Short>>>);

#[derive(Clone, Copy)]
struct Short {
    rule: usize,
    slot: u32,
    state: SlotState,
}

const SHORT_ENTRIES: usize = 256;

impl ShortCache {
    fn new() -> Self {
        Self(RefCell::new(vec![None; SHORT_ENTRIES]))
    }

    fn index(rule: usize, slot: u32) -> usize {
        (rule.wrapping_mul(0x9E37) ^ slot as usize) % SHORT_ENTRIES
    }

    /// The remembered state if it still cannot pay `cost` at `now` (after refill).
    fn still_short(&self, c: &Charge<'_>, now: u64) -> Option<SlotState> {
        let cache = self.0.borrow();
        let entry = cache.get(Self::index(c.metrics_index, c.slot))?.as_ref()?;
        if entry.rule != c.metrics_index || entry.slot != c.slot {
            return None;
        }
        let state = c.rule.limit.refill(entry.state, now);
        (state.tokens < c.rule.cost).then_some(state)
    }

    fn remember(&self, c: &Charge<'_>, state: SlotState, short: bool) {
        let mut cache = self.0.borrow_mut();
        if let Some(entry) = cache.get_mut(Self::index(c.metrics_index, c.slot)) {
            *entry = short.then_some(Short {
                rule: c.metrics_index,
                slot: c.slot,
                state,
            });
        }
    }
}

/// What the filter does with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through; add these fields to the response (empty unless `on_allowed`).
    Allow(Vec<(&'static str, String)>),
    /// Answer with this 429.
    Limit(Refusal),
}

/// A refused request: its reply, and the rule the gateway's span names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reply: LocalReply,
    /// The refusing rule whose wait is longest; `None` when no single rule refused (the
    /// service could not be asked, the bucket store stayed contended).
    pub rule: Option<String>,
}

impl From<LocalReply> for Refusal {
    fn from(reply: LocalReply) -> Self {
        Self { reply, rule: None }
    }
}

/// A rule that applies to this request, and the bucket it charges.
struct Charge<'a> {
    rule: &'a Rule,
    metrics_index: usize,
    slot: u32,
    key: Cow<'a, str>,
    owner: u64,
}

/// A bucket as read in the current attempt.
#[derive(Clone, Copy)]
struct Read {
    state: SlotState,
    cas: u32,
    has_tokens: bool,
}

impl Limiter {
    /// Defines the metrics and creates every rule's buckets (see table.rs for why here).
    pub fn configure(host: &(impl Host + ?Sized), config: RatelimitConfig) -> Self {
        let seed = table::seed(host);
        for rule in &config.rules {
            let created = table::create_slots(host, rule);
            log::info!(
                "wasmgate ratelimit: rule {}: {} slots, {created} created",
                rule.name,
                rule.slot_count()
            );
        }
        let metrics = Metrics::define(host, &config);
        Self {
            config,
            seed,
            metrics,
            short: ShortCache::new(),
        }
    }

    /// Decides the rules the local bucket decides on every request (`mode: local | both`).
    pub fn decide(&self, host: &(impl Host + ?Sized), request: &RequestView) -> Verdict {
        self.decide_where(host, request, |rule| rule.mode.is_local())
    }

    /// Decides only the rules `select` picks, against their local buckets.
    pub fn decide_where(
        &self,
        host: &(impl Host + ?Sized),
        request: &RequestView,
        select: impl Fn(&Rule) -> bool,
    ) -> Verdict {
        let charges = self.charges(host, request, select);
        if charges.is_empty() {
            return Verdict::Allow(Vec::new());
        }
        let mut reads: Vec<Read> = Vec::with_capacity(charges.len());
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                self.metrics.cas_retries.inc();
            }
            let now = unix_nanos(host.now());
            reads.clear();
            if !self.read_all(host, &charges, now, &mut reads) {
                continue;
            }
            let refused = charges
                .iter()
                .zip(&reads)
                .any(|(c, r)| !c.rule.shadow && !r.has_tokens);
            if refused {
                return self.refuse(&charges, &reads, now);
            }
            if self.commit(host, &charges, &reads) {
                return self.admit(host, &charges, &reads, now);
            }
        }
        self.metrics.cas_exhausted.inc();
        Verdict::Limit(
            LocalReply::new(429, "rate_limited", "Too many requests; retry shortly.")
                .with_header("retry-after", "1")
                .into(),
        )
    }

    fn charges(
        &self,
        host: &(impl Host + ?Sized),
        request: &RequestView,
        select: impl Fn(&Rule) -> bool,
    ) -> Vec<Charge<'_>> {
        let mut charges = Vec::new();
        for (i, rule) in self.config.rules.iter().enumerate() {
            if !select(rule) || !rule.matcher.matches(request) {
                continue;
            }
            let located = if rule.key.is_empty() {
                None
            } else {
                let hops = self.config.xff_trusted_hops;
                match locate(host, request, &rule.key, rule.budget, self.seed, hops) {
                    Some(at) => Some(at),
                    None if rule.on_missing_key == MissingKey::Skip => continue,
                    None => None,
                }
            };
            let (slot, key, owner) = match located {
                Some(at) => (at.slot, Cow::Owned(rule.slot_key(at.slot)), at.fingerprint),
                None => (
                    rule.fallback_slot(),
                    Cow::Borrowed(rule.fallback_key.as_str()),
                    FALLBACK_OWNER,
                ),
            };
            charges.push(Charge {
                rule,
                metrics_index: i,
                slot,
                key,
                owner,
            });
        }
        charges
    }

    /// Reads and refills every bucket; `false` if one was missing (now created: retry).
    fn read_all(
        &self,
        host: &(impl Host + ?Sized),
        charges: &[Charge<'_>],
        now: u64,
        reads: &mut Vec<Read>,
    ) -> bool {
        for c in charges {
            if !c.rule.shadow {
                if let Some(state) = self.short.still_short(c, now) {
                    // A sure refusal: nothing will be written, so no CAS token is needed.
                    reads.push(Read {
                        state,
                        cas: 0,
                        has_tokens: false,
                    });
                    continue;
                }
            }
            match read_slot(host, c.rule, &c.key, now) {
                Some((state, cas)) => {
                    let state = c.rule.limit.refill(state, now);
                    let has_tokens = state.tokens >= c.rule.cost;
                    if !c.rule.shadow {
                        self.short.remember(c, state, !has_tokens);
                    }
                    reads.push(Read {
                        state,
                        cas,
                        has_tokens,
                    });
                }
                None => {
                    // Only if on_configure could not create it; see table.rs.
                    let fresh = c.rule.limit.fresh(now).encode();
                    let _ = host.set_shared_data(&c.key, &fresh, None);
                    return false;
                }
            }
        }
        true
    }

    /// Writes every bucket that gives a token; on a conflict refunds those already written.
    fn commit(&self, host: &(impl Host + ?Sized), charges: &[Charge<'_>], reads: &[Read]) -> bool {
        for (i, (c, r)) in charges.iter().zip(reads).enumerate() {
            if !r.has_tokens {
                continue; // a shadow rule that would refuse takes nothing
            }
            let mut next = r.state;
            next.tokens -= c.rule.cost;
            next.owner = c.owner;
            match host.set_shared_data(&c.key, &next.encode(), Some(r.cas)) {
                Ok(()) => {}
                Err(SharedDataError::CasMismatch | SharedDataError::Failed) => {
                    for (done, rd) in charges.iter().zip(reads).take(i) {
                        if rd.has_tokens {
                            refund(host, done);
                        }
                    }
                    return false;
                }
            }
        }
        true
    }

    fn admit(
        &self,
        host: &(impl Host + ?Sized),
        charges: &[Charge<'_>],
        reads: &[Read],
        now: u64,
    ) -> Verdict {
        for (c, r) in charges.iter().zip(reads) {
            let Some(m) = self.metrics.rules.get(c.metrics_index) else {
                continue;
            };
            if !r.has_tokens {
                m.shadow_limited.inc();
                continue;
            }
            m.allowed.inc();
            match r.state.owner {
                0 => m.keys_in_use.add(host, 1),
                owner if owner != c.owner => m.slot_collisions.inc(),
                _ => {}
            }
        }
        let headers = self.config.headers;
        if !headers.on_allowed || headers.style == HeaderStyle::None {
            return Verdict::Allow(Vec::new());
        }
        let spent = |c: &Charge<'_>, r: &Read| {
            let mut s = r.state;
            if r.has_tokens {
                s.tokens -= c.rule.cost;
            }
            Some(s)
        };
        let (quotas, headline) = quotas(charges, reads, now, spent, |_, _| 0);
        Verdict::Allow(fields(headers.style, &quotas, headline))
    }

    fn refuse(&self, charges: &[Charge<'_>], reads: &[Read], now: u64) -> Verdict {
        for (c, r) in charges.iter().zip(reads) {
            let Some(m) = self.metrics.rules.get(c.metrics_index) else {
                continue;
            };
            match (c.rule.shadow, r.has_tokens) {
                (true, false) => m.shadow_limited.inc(),
                (false, false) => m.limited.inc(),
                _ => {}
            }
        }
        let refusing = charges
            .iter()
            .zip(reads)
            .filter(|(c, r)| !c.rule.shadow && !r.has_tokens);
        let retry = retry_after_s(
            refusing.map(|(c, r)| seconds_until(&c.rule.limit, &r.state, now, c.rule.cost)),
        );
        let mut reply = LocalReply::new(
            429,
            "rate_limited",
            "Too many requests; retry after the time in Retry-After.",
        )
        .with_header("retry-after", retry.to_string());
        // The headline is the refusing rule that waits longest.
        let wait_of = |c: &Charge<'_>, r: &Read| {
            if r.has_tokens {
                0
            } else {
                c.rule.limit.wait_ns(&r.state, now, c.rule.cost)
            }
        };
        // Only the refusing rules: a rule with tokens to spare may see its next token after
        // Retry-After, and §6 holds for every `t` in the answer.
        let refused = |_: &Charge<'_>, r: &Read| (!r.has_tokens).then_some(r.state);
        let rule = charges
            .iter()
            .zip(reads)
            .filter(|(c, r)| !c.rule.shadow && !r.has_tokens)
            .max_by_key(|(c, r)| wait_of(c, r))
            .map(|(c, _)| c.rule.name.clone());
        let (quotas, headline) = quotas(charges, reads, now, refused, wait_of);
        for (name, value) in fields(self.config.headers.style, &quotas, headline) {
            reply = reply.with_header(name, value);
        }
        Verdict::Limit(Refusal { reply, rule })
    }
}

/// The quotas of the enforcing rules `after` gives a state for, and which one headlines
/// `X-RateLimit-*`: the largest `rank`, then the fewest tokens left.
fn quotas<'a>(
    charges: &[Charge<'a>],
    reads: &[Read],
    now: u64,
    after: impl Fn(&Charge<'a>, &Read) -> Option<SlotState>,
    rank: impl Fn(&Charge<'a>, &Read) -> u64,
) -> (Vec<Quota<'a>>, usize) {
    let mut quotas = Vec::with_capacity(charges.len());
    let mut headline = (0, (0u64, u64::MAX));
    for (c, r) in charges.iter().zip(reads) {
        if c.rule.shadow {
            continue;
        }
        let Some(state) = after(c, r) else {
            continue;
        };
        let limit = &c.rule.limit;
        let key = (rank(c, r), u64::MAX - state.tokens);
        if quotas.is_empty() || key > headline.1 {
            headline = (quotas.len(), key);
        }
        quotas.push(Quota {
            name: &c.rule.name,
            capacity: limit.capacity(),
            window_s: ceil_seconds(limit.full_after_ns()),
            remaining: state.tokens,
            reset_s: bucket_reset_s(limit, &state, now),
        });
    }
    (quotas, headline.0)
}

/// Gives back one request's tokens after a failed commit (bounded; a lost refund only ever
/// makes the bucket stricter).
fn refund(host: &(impl Host + ?Sized), charge: &Charge<'_>) {
    for _ in 0..MAX_ATTEMPTS {
        let (Some(bytes), Some(cas)) = host.shared_data(&charge.key) else {
            return;
        };
        let Some(mut state) = SlotState::decode(&bytes) else {
            return;
        };
        let capacity = charge.rule.limit.capacity();
        state.tokens = (state.tokens + charge.rule.cost).min(capacity);
        if host
            .set_shared_data(&charge.key, &state.encode(), Some(cas))
            .is_ok()
        {
            return;
        }
    }
}

#[cfg(test)]
#[path = "limiter_tests.rs"]
mod tests;
