//! The red-team suite: path, host, method and header tricks sent byte for byte to real Envoy
//! with the real modules, once with Envoy's default HTTP connection manager settings (how users
//! drop a module into an existing Envoy) and once with the shipped hardening. Every answer is
//! checked against the request the upstream actually received: a trick is refused, or it is
//! decided exactly as the canonical path it reached the upstream as.

use jwt_simple::prelude::*;
use serde_json::{json, Value};
use wasmgate_shared::canonical::{canonical_path, PathPolicy};
use wasmgate_tests::render::EnvoyConfig;
use wasmgate_tests::{raw_request, repo_root, Gateway, Response};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "api";

/// Public `/public`; role `admin` under `/admin`; role `ops` on host `internal.example.com`;
/// scope `write` for writes under `/api`; any token elsewhere.
fn authn_config(key: &RS256KeyPair) -> Value {
    let c = key.public_key().to_components();
    let b64 = |b: &[u8]| Base64UrlSafeNoPadding::encode_to_string(b).unwrap();
    json!({
        "providers": [{
            "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
            "jwks": {"keys": [{"kty": "RSA", "kid": "k1", "n": b64(&c.n), "e": b64(&c.e)}]},
            "from": [{"header": "authorization", "prefix": "Bearer "}, {"query": "access_token"}],
            "claim_headers": [{"claim": "sub", "header": "x-user-id"}]
        }],
        "rules": [
            {"name": "public", "match": {"prefix": "/public"}, "public": true},
            {"name": "admin", "match": {"prefix": "/admin"}, "any_of": ["idp"], "roles": ["admin"]},
            {"name": "internal", "match": {"hosts": ["internal.example.com"]}, "any_of": ["idp"], "roles": ["ops"]},
            {"name": "api_write", "match": {"prefix": "/api", "methods": ["POST", "PUT", "PATCH", "DELETE"]},
             "any_of": ["idp"], "scopes": ["write"]}
        ]
    })
}

struct RedTeam {
    gw: Gateway,
    /// (who, `authorization` value): anonymous, a user, an admin, a writer.
    callers: Vec<(&'static str, Option<String>)>,
}

impl RedTeam {
    fn start(envoy_defaults: bool) -> Self {
        Self::start_with(envoy_defaults, |_| {})
    }

    /// As [`RedTeam::start`], with a further edit of the rendered config.
    fn start_with(envoy_defaults: bool, edit: impl FnOnce(&mut EnvoyConfig)) -> Self {
        let pem =
            std::fs::read_to_string(repo_root().join("filters/authn/testdata/rsa-a.pem")).unwrap();
        let key = RS256KeyPair::from_pem(&pem).unwrap().with_key_id("k1");
        let token = |extra: Value| {
            let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice"});
            if let (Some(c), Value::Object(e)) = (claims.as_object_mut(), extra) {
                c.extend(e);
            }
            let claims: serde_json::Map<String, Value> = serde_json::from_value(claims).unwrap();
            let jwt = key
                .sign(Claims::with_custom_claims(claims, Duration::from_mins(30)))
                .unwrap();
            Some(format!("Bearer {jwt}"))
        };
        let callers = vec![
            ("anonymous", None),
            ("user", token(json!({}))),
            ("admin", token(json!({"roles": ["admin"]}))),
            ("writer", token(json!({"scope": "read write"}))),
        ];
        let gw = Gateway::builder("authn.yaml")
            .plugin_config("authn", authn_config(&key))
            .edit(|c| {
                if envoy_defaults {
                    c.with_envoy_defaults()
                }
                edit(c)
            })
            .start();
        Self { gw, callers }
    }

    fn send(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
        raw_request(self.gw.listener_port(), method, target, headers)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
    }

    fn send_as(&self, method: &str, target: &str, who: &Option<String>) -> Response {
        match who {
            Some(auth) => self.send(method, target, &[("authorization", auth)]),
            None => self.send(method, target, &[]),
        }
    }
}

/// What the upstream got: the path it received, split from its query.
fn received(r: &Response) -> (String, Option<String>) {
    let seen = r.upstream().path;
    match seen.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (seen, None),
    }
}

fn canonical(target: &str) -> Option<String> {
    let path = target.split('?').next().unwrap_or(target);
    canonical_path(path, &PathPolicy::default()).ok()
}

/// Every trick from the issue and their combinations: dot segments plain, encoded (either case,
/// in part), double-encoded, behind `;` or a backslash, between encoded slashes; escaped
/// letters; repeated slashes; case; the query as a decoy.
const TRICKS: &[&str] = &[
    "/admin/users",
    "/public/../admin/users",
    "/public/./../admin/users",
    "/public/x/../../admin/users",
    "/public/..;/admin/users",
    "/public;x/../admin/users",
    "/public/%2e%2e/admin/users",
    "/public/%2E%2E/admin/users",
    "/public/.%2e/admin/users",
    "/public/%2e./admin/users",
    "/public/%252e%252e/admin/users",
    "/public%2F..%2Fadmin/users",
    "/public%2f..%2fadmin/users",
    "/public/..%5Cadmin/users",
    "/public/..\\admin/users",
    "/%61dmin/users",
    "/%41dmin/users",
    "/adm%69n/users",
    "/%2561dmin/users",
    "//admin/users",
    "/admin//users",
    "/public//..//admin/users",
    "/./admin/users",
    "/%2e/admin/users",
    "/admin/./users",
    "/ADMIN/users",
    "/admin%00/users",
    "/admin/users/",
    "/publicity",
    "/public-admin/users",
    "/public?x=/../admin",
    "/public/%2e%2e/admin?y=%252e",
    "/admin/users?next=/public",
    "/api/orders/../../admin/users",
    "/public/../api/orders",
];

/// A trick is refused (400), or decided as the canonical path the upstream received.
fn assert_judged_as_served(team: &RedTeam, method: &str, target: &str, envoy_defaults: bool) {
    for (who, auth) in &team.callers {
        let r = team.send_as(method, target, auth);
        let case = format!("{method} {target} as {who} (Envoy defaults: {envoy_defaults})");
        match r.status {
            400 => continue,
            200 => {
                let (path, query) = received(&r);
                assert_eq!(
                    canonical(&path).as_deref(),
                    Some(path.as_str()),
                    "{case}: the upstream got a non-canonical path"
                );
                if envoy_defaults {
                    assert_eq!(
                        Some(path.clone()),
                        canonical(target),
                        "{case}: the filter forwards its canonical form"
                    );
                }
                let plain = match &query {
                    Some(q) => format!("{path}?{q}"),
                    None => path.clone(),
                };
                let again = team.send_as(method, &plain, auth);
                assert_eq!(
                    again.status, 200,
                    "{case}: reached the upstream as {plain}, which refuses this caller: {}",
                    again.body
                );
            }
            denied => {
                // Envoy's own normalization (shipped settings) may read a few tricks
                // differently; with its defaults, the filter's canonical form is what decided.
                if envoy_defaults {
                    let c = canonical(target).unwrap_or_else(|| {
                        panic!("{case}: {denied} for a path with no canonical form")
                    });
                    let query = target.split_once('?').map(|(_, q)| format!("?{q}"));
                    let plain = format!("{c}{}", query.unwrap_or_default());
                    assert_eq!(
                        team.send_as(method, &plain, auth).status,
                        denied,
                        "{case}: decided unlike its canonical form {plain}"
                    );
                }
            }
        }
    }
}

fn red_team(envoy_defaults: bool) {
    let team = RedTeam::start(envoy_defaults);
    for target in TRICKS {
        assert_judged_as_served(&team, "GET", target, envoy_defaults);
    }
    for target in [
        "/api/orders",
        "/public/../api/orders",
        "/%61pi/orders",
        "//api//orders",
    ] {
        assert_judged_as_served(&team, "POST", target, envoy_defaults);
    }
    // The headline cases, stated plainly.
    let anonymous = team.send("GET", "/public/../admin/users", &[]);
    assert_ne!(anonymous.status, 200, "{}", anonymous.body);
    let (_, user) = &team.callers[1];
    for trick in [
        "/%61dmin/users",
        "//admin/users",
        "/public/%2e%2e/admin/users",
    ] {
        let r = team.send_as("GET", trick, user);
        assert!(
            matches!(r.status, 400 | 403),
            "{trick} as user: {}",
            r.status
        );
    }
}

#[test]
fn path_tricks_are_refused_or_judged_as_served_with_envoy_defaults() {
    red_team(true);
}

#[test]
fn path_tricks_are_refused_or_judged_as_served_with_the_shipped_settings() {
    red_team(false);
}

#[test]
fn ambiguous_paths_get_400_with_the_json_body() {
    let team = RedTeam::start(true);
    for target in [
        "/public%2F..%2Fadmin",
        "/public/..;/admin",
        "/public/..\\admin",
        "/public/%252e%252e/admin",
        "/public/a%00",
    ] {
        let r = team.send("GET", target, &[]);
        assert_eq!(r.status, 400, "{target}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_path", "{target}");
    }
}

#[test]
fn hosts_compare_without_case_port_or_trailing_dot() {
    let team = RedTeam::start(true);
    let (_, user) = &team.callers[1];
    let auth = user.as_deref().unwrap();
    for host in [
        "internal.example.com",
        "INTERNAL.example.com",
        "internal.example.com.",
        "internal.example.com.:10000",
    ] {
        let r = team.send("GET", "/x", &[("host", host), ("authorization", auth)]);
        assert_eq!(r.status, 403, "{host}: {}", r.body);
    }
}

#[test]
fn methods_compare_exactly() {
    let team = RedTeam::start(true);
    let (_, user) = &team.callers[1];
    assert_eq!(team.send_as("POST", "/api/orders", user).status, 403);
    assert_eq!(team.send_as("GET", "/api/orders", user).status, 200);
}

#[test]
fn identity_header_twins_never_reach_the_upstream() {
    let team = RedTeam::start(true);
    let (_, user) = &team.callers[1];
    let auth = user.as_deref().unwrap();
    let forged = [
        ("authorization", auth),
        ("x_user_id", "root"),
        ("X-User_Id", "root"),
    ];
    let r = team.send("GET", "/x", &forged);
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.upstream();
    assert_eq!(seen.header("x-user-id"), Some("alice"));
    for name in seen.headers.keys() {
        let folded = name.replace('_', "-");
        assert!(
            folded != "x-user-id" || name == "x-user-id",
            "{name} reached the upstream"
        );
    }
    let public = team.send("GET", "/public", &forged[1..]);
    assert_eq!(public.status, 200, "{}", public.body);
    assert!(public
        .upstream()
        .headers
        .keys()
        .all(|k| !k.contains("user")));

    // The shipped settings refuse underscores outright.
    let hardened = RedTeam::start(false);
    assert_eq!(hardened.send("GET", "/x", &forged).status, 400);
}

#[test]
fn credentials_are_single_and_never_travel_unverified() {
    let team = RedTeam::start(true);
    let (_, user) = &team.callers[1];
    let (_, admin) = &team.callers[2];
    let (user, admin) = (user.as_deref().unwrap(), admin.as_deref().unwrap());
    let twice = team.send(
        "GET",
        "/admin/users",
        &[("authorization", admin), ("authorization", user)],
    );
    assert_eq!(twice.status, 400, "{}", twice.body);
    assert_eq!(twice.json()["error"], "invalid_request");

    let token = admin.trim_start_matches("Bearer ");
    let junk_beside = team.send(
        "GET",
        "/admin/users?access_token=junk",
        &[("authorization", admin)],
    );
    assert_eq!(junk_beside.status, 401, "{}", junk_beside.body);

    let both = team.send(
        "GET",
        &format!("/admin/users?access_token={token}&q=1"),
        &[("authorization", admin)],
    );
    assert_eq!(both.status, 200, "{}", both.body);
    let seen = both.upstream();
    assert_eq!(seen.path, "/admin/users?q=1");
    assert_eq!(seen.header("authorization"), None);

    let public = team.send(
        "GET",
        &format!("/public?access_token={token}&q=1"),
        &[("authorization", user)],
    );
    assert_eq!(public.status, 200, "{}", public.body);
    let seen = public.upstream();
    assert_eq!(
        seen.path, "/public?q=1",
        "credentials stripped on public routes"
    );
    assert_eq!(seen.header("authorization"), None);
}

#[test]
fn ratelimit_path_tricks_neither_leave_a_rule_nor_open_a_bucket() {
    for envoy_defaults in [true, false] {
        let gw = Gateway::builder("ratelimit.yaml")
            .plugin_config(
                "ratelimit",
                json!({"rules": [{"name": "admin", "match": {"prefix": "/admin"},
                    "key": [{"source": "path"}], "capacity": 2, "period_ms": 600000}]}),
            )
            .edit(|c| {
                if envoy_defaults {
                    c.with_envoy_defaults()
                }
            })
            .start();
        let send = |target: &str| raw_request(gw.listener_port(), "GET", target, &[]).unwrap();
        for _ in 0..2 {
            assert_eq!(send("/admin/users").status, 200);
        }
        // Tricks for `/admin/users`, and ones with no canonical form that some upstream reads
        // as it.
        let ambiguous = [
            "/public%2F..%2Fadmin/users",
            "/admin/x/..;/users",
            "/admin\\users",
        ];
        let tricks = TRICKS
            .iter()
            .filter(|t| canonical(t).as_deref() == Some("/admin/users"))
            .chain(&ambiguous);
        for trick in tricks {
            let r = send(trick);
            let case = format!("{trick} (Envoy defaults: {envoy_defaults})");
            match r.status {
                429 | 400 => {}
                // Envoy's normalization reads a few tricks as another resource (it resolves
                // `/public//../admin` to `/public/admin`): then the upstream serves that one.
                200 => assert!(
                    !envoy_defaults && !r.upstream().path.starts_with("/admin"),
                    "{case}: reached {} in a new bucket",
                    r.upstream().path
                ),
                other => panic!("{case}: {other}"),
            }
            if envoy_defaults && canonical(trick).is_none() {
                assert_eq!(r.status, 400, "{case}");
            }
        }
    }
}

/// Envoy picks the route before the filters run; the canonical rewrite of `:path` makes it
/// pick again, so a route on `/admin` (here a direct 418) also holds for `/public/../admin`.
#[test]
fn the_route_is_chosen_again_for_the_canonical_path() {
    let routes: serde_yaml::Value = serde_yaml::from_str(
        r#"
- match: { prefix: "/admin" }
  direct_response: { status: 418 }
- match: { prefix: "/" }
  route: { cluster: upstream }
"#,
    )
    .unwrap();
    let team = RedTeam::start_with(true, |c| set_routes(c.value_mut(), &routes));
    let (_, admin) = &team.callers[2];
    let send = |target: &str| team.send_as("GET", target, admin);
    assert_eq!(send("/admin/x").status, 418);
    assert_eq!(send("/public/../admin/x").status, 418);
    assert_eq!(send("/%61dmin/x").status, 418);
    assert_eq!(send("/public/x").status, 200);
}

/// Replaces the routes of every virtual host.
fn set_routes(config: &mut serde_yaml::Value, routes: &serde_yaml::Value) {
    match config {
        serde_yaml::Value::Mapping(map) => {
            if let Some(r) = map.get_mut("routes") {
                *r = routes.clone();
            }
            for (_, v) in map.iter_mut() {
                set_routes(v, routes);
            }
        }
        serde_yaml::Value::Sequence(items) => {
            for v in items {
                set_routes(v, routes);
            }
        }
        _ => {}
    }
}
