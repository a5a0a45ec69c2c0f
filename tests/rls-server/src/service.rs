//! `envoy.service.ratelimit.v3.RateLimitService` over a limitador `AsyncRateLimiter`.
//!
//! The mapping is the one Limitador's own server uses: namespace = `domain`; the descriptors
//! become a CEL list `descriptors`, each a map of its entries, so a limit's conditions and
//! variables read `descriptors[0]['api_key']`; `hits_addend` (0 means 1) is the delta.
//! Counting and expiry are limitador's, the state lives in Redis. Unlike Limitador's server
//! this one also fills `statuses` (one per descriptor) from the counters, as envoyproxy/ratelimit
//! does, so a client sees `current_limit`, `limit_remaining` and `duration_until_reset`.

use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration as PbDuration;
use limitador::counter::Counter;
use limitador::limit::{Context, Namespace};
use limitador::AsyncRateLimiter;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

pub struct Rls {
    pub limiter: AsyncRateLimiter,
    pub storage_timeout: Duration,
    /// Held across one check when checks take turns (see `Args::concurrent`).
    pub turn: Option<Mutex<()>>,
    pub draft03_headers: bool,
    pub request_headers: Vec<(String, String)>,
    pub served: AtomicU64,
}

#[tonic::async_trait]
impl RateLimitService for Rls {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        let req = request.into_inner();
        self.served.fetch_add(1, Ordering::Relaxed);
        if req.domain.is_empty() {
            return Err(Status::invalid_argument("domain must not be empty"));
        }
        let namespace = Namespace::from(req.domain.as_str());
        let values: Vec<HashMap<String, String>> = req
            .descriptors
            .iter()
            .map(|d| {
                d.entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.clone()))
                    .collect()
            })
            .collect();
        let delta = u64::from(req.hits_addend.max(1));
        let mut ctx = Context::default();
        ctx.list_binding("descriptors".to_string(), values);

        let _turn = match &self.turn {
            Some(m) => Some(m.lock().await),
            None => None,
        };
        let check = self
            .limiter
            .check_rate_limited_and_update(&namespace, &ctx, delta);
        let mut result = match tokio::time::timeout(self.storage_timeout, check).await {
            Ok(Ok(result)) => result,
            // Limitador's server answers UNAVAILABLE too: the client's failure policy decides.
            Ok(Err(e)) => {
                eprintln!("rls-server: limit storage: {e}");
                return Err(Status::unavailable(format!("limit storage: {e}")));
            }
            Err(_) => {
                eprintln!("rls-server: limit storage timed out");
                return Err(Status::unavailable("limit storage timed out"));
            }
        };
        let statuses = statuses(
            req.descriptors.len(),
            &result.counters,
            result.limited,
            delta,
        );
        let mut response_headers_to_add = Vec::new();
        if self.draft03_headers {
            let mut fields: Vec<(String, String)> = result.response_header().into_iter().collect();
            fields.sort();
            response_headers_to_add = fields.into_iter().map(header).collect();
        }
        let request_headers_to_add = if result.limited {
            Vec::new()
        } else {
            self.request_headers.iter().cloned().map(header).collect()
        };
        let code = if result.limited {
            Code::OverLimit
        } else {
            Code::Ok
        };
        Ok(Response::new(RateLimitResponse {
            overall_code: code.into(),
            statuses,
            response_headers_to_add,
            request_headers_to_add,
            ..Default::default()
        }))
    }
}

fn header((key, value): (String, String)) -> HeaderValue {
    HeaderValue {
        key,
        value,
        ..Default::default()
    }
}

/// One status per descriptor: the most restrictive counter whose limit reads that descriptor
/// (a limit that reads none governs them all). `remaining` of a counter is after this request
/// when it was admitted, before it when refused.
pub fn statuses(
    descriptors: usize,
    counters: &[Counter],
    limited: bool,
    delta: u64,
) -> Vec<DescriptorStatus> {
    (0..descriptors)
        .map(|i| {
            let tag = format!("descriptors[{i}]");
            let reads = |c: &Counter| {
                let limit = c.limit();
                let mut all = limit.conditions().into_iter().chain(limit.variables());
                let mut any_descriptor = false;
                let hit = all.any(|s| {
                    any_descriptor |= s.contains("descriptors[");
                    s.contains(&tag)
                });
                hit || !any_descriptor
            };
            let tightest = counters
                .iter()
                .filter(|c| reads(c))
                .min_by_key(|c| c.remaining().unwrap_or(c.max_value()));
            let Some(c) = tightest else {
                return DescriptorStatus {
                    code: Code::Ok.into(),
                    ..Default::default()
                };
            };
            let remaining = c.remaining().unwrap_or(c.max_value());
            let over = limited && remaining < delta;
            let reset = c.expires_in().unwrap_or(c.window());
            DescriptorStatus {
                code: if over { Code::OverLimit } else { Code::Ok }.into(),
                current_limit: Some(rate_limit(c)),
                limit_remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                duration_until_reset: Some(PbDuration {
                    seconds: i64::try_from(reset.as_secs()).unwrap_or(i64::MAX),
                    nanos: i32::try_from(reset.subsec_nanos()).unwrap_or(0),
                }),
                ..Default::default()
            }
        })
        .collect()
}

/// RLS units are whole calendar units; a window of another length is given per second.
fn rate_limit(c: &Counter) -> RateLimit {
    let seconds = c.window().as_secs();
    let max = c.max_value();
    let (unit, per_unit) = match seconds {
        1 => (Unit::Second, max),
        60 => (Unit::Minute, max),
        3600 => (Unit::Hour, max),
        86_400 => (Unit::Day, max),
        s => (Unit::Second, max / s.max(1)),
    };
    RateLimit {
        name: c.limit().name().unwrap_or_default().to_string(),
        requests_per_unit: u32::try_from(per_unit).unwrap_or(u32::MAX),
        unit: unit.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use limitador::limit::Limit;
    use std::sync::Arc;

    fn counter(limit: Limit, descriptors: Vec<HashMap<String, String>>) -> Counter {
        let mut ctx = Context::default();
        ctx.list_binding("descriptors".to_string(), descriptors);
        Counter::new(Arc::new(limit), &ctx).unwrap().unwrap()
    }

    fn key_limit(max: u64, seconds: u64, index: usize) -> Limit {
        Limit::new(
            "ns",
            max,
            seconds,
            Vec::<limitador::limit::Predicate>::new(),
            vec![format!("descriptors[{index}]['key']").try_into().unwrap()],
        )
    }

    fn descriptors() -> Vec<HashMap<String, String>> {
        let d = HashMap::from([("key".to_string(), "a".to_string())]);
        vec![d.clone(), d]
    }

    #[test]
    fn each_descriptor_reports_its_own_tightest_counter() {
        let mut first = counter(key_limit(10, 60, 0), descriptors());
        first.set_remaining(7);
        first.set_expires_in(Duration::from_millis(1500));
        let mut second = counter(key_limit(5, 1, 1), descriptors());
        second.set_remaining(0);
        let got = statuses(3, &[first, second], true, 1);
        assert_eq!(got[0].code, i32::from(Code::Ok));
        assert_eq!(got[0].limit_remaining, 7);
        let limit = got[0].current_limit.clone().unwrap();
        assert_eq!(
            (limit.requests_per_unit, limit.unit),
            (10, i32::from(Unit::Minute))
        );
        let reset = got[0].duration_until_reset.unwrap();
        assert_eq!((reset.seconds, reset.nanos), (1, 500_000_000));
        assert_eq!(got[1].code, i32::from(Code::OverLimit));
        assert_eq!(
            got[1].current_limit.clone().unwrap().unit,
            i32::from(Unit::Second)
        );
        // A descriptor no limit reads is OK with no limit.
        assert_eq!(got[2].code, i32::from(Code::Ok));
        assert!(got[2].current_limit.is_none());
    }

    #[test]
    fn odd_windows_are_given_per_second() {
        let c = counter(key_limit(600, 120, 0), descriptors());
        let got = rate_limit(&c);
        assert_eq!(
            (got.requests_per_unit, got.unit),
            (5, i32::from(Unit::Second))
        );
    }
}
