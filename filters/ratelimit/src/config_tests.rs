use super::*;
use wasmgate_shared::config::parse;

fn compile(json: &str) -> Result<RatelimitConfig, ConfigError> {
    parse::<RawRatelimitConfig>(Some(json.as_bytes())).and_then(RawRatelimitConfig::compile)
}

fn error(json: &str) -> String {
    match compile(json) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_configuration_means_no_rules_connection_address_and_both_header_styles() {
    let c = compile("{}").unwrap();
    assert!(c.rules.is_empty());
    assert_eq!(
        c.xff_trusted_hops, 0,
        "never trust x-forwarded-for by default"
    );
    assert_eq!(
        c.headers,
        Headers {
            style: HeaderStyle::Both,
            on_allowed: false
        }
    );
}

#[test]
fn rule_defaults() {
    let c = compile(r#"{"rules":[{"name":"r","capacity":5},{"name":"k","capacity":5,"key":[{"source":"client"}]}]}"#)
        .unwrap();
    let r = &c.rules[0];
    assert_eq!(r.limit.refill_amount(), 5, "refill defaults to capacity");
    assert_eq!(r.limit.period_ns(), 1_000_000_000);
    assert_eq!(r.cost, 1);
    assert_eq!(r.budget, 0, "a constant key is one bucket");
    assert_eq!(r.slot_count(), 1);
    assert_eq!(
        r.on_missing_key,
        MissingKey::Fallback,
        "a missing key must not be a way around the limit"
    );
    assert!(!r.shadow);
    assert_eq!(c.rules[1].budget, DEFAULT_BUDGET);
}

#[test]
fn each_rejection_names_its_field() {
    let cases = [
        (r#"{"rules":[{"capacity":1}]}"#, "rules[0]: missing field `name`"),
        (r#"{"rules":[{"name":"r"}]}"#, "rules[0]: missing field `capacity`"),
        (
            r#"{"rules":[{"name":"R","capacity":1}]}"#,
            "rules[0].name: must be 1-64 characters of a-z, 0-9, '_' or '-'",
        ),
        (
            r#"{"rules":[{"name":"r","capacity":1},{"name":"r","capacity":2}]}"#,
            "rules[1].name: duplicate rule name",
        ),
        (
            r#"{"rules":[{"name":"per-user","capacity":1},{"name":"per_user","capacity":2}]}"#,
            "rules[1].name: shares the metric wasmgate_ratelimit_rule_per_user_allowed with rules[0] `per-user`: their counts would merge",
        ),
        (
            r#"{"rules":[{"name":"a","capacity":1},{"name":"a_shadow","capacity":2}]}"#,
            "rules[1].name: shares the metric wasmgate_ratelimit_rule_a_shadow_limited with rules[0] `a`: their counts would merge",
        ),
        (
            r#"{"rules":[{"name":"r","capacity":0}]}"#,
            "rules[0].capacity: must be between 1 and 1000000000000",
        ),
        (
            r#"{"rules":[{"name":"r","capacity":1,"refill":0}]}"#,
            "rules[0].refill: must be between 1 and 1000000000000",
        ),
        (
            r#"{"rules":[{"name":"r","capacity":1,"period_ms":0}]}"#,
            "rules[0].period_ms: must be between 1 and 31622400000 (366 days)",
        ),
        (
            r#"{"rules":[{"name":"r","capacity":2,"cost":3}]}"#,
            "rules[0].cost: must be between 1 and capacity (a larger cost could never be admitted)",
        ),
        (
            r#"{"rules":[{"name":"r","capacity":2,"cost":0}]}"#,
            "rules[0].cost: must be between 1 and capacity (a larger cost could never be admitted)",
        ),
        (
            r#"{"rules":[{"name":"r","capacity":1,"budget":10}]}"#,
            "rules[0].budget: only a rule with a key has a budget (a constant key is one bucket)",
        ),
        (
            r#"{"rules":[{"name":"r","capacity":1,"key":[{"source":"path"}],"budget":0}]}"#,
            "rules[0].budget: must be between 1 and 1000000",
        ),
        (
            r#"{"rules":[{"name":"r","capacity":1,"key":[{"source":"header","name":"X-User"}]}]}"#,
            "rules[0].key[0].name: must be a lower-case header name",
        ),
        (
            r#"{"rules":[{"name":"r","capacity":1,"match":{"prefix":"api"}}]}"#,
            "rules[0].match.prefix: must start with '/'",
        ),
        (
            r#"{"xff_trusted_hops":17}"#,
            "xff_trusted_hops: must be at most 16",
        ),
        (
            r#"{"rules":[{"name":"r","capacity":1,"on_missing_key":"allow"}]}"#,
            "rules[0].on_missing_key: unknown variant `allow`, expected `fallback` or `skip`",
        ),
        (
            r#"{"rate_limit_headers":{"style":"draft"}}"#,
            "rate_limit_headers.style: unknown variant `draft`, expected one of `ietf`, `x_ratelimit`, `both`, `none`",
        ),
    ];
    for (json, want) in cases {
        assert_eq!(error(json), want, "{json}");
    }
}

#[test]
fn too_many_slots_in_total_is_rejected() {
    let rules: Vec<String> = (0..2)
        .map(|i| {
            format!(r#"{{"name":"r{i}","capacity":1,"key":[{{"source":"client"}}],"budget":{MAX_BUDGET}}}"#)
        })
        .collect();
    let json = format!(r#"{{"rules":[{}]}}"#, rules.join(","));
    assert_eq!(
        error(&json),
        "rules[1].budget: the rules' budgets add up to more than 2000000 slots"
    );
}

#[test]
fn too_many_rules_is_rejected() {
    let rules: Vec<String> = (0..=MAX_RULES)
        .map(|i| format!(r#"{{"name":"r{i}","capacity":1}}"#))
        .collect();
    let json = format!(r#"{{"rules":[{}]}}"#, rules.join(","));
    assert_eq!(error(&json), "rules: at most 64 rules");
}

#[test]
fn unknown_fields_are_rejected_everywhere() {
    for json in [
        r#"{"rule":[]}"#,
        r#"{"rules":[{"name":"r","capacity":1,"burst":2}]}"#,
        r#"{"rate_limit_headers":{"on_allow":true}}"#,
        r#"{"rules":[{"name":"r","capacity":1,"key":[{"source":"client","hops":1}]}]}"#,
        r#"{"rules":[{"name":"r","capacity":1,"key":[{"source":"path","name":"x"}]}]}"#,
        r#"{"rules":[{"name":"r","capacity":1,"key":[{"source":"header"}]}]}"#,
    ] {
        assert!(compile(json).is_err(), "{json}");
    }
}

#[test]
fn namespace_changes_with_the_bucket_definition_only() {
    let ns = |json: &str| compile(json).unwrap().rules[0].namespace.clone();
    let base = ns(r#"{"rules":[{"name":"r","capacity":5}]}"#);
    assert_eq!(
        base,
        ns(r#"{"rules":[{"name":"r","capacity":5,"shadow":true,"match":{"prefix":"/a"}}]}"#)
    );
    assert_ne!(base, ns(r#"{"rules":[{"name":"r","capacity":6}]}"#));
    assert_ne!(
        base,
        ns(r#"{"rules":[{"name":"r","capacity":5,"period_ms":2000}]}"#)
    );
    assert_ne!(base, ns(r#"{"rules":[{"name":"q","capacity":5}]}"#));
    assert!(base.starts_with("wasmgate.ratelimit."));
}
