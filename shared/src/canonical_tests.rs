use super::*;

fn strict(path: &str) -> Result<String, PathRefusal> {
    canonical_path(path, &PathPolicy::default())
}

#[test]
fn rfc_3986_dot_segment_examples() {
    // RFC 3986 §5.2.4 and the path parts of §5.4.2's abnormal examples.
    let cases = [
        ("/a/b/c/./../../g", "/a/g"),
        ("/./g", "/g"),
        ("/../g", "/g"),
        ("/../../../g", "/g"),
        ("/b/c/g.", "/b/c/g."),
        ("/b/c/.g", "/b/c/.g"),
        ("/b/c/g..", "/b/c/g.."),
        ("/b/c/..g", "/b/c/..g"),
        ("/b/c/./../g", "/b/g"),
        ("/b/c/./g/.", "/b/c/g/"),
        ("/b/c/g/./h", "/b/c/g/h"),
        ("/b/c/g/../h", "/b/c/h"),
        ("/b/c/..", "/b/"),
        ("/b/c/.", "/b/c/"),
        ("/", "/"),
        ("/..", "/"),
        ("*", "*"),
    ];
    for (raw, expected) in cases {
        assert_eq!(strict(raw).as_deref(), Ok(expected), "{raw}");
    }
}

#[test]
fn tricks_resolve_to_the_resource_upstreams_serve() {
    let cases = [
        ("/public/../admin", "/admin"),
        ("/public/../admin/users", "/admin/users"),
        ("/public/%2e%2e/admin", "/admin"),
        ("/public/%2E%2E/admin", "/admin"),
        ("/public/.%2e/admin", "/admin"),
        ("/%61dmin", "/admin"),
        ("/%41DMIN", "/ADMIN"),
        ("//admin", "/admin"),
        ("/public//..//admin", "/admin"),
        ("/api/./v1", "/api/v1"),
        ("/a/%7euser", "/a/~user"),
        ("/a/b/", "/a/b/"),
        ("/a//b//", "/a/b/"),
    ];
    for (raw, expected) in cases {
        assert_eq!(strict(raw).as_deref(), Ok(expected), "{raw}");
    }
}

#[test]
fn reserved_escapes_stay_encoded_with_upper_case_hex() {
    assert_eq!(strict("/a%3fb%3Bc%20d").as_deref(), Ok("/a%3Fb%3Bc%20d"));
    assert_eq!(strict("/caf%c3%a9").as_deref(), Ok("/caf%C3%A9"));
    assert_eq!(strict("/100%25").as_deref(), Ok("/100%25"));
}

#[test]
fn ambiguous_paths_are_refused_by_default() {
    let cases = [
        ("admin", PathRefusal::NotOriginForm),
        ("", PathRefusal::NotOriginForm),
        ("/public%2F..%2Fadmin", PathRefusal::EncodedSlash),
        ("/public%2f..%2fadmin", PathRefusal::EncodedSlash),
        ("/public/..%5Cadmin", PathRefusal::EncodedSlash),
        ("/public/..\\admin", PathRefusal::Backslash),
        ("/public/..;/admin", PathRefusal::PathParameter),
        ("/admin;jsessionid=1", PathRefusal::PathParameter),
        ("/a%00b", PathRefusal::ControlCharacter),
        ("/a%0Ab", PathRefusal::ControlCharacter),
        ("/a%7fb", PathRefusal::ControlCharacter),
        ("/a\tb", PathRefusal::ControlCharacter),
        ("/a\u{0}b", PathRefusal::ControlCharacter),
        ("/a b", PathRefusal::InvalidCharacter),
        ("/a#b", PathRefusal::InvalidCharacter),
        ("/café", PathRefusal::InvalidCharacter),
        ("/a%zz", PathRefusal::InvalidEscape),
        ("/a%4", PathRefusal::InvalidEscape),
        ("/a%", PathRefusal::InvalidEscape),
        ("/public/%252e%252e/admin", PathRefusal::DoubleEncoding),
        ("/%2561dmin", PathRefusal::DoubleEncoding),
        ("/%25%32%65", PathRefusal::DoubleEncoding),
    ];
    for (raw, refusal) in cases {
        assert_eq!(strict(raw), Err(refusal), "{raw:?}");
    }
}

#[test]
fn options_pass_what_they_state() {
    let keep_slashes = PathPolicy {
        escaped_slashes: EscapedSlashes::Keep,
        ..PathPolicy::default()
    };
    assert_eq!(
        canonical_path("/repos/a%2fb/x", &keep_slashes).as_deref(),
        Ok("/repos/a%2Fb/x")
    );
    assert_eq!(
        canonical_path("/public%2F..%2Fadmin", &keep_slashes),
        Err(PathRefusal::HiddenDotSegment)
    );
    assert_eq!(
        canonical_path("/a/..%5C", &keep_slashes),
        Err(PathRefusal::HiddenDotSegment)
    );

    let slash = PathPolicy {
        backslash: Backslash::Slash,
        ..PathPolicy::default()
    };
    assert_eq!(
        canonical_path("/public/..\\admin", &slash).as_deref(),
        Ok("/admin")
    );

    let params = PathPolicy {
        path_parameters: PathParameters::Keep,
        ..PathPolicy::default()
    };
    assert_eq!(
        canonical_path("/cars;color=red/x", &params).as_deref(),
        Ok("/cars;color=red/x")
    );
    for hidden in ["/public/..;/admin", "/public/..;x=1/admin", "/a/.;/b"] {
        assert_eq!(
            canonical_path(hidden, &params),
            Err(PathRefusal::HiddenDotSegment),
            "{hidden}"
        );
    }
}

#[test]
fn every_refusal_is_a_400_with_the_shared_body() {
    let reply = PathRefusal::EncodedSlash.reply();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error, "invalid_path");
    assert!(reply.message.contains("%2F"));
}

#[test]
fn hosts_lose_case_port_and_one_trailing_dot() {
    let cases = [
        ("API.Example.com", "api.example.com"),
        ("api.example.com.", "api.example.com"),
        ("api.example.com.:8443", "api.example.com"),
        ("api.example.com..", "api.example.com."),
        ("[::1]:80", "[::1]"),
        ("", ""),
    ];
    for (raw, expected) in cases {
        assert_eq!(canonical_host(raw), expected, "{raw}");
    }
}

/// xorshift64*: a reproducible stream without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces that combine into the tricks the refusals and the resolution are about.
const PIECES: &[&str] = &[
    "/", "//", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "\\", ";", "%3b", "%25", "%252e",
    "%00", "%", "%4", "a", "B", "%41", "%61", "~", "%7e", "admin", "public", "?", "#", " ", "é",
    "%c3", "-", "_", "%zz",
];

fn random_path(rng: &mut Rng) -> String {
    let mut path = String::new();
    if rng.below(8) != 0 {
        path.push('/');
    }
    for _ in 0..rng.below(12) {
        path.push_str(PIECES[rng.below(PIECES.len())]);
    }
    path
}

fn assert_canonical(raw: &str, canonical: &str, policy: &PathPolicy) {
    assert_eq!(
        canonical_path(canonical, policy).as_deref(),
        Ok(canonical),
        "not a fixed point: {raw:?} -> {canonical:?}"
    );
    if canonical == "*" {
        return;
    }
    assert!(canonical.starts_with('/'), "{raw:?} -> {canonical:?}");
    assert!(!canonical.contains("//"), "{raw:?} -> {canonical:?}");
    assert!(
        !canonical.split('/').any(|s| s == "." || s == ".."),
        "dot segment: {raw:?} -> {canonical:?}"
    );
    let bytes = canonical.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            let h = bytes.get(i + 1).copied().and_then(hex_value);
            let l = bytes.get(i + 2).copied().and_then(hex_value);
            let (Some(h), Some(l)) = (h, l) else {
                panic!("bad escape: {raw:?} -> {canonical:?}")
            };
            assert!(
                !is_unreserved(h << 4 | l),
                "encoded unreserved: {raw:?} -> {canonical:?}"
            );
        }
    }
}

#[test]
fn any_path_is_refused_or_canonical() {
    let policies = [
        PathPolicy::default(),
        PathPolicy {
            escaped_slashes: EscapedSlashes::Keep,
            backslash: Backslash::Slash,
            path_parameters: PathParameters::Keep,
        },
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..100_000 {
        let raw = random_path(&mut rng);
        for policy in &policies {
            if let Ok(canonical) = canonical_path(&raw, policy) {
                assert_canonical(&raw, &canonical, policy);
            }
        }
    }
}
