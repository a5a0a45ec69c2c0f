//! The harness itself against real Envoy: every example config validates, the full chain of
//! separate modules (`chain.yaml`) and the one-module gateway (`gateway.yaml`) load and proxy, a
//! bad plugin configuration is refused with the field named, nothing is left running.

use std::process::Command;
use std::time::Duration;
use wasmgate_tests::envoy::EnvoyBinary;
use wasmgate_tests::render::EnvoyConfig;
use wasmgate_tests::{repo_root, Gateway};

#[test]
fn every_example_envoy_config_validates() {
    let dir = repo_root().join("envoy-config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let mut config = EnvoyConfig::load(&path).unwrap();
        config.absolutize_paths(&repo_root());
        let rendered = std::env::temp_dir().join(format!(
            "wasmgate-validate-{}-{}",
            std::process::id(),
            path.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&rendered, config.to_yaml()).unwrap();
        let out = EnvoyBinary::get()
            .command()
            .args(["--mode", "validate", "--disable-hot-restart", "-c"])
            .arg(&rendered)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&rendered);
        assert!(
            out.status.success(),
            "{} does not validate:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 1, "no configs found in {}", dir.display());
}

fn assert_proxies_to_the_upstream(gw: &Gateway) {
    let r = gw.get("/public/hello?x=1", &[("x-test", "1")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.upstream();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/public/hello?x=1");
    assert_eq!(seen.header("x-test"), Some("1"));
    assert_eq!(gw.upstream().hits(), 1);
}

#[test]
fn full_chain_loads_and_proxies_to_the_upstream() {
    assert_proxies_to_the_upstream(&Gateway::builder("chain.yaml").start());
}

#[test]
fn gateway_module_loads_and_proxies_to_the_upstream() {
    assert_proxies_to_the_upstream(&Gateway::builder("gateway.yaml").start());
}

#[test]
fn bad_plugin_configuration_is_refused_with_the_field_named() {
    let log = Gateway::builder("chain.yaml")
        .plugin_config("tracing", serde_json::json!({"bogus_field": 1}))
        .start_expecting_failure();
    assert!(
        log.contains(
            "wasmgate tracing: invalid plugin configuration: tracing.bogus_field: unknown field `bogus_field`"
        ),
        "Envoy's log does not name the field:\n{log}"
    );
}

#[test]
fn malformed_json_is_refused() {
    let log = Gateway::builder("chain.yaml")
        .plugin_config_raw("tracing", "{not json")
        .start_expecting_failure();
    assert!(
        log.contains("wasmgate tracing: invalid plugin configuration: tracing"),
        "{log}"
    );
}

#[test]
fn envoy_is_stopped_when_the_gateway_is_dropped() {
    let gw = Gateway::builder("chain.yaml").concurrency(1).start();
    let pid = gw.envoy_pid();
    drop(gw);
    std::thread::sleep(Duration::from_millis(100));
    let alive = Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(!alive, "Envoy {pid} still running after drop");
}
