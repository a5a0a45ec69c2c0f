//! wasmgate's fuzz targets as plain functions. Each target is `fn run(data: &[u8])`: it decodes
//! the bytes into what a client, an identity provider, a rate-limit service or an operator
//! could send, runs the parser or the whole decision, and panics when an invariant breaks.
//! cargo-fuzz (`fuzz/`) drives them under libFuzzer on nightly; `tests/replay.rs` runs every
//! committed corpus file and every seed through the same functions on stable, in `make test`.
//! docs/fuzzing.md lists the targets and what each asserts.

// A target reports a finding by panicking; nothing here runs in a module.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

pub mod authn_parsers;
pub mod authn_request;
pub mod configs;
pub mod differential;
pub mod input;
pub mod paths;
pub mod ratelimit_targets;
pub mod tracing_targets;

pub use input::{Input, Seed};

/// One fuzz target: its name (the cargo-fuzz binary and `fuzz/corpus/<name>/`), its function
/// and the seed inputs built from the unit tests' vectors.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target, in priority order (the order `make fuzz` runs them).
pub const TARGETS: &[Target] = &[
    Target {
        name: "jws_token",
        run: authn_parsers::jws_token,
        seeds: authn_parsers::jws_token_seeds,
    },
    Target {
        name: "jwt_claims",
        run: authn_parsers::jwt_claims,
        seeds: authn_parsers::jwt_claims_seeds,
    },
    Target {
        name: "jwks",
        run: authn_parsers::jwks,
        seeds: authn_parsers::jwks_seeds,
    },
    Target {
        name: "pem_spki",
        run: authn_parsers::pem_spki,
        seeds: authn_parsers::pem_spki_seeds,
    },
    Target {
        name: "credential_source",
        run: authn_parsers::credential_source,
        seeds: authn_parsers::credential_source_seeds,
    },
    Target {
        name: "authn_request",
        run: authn_request::run,
        seeds: authn_request::seeds,
    },
    Target {
        name: "trace_headers",
        run: tracing_targets::trace_headers,
        seeds: tracing_targets::trace_headers_seeds,
    },
    Target {
        name: "tracing_plan",
        run: tracing_targets::tracing_plan,
        seeds: tracing_targets::tracing_plan_seeds,
    },
    Target {
        name: "canonical_path",
        run: paths::canonical_path,
        seeds: paths::canonical_path_seeds,
    },
    Target {
        name: "request_matcher",
        run: paths::request_matcher,
        seeds: paths::request_matcher_seeds,
    },
    Target {
        name: "xff_hops",
        run: ratelimit_targets::xff_hops,
        seeds: ratelimit_targets::xff_hops_seeds,
    },
    Target {
        name: "rls_response",
        run: ratelimit_targets::rls_response,
        seeds: ratelimit_targets::rls_response_seeds,
    },
    Target {
        name: "ratelimit_request",
        run: ratelimit_targets::ratelimit_request,
        seeds: ratelimit_targets::ratelimit_request_seeds,
    },
    Target {
        name: "config_authn",
        run: configs::authn,
        seeds: configs::authn_seeds,
    },
    Target {
        name: "config_ratelimit",
        run: configs::ratelimit,
        seeds: configs::ratelimit_seeds,
    },
    Target {
        name: "config_tracing",
        run: configs::tracing,
        seeds: configs::tracing_seeds,
    },
    Target {
        name: "verify_rsa",
        run: differential::rsa,
        seeds: differential::rsa_seeds,
    },
    Target {
        name: "verify_ecdsa",
        run: differential::ecdsa,
        seeds: differential::ecdsa_seeds,
    },
    Target {
        name: "verify_ed25519",
        run: differential::ed25519,
        seeds: differential::ed25519_seeds,
    },
];

/// Runs target `name` on `data`; the cargo-fuzz binaries are this one call.
pub fn run(name: &str, data: &[u8]) {
    if let Some(t) = target(name) {
        (t.run)(data);
    }
}

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// RFC 9110 field rules a written header must keep: a lower-case token name (or one of the
/// pseudo-headers), and a value without NUL, CR, LF or another control byte but HTAB, which
/// would end the field early or split it in two on an HTTP/1 hop.
pub fn assert_valid_field(name: &str, value: &str, what: &str) {
    let token =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    let pseudo = matches!(
        name,
        ":path" | ":method" | ":authority" | ":scheme" | ":status"
    );
    assert!(
        pseudo || (!name.is_empty() && name.bytes().all(token)),
        "{what}: invalid header name {name:?}"
    );
    assert!(
        !value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f),
        "{what}: invalid value of {name}: {value:?}"
    );
}

/// Request headers as Envoy's codecs hand them to a filter: lower-case token names, values
/// trimmed and without control bytes but HTAB. `text` holds one `name: value` per line; other
/// lines are dropped.
pub fn request_headers(text: &str) -> Vec<(String, String)> {
    let token =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    text.split('\n')
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            let name = name.to_ascii_lowercase();
            let value = value.trim_matches([' ', '\t']);
            let ok = !name.is_empty()
                && name.bytes().all(token)
                && !value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f);
            ok.then(|| (name, value.to_string()))
        })
        .collect()
}

/// A `:path` as Envoy's codecs let it through: no control byte and no space.
pub fn request_path(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_ascii_control() && *c != ' ')
        .collect()
}

/// A `:method` as Envoy's codecs let it through: a token, else `GET`.
pub fn request_method(text: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !text.is_empty() && text.bytes().all(token) {
        text.to_string()
    } else {
        "GET".to_string()
    }
}
