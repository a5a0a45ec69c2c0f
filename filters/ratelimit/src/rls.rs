//! The messages of `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`, only the
//! fields this filter sends or reads. Field numbers from envoy/service/ratelimit/v3/rls.proto,
//! envoy/extensions/common/ratelimit/v3/ratelimit.proto and envoy/config/core/v3/base.proto;
//! fields left out are skipped when decoding, as protobuf requires.

use prost::Message;

pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub const METHOD: &str = "ShouldRateLimit";

#[derive(Clone, PartialEq, Message)]
pub struct RateLimitRequest {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(message, repeated, tag = "2")]
    pub descriptors: Vec<Descriptor>,
    #[prost(uint32, tag = "3")]
    pub hits_addend: u32,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`.
#[derive(Clone, PartialEq, Message)]
pub struct Descriptor {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
    /// `google.protobuf.UInt64Value` (a message holding `value = 1`): this descriptor's own
    /// hits, when it differs from the request's `hits_addend`.
    #[prost(message, optional, tag = "3")]
    pub hits_addend: Option<UInt64Value>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Entry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, Copy, PartialEq, Message)]
pub struct UInt64Value {
    #[prost(uint64, tag = "1")]
    pub value: u64,
}

/// `RateLimitResponse.Code`.
pub const CODE_UNKNOWN: i32 = 0;
pub const CODE_OK: i32 = 1;
pub const CODE_OVER_LIMIT: i32 = 2;

#[derive(Clone, PartialEq, Message)]
pub struct RateLimitResponse {
    #[prost(int32, tag = "1")]
    pub overall_code: i32,
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<DescriptorStatus>,
    #[prost(message, repeated, tag = "3")]
    pub response_headers_to_add: Vec<HeaderValue>,
    #[prost(message, repeated, tag = "4")]
    pub request_headers_to_add: Vec<HeaderValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DescriptorStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(message, optional, tag = "2")]
    pub current_limit: Option<RateLimit>,
    #[prost(uint32, tag = "3")]
    pub limit_remaining: u32,
    #[prost(message, optional, tag = "4")]
    pub duration_until_reset: Option<ProtoDuration>,
}

/// `RateLimitResponse.RateLimit`.
#[derive(Clone, PartialEq, Message)]
pub struct RateLimit {
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    #[prost(int32, tag = "2")]
    pub unit: i32,
    #[prost(string, tag = "3")]
    pub name: String,
}

impl RateLimit {
    /// The unit's length in seconds; `None` for UNKNOWN or a value this filter does not know.
    pub fn unit_seconds(&self) -> Option<u64> {
        match self.unit {
            1 => Some(1),
            2 => Some(60),
            3 => Some(3_600),
            4 => Some(86_400),
            7 => Some(7 * 86_400),
            5 => Some(30 * 86_400),
            6 => Some(365 * 86_400),
            _ => None,
        }
    }
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl ProtoDuration {
    /// Whole seconds rounded up; negative durations are 0.
    pub fn ceil_seconds(&self) -> u64 {
        let s = u64::try_from(self.seconds).unwrap_or(0);
        if self.nanos > 0 {
            s.saturating_add(1)
        } else {
            s
        }
    }
}

/// `envoy.config.core.v3.HeaderValue` (`raw_value`, field 3, is read when `value` is empty).
#[derive(Clone, PartialEq, Message)]
pub struct HeaderValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
    #[prost(bytes = "vec", tag = "3")]
    pub raw_value: Vec<u8>,
}

impl HeaderValue {
    pub fn text(&self) -> Option<&str> {
        if self.value.is_empty() && !self.raw_value.is_empty() {
            std::str::from_utf8(&self.raw_value).ok()
        } else {
            Some(&self.value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encodes_to_the_protobuf_wire_bytes() {
        let req = RateLimitRequest {
            domain: "d".into(),
            descriptors: vec![Descriptor {
                entries: vec![Entry {
                    key: "k".into(),
                    value: "v".into(),
                }],
                hits_addend: None,
            }],
            hits_addend: 2,
        };
        // 0a 01 'd' | 12 08 (0a 06 (0a 01 'k' 12 01 'v')) | 18 02
        let want = [
            0x0a, 1, b'd', 0x12, 8, 0x0a, 6, 0x0a, 1, b'k', 0x12, 1, b'v', 0x18, 2,
        ];
        assert_eq!(req.encode_to_vec(), want);
    }

    #[test]
    fn descriptor_hits_addend_is_a_wrapper_message() {
        let d = Descriptor {
            entries: Vec::new(),
            hits_addend: Some(UInt64Value { value: 5 }),
        };
        assert_eq!(d.encode_to_vec(), [0x1a, 2, 0x08, 5]);
    }

    #[test]
    fn response_decodes_and_skips_unknown_fields() {
        let full = RateLimitResponse {
            overall_code: CODE_OVER_LIMIT,
            statuses: vec![DescriptorStatus {
                code: CODE_OVER_LIMIT,
                current_limit: Some(RateLimit {
                    requests_per_unit: 10,
                    unit: 2,
                    name: "n".into(),
                }),
                limit_remaining: 0,
                duration_until_reset: Some(ProtoDuration {
                    seconds: 3,
                    nanos: 1,
                }),
            }],
            response_headers_to_add: vec![HeaderValue {
                key: "x-a".into(),
                value: "1".into(),
                raw_value: Vec::new(),
            }],
            request_headers_to_add: Vec::new(),
        };
        let mut bytes = full.encode_to_vec();
        // raw_body (5) and an unknown varint field (99) a newer service might send.
        bytes.extend_from_slice(&[0x2a, 2, b'h', b'i', 0x98, 0x06, 1]);
        let got = RateLimitResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(got, full);
        let status = &got.statuses[0];
        assert_eq!(
            status.current_limit.as_ref().unwrap().unit_seconds(),
            Some(60)
        );
        assert_eq!(status.duration_until_reset.unwrap().ceil_seconds(), 4);
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(RateLimitResponse::decode(&[0x0a, 0xff, 0xff][..]).is_err());
        assert!(RateLimitResponse::decode(&[0x12][..]).is_err());
    }

    #[test]
    fn raw_value_is_read_when_value_is_empty() {
        let h = HeaderValue {
            key: "k".into(),
            value: String::new(),
            raw_value: b"raw".to_vec(),
        };
        assert_eq!(h.text(), Some("raw"));
    }
}
