//! `wasmgate token inspect`: a JWT's header and claims, read without trusting them, and what
//! each authn configuration of a file would answer to a request carrying it, decided by the
//! module's own code at the current time.

use crate::sources::Found;
use base64::Engine;
use gateway::Gateway;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};
use wasmgate_authn::Worker;
use wasmgate_shared::host::FakeHost;
use wasmgate_shared::{Flow, Host, Policy, RequestView};

/// The decoded header and claims; an error says which part is not base64url JSON.
pub fn decode(token: &str) -> Result<(Value, Value), String> {
    let mut parts = token.trim().split('.');
    let mut part = |what: &str| -> Result<Value, String> {
        let text = parts
            .next()
            .ok_or(format!("no {what}: a JWT has three parts"))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| format!("the {what} is not base64url: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("the {what} is not JSON: {e}"))
    };
    Ok((part("header")?, part("claims")?))
}

/// Readable times for `exp`, `nbf` and `iat`, relative to now.
pub fn times(claims: &Value) -> Vec<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    ["exp", "nbf", "iat"]
        .into_iter()
        .filter_map(|claim| {
            let at = claims.get(claim)?.as_i64()?;
            let delta = at - now;
            let when = match delta {
                0 => "now".to_string(),
                d if d > 0 => format!("in {}", span(d)),
                d => format!("{} ago", span(-d)),
            };
            Some(format!("{claim}: {at} ({when})"))
        })
        .collect()
}

fn span(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// What a configuration found in a file answers to `GET path` with `Authorization: Bearer`.
/// A remote key set is answered with `jwks` (the provider's key set as a file) if given.
pub fn verdict(found: &Found, token: &str, path: &str, jwks: Option<&[u8]>) -> Option<String> {
    match found.module.as_str() {
        "authn" => Some(run::<Worker>(&found.config, token, path, jwks)),
        "gateway" => Some(run::<Gateway>(&found.config, token, path, jwks)),
        _ => None,
    }
}

fn run<P: Policy>(config: &[u8], token: &str, path: &str, jwks: Option<&[u8]>) -> String {
    let host = FakeHost::new().with_time(SystemTime::now());
    let policy = match P::configure(&host, Some(config)) {
        Ok(policy) => policy,
        Err(err) => return format!("configuration refused: {err}"),
    };
    for (name, value) in [
        (":method", "GET"),
        (":path", path),
        (":authority", "localhost"),
    ] {
        host.add_request_header(name, value);
    }
    host.add_request_header("authorization", &format!("Bearer {}", token.trim()));
    host.set_property(&["source", "address"], b"127.0.0.1:1");
    let before = host.request_headers();
    let mut request = RequestView::unjudged(before.clone());
    let mut stream = policy.new_stream(1);
    let mut flow = policy.on_request(&host, &mut request, &mut stream);
    if flow == Flow::Pause {
        // Waiting for a remote key set: the tick starts the fetch, the file answers it.
        policy.on_tick(&host);
        let (Some(jwks), Some(call)) = (jwks, host.calls().pop()) else {
            return "waits for a remote key set: pass --jwks FILE (the provider's JWKS) to \
                    check the signature"
                .into();
        };
        host.set_call_response(&[(":status", "200")], Some(jwks));
        policy.on_http_call_response(&host, call.token, jwks.len());
        flow = policy.on_wake(&host, &mut request, &mut stream);
    }
    match flow {
        Flow::Continue => {
            let after = host.request_headers();
            let set: Vec<String> = after
                .iter()
                .filter(|h| !before.contains(h) && !h.0.starts_with(':'))
                .map(|(k, v)| format!("{k}: {}", shorten(v)))
                .collect();
            match set.is_empty() {
                true => "accepted".into(),
                false => format!("accepted; the upstream gets {}", set.join(", ")),
            }
        }
        Flow::Reply(reply) => format!(
            "refused: {} {}: {}",
            reply.status, reply.error, reply.message
        ),
        Flow::Pause => "still waiting for keys".into(),
    }
}

fn shorten(value: &str) -> String {
    match value.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &value[..at]),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn b64(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn header_and_claims_without_trusting_them() {
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256","kid":"k"}"#),
            b64(r#"{"sub":"a","exp":1}"#)
        );
        let (header, claims) = decode(&token).unwrap();
        assert_eq!(header["kid"], "k");
        assert_eq!(claims["sub"], "a");
        assert!(times(&claims)[0].starts_with("exp: 1 ("));
        assert!(times(&claims)[0].ends_with("days ago)"));
        assert!(decode("abc").is_err());
        assert!(decode("!!.x.y").is_err());
    }

    #[test]
    fn the_modules_own_answer_on_the_shipped_gateway() {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let found = crate::sources::find(&repo.join("envoy-config/gateway.yaml"), None).unwrap();
        let token = std::fs::read_to_string(repo.join("envoy-config/demo/demo-token.jwt")).unwrap();
        let answer = verdict(&found[0], &token, "/", None).unwrap_or_default();
        assert!(
            answer.starts_with("accepted; the upstream gets "),
            "{answer}"
        );
        assert!(answer.contains("x-user-id: demo-user"), "{answer}");
        // The same claims with another signature: the module's own refusal.
        let forged = format!(
            "{}.AAAA",
            token.trim().rsplit_once('.').unwrap_or_default().0
        );
        let answer = verdict(&found[0], &forged, "/", None).unwrap_or_default();
        assert!(answer.starts_with("refused: 401 "), "{answer}");
        let admin = verdict(&found[0], &token, "/admin", None).unwrap_or_default();
        assert!(admin.starts_with("refused: 403 "), "{admin}");
    }
}
