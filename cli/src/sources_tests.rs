//! The shipped configurations, found and accepted by the modules' own code; a broken section
//! reported with the module's log line.

use super::*;
use crate::modules::check;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Found, accepted and warned about nothing: what the shipped examples must be.
fn accepted(path: &str) -> Vec<(String, String)> {
    let found = find(&repo().join(path), None).unwrap();
    let warned = crate::warnings::for_file(&found);
    for (f, warned) in found.iter().zip(warned) {
        assert_eq!(check(&f.module, &f.config), Ok(()), "{path}: {}", f.place);
        assert!(f.line > 0, "{path}: {} has a line", f.place);
        assert!(warned.is_empty(), "{path}: {}: {warned:?}", f.place);
    }
    found.into_iter().map(|f| (f.place, f.module)).collect()
}

#[test]
fn every_shipped_envoy_config_is_found_and_accepted() {
    assert_eq!(
        accepted("envoy-config/gateway.yaml"),
        [("root_id gateway".to_string(), "gateway".to_string())]
    );
    let chain: Vec<String> = accepted("envoy-config/chain.yaml")
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(chain, ["tracing", "ratelimit", "authn", "ratelimit"]);
    // The ECDS example: its configuration is in the file the listener discovers it from.
    assert_eq!(
        accepted("envoy-config/gateway-ecds.yaml"),
        [("root_id gateway".to_string(), "gateway".to_string())]
    );
    for file in ["tracing", "authn", "ratelimit", "ratelimit-global"] {
        assert!(
            !accepted(&format!("envoy-config/{file}.yaml")).is_empty(),
            "{file}"
        );
    }
}

#[test]
fn kustomizations_lead_to_every_plugin() {
    let modules: Vec<String> = accepted("istio/kustomization.yaml")
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(modules, ["tracing", "ratelimit", "authn", "ratelimit"]);
    assert_eq!(
        accepted("istio/gateway/kustomization.yaml"),
        [(
            "WasmPlugin wasmgate-gateway".to_string(),
            "gateway".to_string()
        )]
    );
}

#[test]
fn a_broken_section_gets_the_line_the_module_would_log() {
    let dir = std::env::temp_dir().join(format!("wasmgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(repo().join("istio/gateway/gateway.yaml"))
        .unwrap()
        .replace("source: identity", "source: identty");
    let file = dir.join("gateway.yaml");
    std::fs::write(&file, text).unwrap();
    let found = find(&file, None).unwrap();
    let err = check(&found[0].module, &found[0].config).unwrap_err();
    assert!(
        err.starts_with("wasmgate gateway: invalid plugin configuration: ratelimit.rules[0].key[0].source: unknown variant `identty`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bare_filter_configuration_needs_its_module() {
    let dir = std::env::temp_dir().join(format!("wasmgate-cli-bare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("authn.json");
    std::fs::write(&file, r#"{"providers": []}"#).unwrap();
    assert!(find(&file, None).is_err());
    let found = find(&file, Some("authn")).unwrap();
    assert_eq!((found[0].module.as_str(), found[0].line), ("authn", 0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn module_names_from_files_and_urls() {
    assert_eq!(
        module_of_file("dist/gateway.wasm").as_deref(),
        Some("gateway")
    );
    assert_eq!(module_of_file("/opt/other.wasm"), None);
    for url in [
        "oci://registry.example.com/wasmgate/authn:0.1.0",
        "oci://r/wasmgate/authn@sha256:ab",
        "file:///opt/filters/authn.wasm",
    ] {
        assert_eq!(module_of_url(url).as_deref(), Some("authn"), "{url}");
    }
}
