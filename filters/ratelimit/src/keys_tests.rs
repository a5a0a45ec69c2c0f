use super::*;
use wasmgate_shared::host::FakeHost;

fn view(host: &FakeHost) -> wasmgate_shared::RequestView {
    wasmgate_shared::RequestView::read(host, &Default::default()).unwrap()
}

const SEED: (u64, u64) = (7, 9);

fn parts(json: &str) -> Vec<KeyPart> {
    let raw: Vec<RawKeyPart> = serde_json::from_str(json).unwrap();
    raw.into_iter().map(|p| p.compile().unwrap()).collect()
}

#[test]
fn strip_port_table() {
    let cases = [
        ("10.0.0.1:4321", "10.0.0.1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("10.0.0.1", "10.0.0.1"),
    ];
    for (input, want) in cases {
        assert_eq!(strip_port(input), want, "{input}");
    }
}

#[test]
fn client_is_the_connection_address_by_default_even_with_xff() {
    let host = FakeHost::new()
        .with_property(&["source", "address"], b"10.0.0.1:5000")
        .with_request_header("x-forwarded-for", "6.6.6.6");
    assert_eq!(
        client_address(&host, &view(&host), 0).as_deref(),
        Some("10.0.0.1")
    );
}

#[test]
fn xff_entry_at_trusted_hops_from_the_right() {
    let host = FakeHost::new()
        .with_property(&["source", "address"], b"10.0.0.1:5000")
        .with_request_header("x-forwarded-for", "6.6.6.6, 1.1.1.1, 2.2.2.2");
    assert_eq!(
        client_address(&host, &view(&host), 1).as_deref(),
        Some("2.2.2.2")
    );
    assert_eq!(
        client_address(&host, &view(&host), 2).as_deref(),
        Some("1.1.1.1")
    );
    assert_eq!(
        client_address(&host, &view(&host), 3).as_deref(),
        Some("6.6.6.6")
    );
    // Fewer entries than trusted hops: the connection address.
    assert_eq!(
        client_address(&host, &view(&host), 4).as_deref(),
        Some("10.0.0.1")
    );
}

#[test]
fn same_values_same_slot_other_values_other_fingerprint() {
    let p = parts(r#"[{"source":"header","name":"x-user"},{"source":"path"}]"#);
    let a = FakeHost::new()
        .with_request("GET", "/x?q=1", "h")
        .with_request_header("x-user", "alice");
    let a2 = FakeHost::new()
        .with_request("GET", "/x?q=2", "h")
        .with_request_header("x-user", "alice");
    let b = FakeHost::new()
        .with_request("GET", "/x", "h")
        .with_request_header("x-user", "bob");
    let ra = locate(&a, &view(&a), &p, 1000, SEED, 0).unwrap();
    assert_eq!(Some(ra), locate(&a2, &view(&a2), &p, 1000, SEED, 0));
    assert_ne!(
        ra.fingerprint,
        locate(&b, &view(&b), &p, 1000, SEED, 0)
            .unwrap()
            .fingerprint
    );
    assert!(ra.slot < 1000);
    // Another seed puts the key elsewhere.
    assert_ne!(Some(ra), locate(&a, &view(&a), &p, 1000, (1, 1), 0));
}

#[test]
fn missing_header_is_no_key() {
    let p = parts(r#"[{"source":"header","name":"x-user"}]"#);
    let host = FakeHost::new().with_request("GET", "/", "h");
    assert_eq!(locate(&host, &view(&host), &p, 10, SEED, 0), None);
}

#[test]
fn parts_cannot_be_shifted_into_each_other() {
    let p = parts(r#"[{"source":"header","name":"a"},{"source":"header","name":"b"}]"#);
    let one = FakeHost::new()
        .with_request_header("a", "xy")
        .with_request_header("b", "z");
    let two = FakeHost::new()
        .with_request_header("a", "x")
        .with_request_header("b", "yz");
    assert_ne!(
        locate(&one, &view(&one), &p, 1 << 20, SEED, 0)
            .unwrap()
            .fingerprint,
        locate(&two, &view(&two), &p, 1 << 20, SEED, 0)
            .unwrap()
            .fingerprint
    );
}

#[test]
fn slots_spread_over_the_budget() {
    let p = parts(r#"[{"source":"header","name":"k"}]"#);
    let mut used = std::collections::HashSet::new();
    for i in 0..1000 {
        let host = FakeHost::new().with_request_header("k", &i.to_string());
        used.insert(locate(&host, &view(&host), &p, 64, SEED, 0).unwrap().slot);
    }
    assert_eq!(used.len(), 64);
}

#[test]
fn unknown_source_or_field_is_rejected() {
    assert!(serde_json::from_str::<RawKeyPart>(r#"{"source":"cookie"}"#).is_err());
    assert!(serde_json::from_str::<RawKeyPart>(r#"{"source":"header","nam":"x"}"#).is_err());
}

#[test]
fn name_belongs_to_header_parts_only() {
    let compile = |json: &str| {
        serde_json::from_str::<RawKeyPart>(json)
            .unwrap()
            .compile()
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        compile(r#"{"source":"path","name":"x"}"#),
        Err("name: only a header key part has a name".to_string())
    );
    assert_eq!(
        compile(r#"{"source":"header"}"#),
        Err("name: must be a lower-case header name".to_string())
    );
    assert_eq!(
        compile(r#"{"source":"header","name":"x-user"}"#),
        Ok(KeyPart::Header("x-user".to_string()))
    );
}
