//! Where the wasmgate configurations of a file are: a filter configuration (JSON), every Wasm
//! filter of an Envoy configuration that loads a wasmgate module, every `WasmPlugin` of an Istio
//! manifest, and the resources of a kustomization.

use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One configuration to check.
#[derive(Debug, PartialEq)]
pub struct Found {
    pub file: PathBuf,
    /// 1-based; the line that names the filter or plugin, 0 for a bare filter configuration.
    pub line: usize,
    /// What a reader looks for in the file: `root_id gateway`, `WasmPlugin wasmgate-authn`.
    pub place: String,
    pub module: String,
    pub config: Vec<u8>,
    /// For a filter in an Envoy configuration, its HTTP connection manager's settings.
    pub listener: Option<Value>,
    /// For a filter in an Envoy configuration without CDS, the clusters it defines: the only
    /// ones a callout (JWKS, rate-limit service, span export) can reach.
    pub clusters: Option<Vec<String>>,
}

/// The configurations in `path`; `module` names the module of a bare filter configuration.
pub fn find(path: &Path, module: Option<&str>) -> Result<Vec<Found>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
        if !mentions(&doc, "vm_config") {
            let Some(module) = module else {
                return Err(format!(
                    "{}: a filter configuration: say which module reads it (--module gateway, …)",
                    path.display()
                ));
            };
            return Ok(vec![Found {
                file: path.to_path_buf(),
                line: 0,
                place: "configuration".into(),
                module: module.into(),
                config: text.into_bytes(),
                listener: None,
                clusters: None,
            }]);
        }
        let mut found = Vec::new();
        envoy_config(path, &text, &doc, &mut found);
        return Ok(found);
    }
    let mut found = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let yaml = serde_yaml::Value::deserialize(document)
            .map_err(|e| format!("{}: not YAML: {e}", path.display()))?;
        let doc = serde_json::to_value(&yaml)
            .map_err(|e| format!("{}: not representable as JSON: {e}", path.display()))?;
        match doc.get("kind").and_then(Value::as_str) {
            Some("WasmPlugin") => wasm_plugin(path, &text, &doc, &mut found),
            Some("Kustomization") => {
                for resource in strings(doc.get("resources")) {
                    found.extend(find(&kustomized(path, resource), module)?);
                }
            }
            Some(_) => {}
            None => envoy_config(path, &text, &doc, &mut found),
        }
    }
    Ok(found)
}

fn strings(value: Option<&Value>) -> impl Iterator<Item = &str> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| !s.contains("://"))
}

/// A kustomization resource: a file, or a folder with its own kustomization.
fn kustomized(kustomization: &Path, resource: &str) -> PathBuf {
    let path = kustomization
        .parent()
        .unwrap_or(Path::new("."))
        .join(resource);
    if path.is_dir() {
        path.join("kustomization.yaml")
    } else {
        path
    }
}

fn wasm_plugin(path: &Path, text: &str, doc: &Value, found: &mut Vec<Found>) {
    let spec = doc.get("spec");
    let url = spec.and_then(|s| s.get("url")).and_then(Value::as_str);
    let Some(module) = url.and_then(module_of_url) else {
        return;
    };
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let config = spec
        .and_then(|s| s.get("pluginConfig"))
        .map_or_else(|| b"{}".to_vec(), |c| c.to_string().into_bytes());
    found.push(Found {
        file: path.to_path_buf(),
        line: line_of(text, "name", name),
        place: format!("WasmPlugin {name}"),
        module,
        config,
        listener: None,
        clusters: None,
    });
}

/// The wasmgate filters of one Envoy configuration, each told the clusters it can call.
fn envoy_config(path: &Path, text: &str, doc: &Value, found: &mut Vec<Found>) {
    let first = found.len();
    envoy_filters(path, text, doc, None, found);
    let clusters = static_clusters(doc);
    for f in found.iter_mut().skip(first) {
        f.clusters.clone_from(&clusters);
    }
}

/// `static_resources.clusters[].name`, or `None` when clusters may also come from CDS.
fn static_clusters(doc: &Value) -> Option<Vec<String>> {
    if doc.pointer("/dynamic_resources/cds_config").is_some() {
        return None;
    }
    let clusters = doc.pointer("/static_resources/clusters")?.as_array()?;
    Some(
        clusters
            .iter()
            .filter_map(|c| c.get("name").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
    )
}

/// Every Wasm filter whose code is a wasmgate module, with the connection manager around it.
fn envoy_filters(
    path: &Path,
    text: &str,
    value: &Value,
    listener: Option<&Value>,
    found: &mut Vec<Found>,
) {
    match value {
        Value::Object(map) => {
            let listener = if map.contains_key("http_filters") {
                Some(value)
            } else {
                listener
            };
            if let Some(source) = map.get("path_config_source").and_then(|s| s.get("path")) {
                // A filter configuration discovered from a file (ECDS): check what it holds,
                // under the listener that runs it.
                if let Some(ecds) = source.as_str().and_then(|p| discovered(path, p)) {
                    if let Ok(more) = find(&ecds, None) {
                        found.extend(more.into_iter().map(|f| Found {
                            listener: listener.cloned(),
                            ..f
                        }));
                    }
                }
            }
            if let Some(vm) = map.get("vm_config") {
                let code = vm.pointer("/code/local/filename").and_then(Value::as_str);
                if let Some(module) = code.and_then(module_of_file) {
                    let root_id = map.get("root_id").and_then(Value::as_str).unwrap_or("");
                    let config = map
                        .get("configuration")
                        .and_then(|c| c.get("value"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    found.push(Found {
                        file: path.to_path_buf(),
                        line: line_of(text, "root_id", root_id),
                        place: format!("root_id {root_id}"),
                        module,
                        config: config.as_bytes().to_vec(),
                        listener: listener.cloned(),
                        clusters: None,
                    });
                }
            }
            map.values()
                .for_each(|v| envoy_filters(path, text, v, listener, found));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| envoy_filters(path, text, v, listener, found)),
        _ => {}
    }
}

/// The file of a `path_config_source`. Envoy reads a relative path from its working
/// directory; the examples run from the repository root, an ancestor of the config's folder.
fn discovered(config: &Path, source: &str) -> Option<PathBuf> {
    let source = Path::new(source);
    if source.is_absolute() || source.is_file() {
        return Some(source.to_path_buf());
    }
    config
        .ancestors()
        .skip(1)
        .map(|dir| dir.join(source))
        .find(|p| p.is_file())
}

fn mentions(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.contains_key(key) || map.values().any(|v| mentions(v, key)),
        Value::Array(items) => items.iter().any(|v| mentions(v, key)),
        _ => false,
    }
}

/// `dist/gateway.wasm` → `gateway`, if that is a wasmgate module.
fn module_of_file(file: &str) -> Option<String> {
    let stem = Path::new(file).file_stem()?.to_str()?;
    crate::modules::MODULES
        .contains(&stem)
        .then(|| stem.to_string())
}

/// `oci://host/repo/gateway:0.1.0`, `…/gateway@sha256:…` or `file:///x/gateway.wasm`.
fn module_of_url(url: &str) -> Option<String> {
    let last = url.rsplit('/').next()?;
    let name = last.split([':', '@']).next()?;
    module_of_file(name)
}

/// The first line that sets `key` to `value` (YAML `key: value` or JSON `"key": "value"`),
/// for a reader to find the filter; 0 if none does.
fn line_of(text: &str, key: &str, value: &str) -> usize {
    if value.is_empty() {
        return 0;
    }
    let wanted = format!("{key}: {value}");
    text.lines()
        .position(|l| {
            let unquoted = l.replace(['"', '\''], "");
            unquoted
                .split([',', '{', '}'])
                .any(|part| part.trim() == wanted)
        })
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
#[path = "sources_tests.rs"]
mod tests;
