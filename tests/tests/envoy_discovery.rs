//! Envoy discovery: `ENVOY_BIN`, then `func-e` on PATH, then the venv. Its own test binary,
//! because it changes the process environment that every other test reads.

use std::os::unix::fs::PermissionsExt;
use wasmgate_tests::envoy::EnvoyBinary;
use wasmgate_tests::{repo_root, Gateway};

#[test]
fn discovery_order_and_a_func_e_on_path_really_runs_the_tests() {
    // This binary runs this one test, so nothing reads the environment while it changes.
    std::env::remove_var("ENVOY_BIN");

    // A stand-in for func-e on PATH: `func-e run ARGS` runs the venv's Envoy with ARGS, the way
    // func-e runs the Envoy version it manages.
    let dir = std::env::temp_dir().join(format!("wasmgate-func-e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shim = dir.join("func-e");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\n[ \"$1\" = run ] || exit 2\nshift\necho ran >> '{}'\nexec '{}' \"$@\"\n",
            dir.join("calls").display(),
            std::env::var("WASMGATE_VENV")
                .map(|v| format!("{v}/bin/envoy"))
                .unwrap_or_else(|_| repo_root().join(".venv/bin/envoy").display().to_string())
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", &path);

    let found = EnvoyBinary::discover();
    assert_eq!(found.source, "func-e on PATH");
    assert_eq!(found.prefix_args, vec!["run".to_string()]);

    // ENVOY_BIN wins over func-e, and may be a command with arguments.
    std::env::set_var("ENVOY_BIN", format!("{} run", shim.display()));
    let explicit = EnvoyBinary::discover();
    assert_eq!(explicit.source, "ENVOY_BIN");
    assert_eq!(explicit.program, shim.display().to_string());
    assert_eq!(explicit.prefix_args, vec!["run".to_string()]);
    std::env::remove_var("ENVOY_BIN");

    // The whole harness through func-e: version banner and a real gateway.
    assert!(
        EnvoyBinary::get().version().contains("version"),
        "{:?}",
        EnvoyBinary::get()
    );
    let gw = Gateway::builder("chain.yaml").concurrency(1).start();
    assert_eq!(gw.get("/public/discovery", &[]).status, 200);
    drop(gw);
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
    assert!(calls.lines().count() >= 2, "func-e was not used: {calls:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
