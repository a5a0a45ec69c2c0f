//! Every committed corpus input (`fuzz/corpus/<target>/`) and every seed runs through its
//! target on stable Rust, so what a campaign found stays fixed: `make unit` runs this.

// A test reports by panicking.
#![allow(clippy::panic, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use wasmgate_fuzz_targets::{target, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The corpus files of `name`, sorted so a failure names the same file every time.
fn corpus(name: &str) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(fuzz_dir().join("corpus").join(name)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir.filter_map(|e| Some(e.ok()?.path())).collect();
    files.sort();
    files
}

fn replay(name: &str) {
    let t = target(name).unwrap_or_else(|| panic!("no target {name}"));
    for seed in (t.seeds)() {
        (t.run)(&seed);
    }
    for file in corpus(name) {
        let data = std::fs::read(&file).unwrap();
        let outcome = std::panic::catch_unwind(|| (t.run)(&data));
        assert!(outcome.is_ok(), "{name}: {} fails", file.display());
    }
}

macro_rules! replay {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        #[test]
        fn every_target_is_replayed_and_has_a_fuzz_binary() {
            let replayed = [$(stringify!($name)),*];
            let manifest = std::fs::read_to_string(fuzz_dir().join("libfuzzer").join("Cargo.toml")).unwrap();
            for t in TARGETS {
                assert!(replayed.contains(&t.name), "{} is not replayed", t.name);
                assert!(
                    manifest.contains(&format!("name = \"{}\"", t.name)),
                    "{} has no cargo-fuzz binary",
                    t.name
                );
            }
            assert_eq!(replayed.len(), TARGETS.len());
            if let Ok(dirs) = std::fs::read_dir(fuzz_dir().join("corpus")) {
                for dir in dirs {
                    let dir = dir.unwrap().file_name();
                    let dir = dir.to_string_lossy();
                    assert!(target(&dir).is_some(), "fuzz/corpus/{dir} has no target");
                }
            }
        }
    };
}

replay!(
    jws_token,
    jwt_claims,
    jwks,
    pem_spki,
    credential_source,
    authn_request,
    trace_headers,
    tracing_plan,
    canonical_path,
    request_matcher,
    xff_hops,
    rls_response,
    ratelimit_request,
    config_authn,
    config_ratelimit,
    config_tracing,
    verify_rsa,
    verify_ecdsa,
    verify_ed25519,
);
