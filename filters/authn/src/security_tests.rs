//! What the upstream could read differently from what was judged: path tricks, header twins,
//! repeated or extra credentials, credentials left on public routes.

use super::tests::{api_keys, harness, jwks, keys, provider, Harness};
use super::*;
use crate::testkit::*;
use jwt_simple::prelude::*;
use serde_json::json;

/// The demo rule set: public `/public`, role `admin` for `/admin`, any token elsewhere.
fn gateway() -> (Harness, String, String) {
    let k = keys();
    let h = harness(
        &k,
        json!({"rules": [
            {"match": {"prefix": "/public"}, "public": true},
            {"match": {"prefix": "/admin"}, "any_of": ["idp"], "roles": ["admin"]}
        ]}),
    );
    let user = k.rsa.sign(claims(json!({}))).unwrap();
    let admin = k.rsa.sign(claims(json!({"roles": ["admin"]}))).unwrap();
    (h, user, admin)
}

#[test]
fn path_tricks_are_judged_as_the_path_they_resolve_to() {
    let (mut h, user, admin) = gateway();
    let tricks = [
        "/public/../admin/users",
        "/public/%2e%2e/admin/users",
        "/public/.%2E/admin/users",
        "/%61dmin/users",
        "//admin/users",
        "/public//../admin/users",
        "/admin/./users",
    ];
    for path in tricks {
        assert_eq!(
            h.request(path, &[], true),
            Outcome::Deny(Denial::MissingCredential),
            "{path} anonymous"
        );
        assert_eq!(
            h.bearer(path, &user),
            Outcome::Deny(Denial::Forbidden),
            "{path} without the role"
        );
        assert_eq!(h.bearer(path, &admin), Outcome::Allow, "{path} admin");
        assert_eq!(
            h.host.request_header(":path").as_deref(),
            Some("/admin/users"),
            "{path}: the upstream gets what was judged"
        );
    }
}

#[test]
fn prefixes_match_whole_segments() {
    let (mut h, _, _) = gateway();
    assert_eq!(h.request("/public", &[], true), Outcome::Allow);
    assert_eq!(h.request("/public/x", &[], true), Outcome::Allow);
    for path in ["/publicity", "/public-admin/x"] {
        assert_eq!(
            h.request(path, &[], true),
            Outcome::Deny(Denial::MissingCredential),
            "{path}"
        );
    }
}

#[test]
fn ambiguous_paths_are_refused_before_any_rule() {
    let (mut h, _, admin) = gateway();
    let cases = [
        ("/public%2F..%2Fadmin", PathRefusal::EncodedSlash),
        ("/public/..\\admin", PathRefusal::Backslash),
        ("/public/..;/admin", PathRefusal::PathParameter),
        ("/public/%252e%252e/admin", PathRefusal::DoubleEncoding),
        ("/public/a%00", PathRefusal::ControlCharacter),
    ];
    for (path, refusal) in cases {
        assert_eq!(
            h.bearer(path, &admin),
            Outcome::InvalidPath(refusal),
            "{path}"
        );
    }
    assert_eq!(h.metric("path_refused"), 5);
}

#[test]
fn the_paths_option_reads_what_it_states() {
    let k = keys();
    let mut h = harness(
        &k,
        json!({
            "paths": {"escaped_slashes": "keep", "path_parameters": "keep", "backslash": "slash"},
            "rules": [{"match": {"prefix": "/public"}, "public": true}]
        }),
    );
    assert_eq!(h.request("/public/a%2fb", &[], true), Outcome::Allow);
    assert_eq!(
        h.host.request_header(":path").as_deref(),
        Some("/public/a%2Fb")
    );
    assert_eq!(h.request("/public/a;v=1", &[], true), Outcome::Allow);
    assert_eq!(
        h.request("/public;v=1/x", &[], true),
        Outcome::Deny(Denial::MissingCredential),
        "parameters are part of the segment"
    );
    assert_eq!(
        h.request("/public/..\\admin", &[], true),
        Outcome::Deny(Denial::MissingCredential),
        "a backslash read as a separator"
    );
    for hidden in ["/public/..;/admin", "/public%2F..%2Fadmin"] {
        assert_eq!(
            h.request(hidden, &[], true),
            Outcome::InvalidPath(PathRefusal::HiddenDotSegment),
            "{hidden}"
        );
    }
}

#[test]
fn identity_header_twins_are_removed() {
    let (mut h, user, _) = gateway();
    let auth = format!("Bearer {user}");
    let forged = [
        ("authorization", auth.as_str()),
        ("x_user_id", "root"),
        ("X-User_Id", "root"),
        ("x_jwt_payload", "e30"),
        ("x_org", "1"),
    ];
    assert_eq!(h.request("/x", &forged, true), Outcome::Allow);
    let headers = h.host.request_headers();
    let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    for twin in ["x_user_id", "x-user_id", "x_jwt_payload", "x_org"] {
        assert!(!names.contains(&twin), "{twin} reached the upstream");
    }
    assert_eq!(h.host.request_header_values("x-user-id"), ["alice"]);
    assert_eq!(h.request("/public", &forged[1..], true), Outcome::Allow);
    assert_eq!(h.host.request_header("x_user_id"), None);
}

#[test]
fn credentials_are_removed_on_public_routes_unless_configured() {
    let (mut h, user, _) = gateway();
    let auth = format!("Bearer {user}");
    assert_eq!(
        h.request("/public?x=1", &[("authorization", &auth)], true),
        Outcome::Allow
    );
    assert_eq!(h.host.request_header("authorization"), None);

    let k = keys();
    let mut keep = harness(
        &k,
        json!({
            "strip_credentials_on_public": false,
            "rules": [{"match": {"prefix": "/public"}, "public": true}]
        }),
    );
    assert_eq!(
        keep.request("/public", &[("authorization", &auth)], true),
        Outcome::Allow
    );
    assert_eq!(keep.host.request_header("authorization"), Some(auth));
}

#[test]
fn a_repeated_credential_is_refused_with_400() {
    let (mut h, user, admin) = gateway();
    let (u, a) = (format!("Bearer {user}"), format!("Bearer {admin}"));
    assert_eq!(
        h.request(
            "/admin",
            &[("authorization", &a), ("authorization", &u)],
            true
        ),
        Outcome::Deny(Denial::DuplicateCredential)
    );
    let reply = Denial::DuplicateCredential.reply("r");
    assert_eq!(
        (reply.status, reply.error.as_str()),
        (400, "invalid_request")
    );
}

#[test]
fn every_credential_location_that_is_filled_must_verify() {
    let k = keys();
    let mut p = provider(jwks(&k));
    p["from"] = json!([
        {"header": "authorization", "prefix": "Bearer "},
        {"query": "access_token"},
        {"cookie": "session"}
    ]);
    let mut h = Harness::new(json!({"providers": [p]}));
    let good = k.rsa.sign(claims(json!({}))).unwrap();
    let other = k.rsa.sign(claims(json!({"sub": "bob"}))).unwrap();
    let auth = format!("Bearer {good}");
    assert_eq!(
        h.request("/x?access_token=junk", &[("authorization", &auth)], true),
        Outcome::Deny(Denial::Malformed),
        "a bad token beside a good one"
    );
    let cookie = format!("a=1; session={other}; b=2");
    assert_eq!(
        h.request(
            &format!("/x?access_token={good}&q=1"),
            &[("authorization", &auth), ("cookie", &cookie)],
            true
        ),
        Outcome::Allow
    );
    assert_eq!(h.host.request_header("authorization"), None);
    assert_eq!(h.host.request_header(":path").as_deref(), Some("/x?q=1"));
    assert_eq!(h.host.request_header("cookie").as_deref(), Some("a=1; b=2"));
}

#[test]
fn an_api_key_beside_a_token_must_verify_too() {
    let k = keys();
    let mut h = Harness::new(json!({"providers": [provider(jwks(&k))], "api_keys": api_keys()}));
    let auth = format!("Bearer {}", k.rsa.sign(claims(json!({}))).unwrap());
    assert_eq!(
        h.request(
            "/x",
            &[("authorization", &auth), ("x-api-key", "stolen")],
            true
        ),
        Outcome::Deny(Denial::BadApiKey)
    );
    assert_eq!(
        h.request(
            "/x",
            &[("authorization", &auth), ("x-api-key", "ops-key")],
            true
        ),
        Outcome::Allow
    );
    assert_eq!(h.host.request_header("x-api-key"), None);
}

#[test]
fn a_token_gets_one_key_to_fail_against() {
    let (a, b) = (rsa_a(), rsa_b());
    let mut kidless = rsa_jwk(&b, "x");
    kidless.as_object_mut().unwrap().remove("kid");
    let mut p = provider(json!({"keys": [rsa_jwk(&a, "rsa-a"), kidless.clone()]}));
    p["algorithms"] = json!(["RS256"]);
    let mut h = Harness::new(json!({"providers": [p]}));
    // The kid of `a` picks `a` over the kid-less `b`.
    let good = a.sign(claims(json!({}))).unwrap();
    let forged = format!("{}A", &good[..good.len() - 1]);
    assert_eq!(h.bearer("/x", &forged), Outcome::Deny(Denial::BadSignature));
    assert_eq!(h.bearer("/x", &good), Outcome::Allow);

    // Two kid-less keys: a made-up kid is no way to get both tried.
    let mut other = rsa_jwk(&a, "y");
    other.as_object_mut().unwrap().remove("kid");
    let mut p = provider(json!({"keys": [other, kidless]}));
    p["algorithms"] = json!(["RS256"]);
    let mut h = Harness::new(json!({"providers": [p]}));
    let named = a.with_key_id("made-up").sign(claims(json!({}))).unwrap();
    assert_eq!(h.bearer("/x", &named), Outcome::Deny(Denial::UnknownKey));
    assert_eq!(h.metric("denied_bad_signature"), 0);
}
