//! One naming scheme for every filter's metrics: `wasmgate_<filter>_<name>`, defined once in the
//! root context and incremented by id. Envoy keeps Wasm metrics in its `wasmcustom` stat
//! namespace, so `/stats/prometheus` shows them by exactly that name (no `envoy_` prefix).

use crate::host::{Host, MetricKind};
use std::cell::Cell;

/// A defined metric; a failed definition yields a metric that does nothing rather than a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    id: Option<u32>,
    kind: MetricKind,
}

/// `wasmgate_<filter>_<name>`, with anything outside `[a-zA-Z0-9_]` turned into `_` so rule
/// names from configuration make valid Prometheus names.
pub fn metric_name(filter: &str, name: &str) -> String {
    let mut out = String::with_capacity(9 + filter.len() + name.len() + 1);
    out.push_str("wasmgate_");
    for part in [filter, "_", name] {
        out.extend(part.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        }));
    }
    out
}

/// The first metric two owners (rules, providers) would both get, as (earlier owner, later
/// owner, full name). [`metric_name`] folds `-` into `_`, so `per-client` and `per_client`
/// meet, and rule `a`'s `shadow_limited` is rule `a_shadow`'s `limited`. Envoy hands both the
/// same metric and their counts silently merge, so configuration refuses such names.
pub fn shared_metric(filter: &str, owners: &[&[String]]) -> Option<(usize, usize, String)> {
    // A list, not a map: configurations have tens of names, and a map type of its own costs
    // every module several KB.
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (owner, names) in owners.iter().enumerate() {
        for name in *names {
            let full = metric_name(filter, name);
            match seen.iter().find(|(seen, _)| *seen == full) {
                Some(&(_, earlier)) if earlier != owner => return Some((earlier, owner, full)),
                Some(_) => {}
                None => seen.push((full, owner)),
            }
        }
    }
    None
}

impl Metric {
    pub fn counter(host: &(impl Host + ?Sized), filter: &str, name: &str) -> Self {
        Self::define(host, MetricKind::Counter, filter, name)
    }

    pub fn gauge(host: &(impl Host + ?Sized), filter: &str, name: &str) -> Self {
        Self::define(host, MetricKind::Gauge, filter, name)
    }

    pub fn histogram(host: &(impl Host + ?Sized), filter: &str, name: &str) -> Self {
        Self::define(host, MetricKind::Histogram, filter, name)
    }

    fn define(host: &(impl Host + ?Sized), kind: MetricKind, filter: &str, name: &str) -> Self {
        let full = metric_name(filter, name);
        let id = host.define_metric(kind, &full);
        if id.is_none() {
            log::warn!("could not define metric {full}");
        }
        Self { id, kind }
    }

    /// Adds one to a counter.
    pub fn inc(&self, host: &(impl Host + ?Sized)) {
        self.add(host, 1);
    }

    /// Adds `delta` to a counter or gauge.
    pub fn add(&self, host: &(impl Host + ?Sized), delta: i64) {
        if let Some(id) = self.id {
            host.increment_metric(id, delta);
        }
    }

    /// Sets a gauge, or records one histogram sample.
    pub fn record(&self, host: &(impl Host + ?Sized), value: u64) {
        if let Some(id) = self.id {
            host.record_metric(id, value);
        }
    }

    pub fn kind(&self) -> MetricKind {
        self.kind
    }
}

/// A request-path counter whose increments collect in the worker and reach the host only on
/// [`BatchedCounter::flush`] (a filter calls it from its root context's tick). A host call per
/// increment costs more than most filters' own per-request work; the price is that the exposed
/// value lags by up to one tick period. Lives in one worker's VM, so a `Cell` suffices.
#[derive(Debug)]
pub struct BatchedCounter {
    metric: Metric,
    pending: Cell<i64>,
}

impl BatchedCounter {
    /// Defines the counter `wasmgate_<filter>_<name>` on the host.
    pub fn new(host: &(impl Host + ?Sized), filter: &str, name: &str) -> Self {
        Self {
            metric: Metric::counter(host, filter, name),
            pending: Cell::new(0),
        }
    }

    /// Adds one locally; no host call.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n` locally; no host call.
    pub fn add(&self, n: i64) {
        self.pending.set(self.pending.get().saturating_add(n));
    }

    /// Hands the pending increments to the host: one host call, none when nothing is pending.
    pub fn flush(&self, host: &(impl Host + ?Sized)) {
        let n = self.pending.replace(0);
        if n != 0 {
            self.metric.add(host, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::FakeHost;

    #[test]
    fn owners_whose_names_fold_together_share_a_metric() {
        let rule = |n: &str| {
            vec![
                format!("rule_{n}_allowed"),
                format!("rule_{n}_shadow_limited"),
            ]
        };
        let (a, x, b) = (rule("per-client"), rule("x"), rule("per_client"));
        assert_eq!(
            shared_metric("ratelimit", &[&a, &x, &b]),
            Some((0, 2, "wasmgate_ratelimit_rule_per_client_allowed".into()))
        );
        let limited = vec!["rule_a_shadow_limited".to_string()];
        assert_eq!(
            shared_metric("ratelimit", &[&rule("a"), &limited]),
            Some((0, 1, "wasmgate_ratelimit_rule_a_shadow_limited".into()))
        );
        assert_eq!(shared_metric("ratelimit", &[&rule("a"), &rule("b")]), None);
    }

    #[test]
    fn names_follow_the_scheme_and_are_sanitised() {
        assert_eq!(
            metric_name("ratelimit", "rule_api-v1_allowed"),
            "wasmgate_ratelimit_rule_api_v1_allowed"
        );
    }

    #[test]
    fn counters_move_on_the_host() {
        let host = FakeHost::new();
        let m = Metric::counter(&host, "tracing", "traces_started");
        m.inc(&host);
        m.add(&host, 2);
        assert_eq!(host.metric("wasmgate_tracing_traces_started"), Some(3));
    }

    #[test]
    fn batched_counters_reach_the_host_only_on_flush() {
        let host = FakeHost::new();
        let c = BatchedCounter::new(&host, "tracing", "traces_started");
        c.inc();
        c.add(2);
        assert_eq!(host.metric("wasmgate_tracing_traces_started"), Some(0));
        c.flush(&host);
        assert_eq!(host.metric("wasmgate_tracing_traces_started"), Some(3));
        c.flush(&host);
        c.inc();
        c.flush(&host);
        assert_eq!(host.metric("wasmgate_tracing_traces_started"), Some(4));
    }
}
