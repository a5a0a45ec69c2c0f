//! Renders an `envoy-config/` file for one test run. The files use fixed local ports
//! (listener 10000, admin 9901, upstream 8080, JWKS 8081, rate-limit service 8082) and
//! repo-relative module paths so a user can run them as they are; a test run rewrites them:
//! admin and listeners on port 0 (Envoy picks; we read the bound port back), other ports to the
//! test's servers, `dist/…` paths absolute, and a Wasm filter's `configuration` replaced.

use serde_yaml::Value;
use std::path::Path;

pub const LISTENER_PORT: u64 = 10000;
pub const ADMIN_PORT: u64 = 9901;
pub const UPSTREAM_PORT: u64 = 8080;

#[derive(Debug, Clone)]
pub struct EnvoyConfig {
    root: Value,
}

impl EnvoyConfig {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let root: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        Ok(Self { root })
    }

    /// Every `port_value: from` becomes `to`.
    pub fn map_port(&mut self, from: u64, to: u64) {
        walk_mut(&mut self.root, &mut |key, value| {
            if key == Some("port_value") && value.as_u64() == Some(from) {
                *value = Value::from(to);
            }
        });
    }

    /// Relative `filename: dist/…` (and other repo-relative data sources, such as the file of
    /// an ECDS `path_config_source`) become absolute.
    pub fn absolutize_paths(&mut self, root: &Path) {
        let absolute = |value: &mut Value| {
            if let Some(path) = value.as_str().filter(|p| !p.starts_with('/')) {
                *value = Value::from(root.join(path).to_string_lossy().into_owned());
            }
        };
        walk_mut(&mut self.root, &mut |key, value| match key {
            Some("filename") => absolute(value),
            Some("path_config_source") => {
                if let Some(path) = value.get_mut("path") {
                    absolute(path);
                }
            }
            _ => {}
        });
    }

    /// Points every ECDS `path_config_source` at `path` (a test's own copy of the file).
    /// Returns false if there is none.
    pub fn set_discovery_path(&mut self, path: &Path) -> bool {
        let mut found = false;
        walk_mut(&mut self.root, &mut |key, value| {
            if key == Some("path_config_source") {
                if let Some(map) = value.as_mapping_mut() {
                    map.insert("path".into(), path.to_string_lossy().into_owned().into());
                    found = true;
                }
            }
        });
        found
    }

    /// Replaces the `configuration` of the Wasm filter whose `root_id` is `root_id` with `json`
    /// (as a `google.protobuf.StringValue`). Returns false if no such filter exists.
    pub fn set_plugin_config(&mut self, root_id: &str, json: &str) -> bool {
        let mut found = false;
        walk_mut(&mut self.root, &mut |key, value| {
            if key != Some("config") {
                return;
            }
            let Some(map) = value.as_mapping_mut() else {
                return;
            };
            if map.get("root_id").and_then(Value::as_str) != Some(root_id) {
                return;
            }
            let mut configuration = serde_yaml::Mapping::new();
            configuration.insert(
                "@type".into(),
                "type.googleapis.com/google.protobuf.StringValue".into(),
            );
            configuration.insert("value".into(), json.into());
            map.insert("configuration".into(), Value::Mapping(configuration));
            found = true;
        });
        found
    }

    /// The `configuration` JSON of the Wasm filter with `root_id`, if it is a StringValue.
    pub fn plugin_config(&self, root_id: &str) -> Option<String> {
        let mut out = None;
        walk(&self.root, &mut |key, value| {
            if key == Some("config")
                && value.get("root_id").and_then(Value::as_str) == Some(root_id)
            {
                out = value
                    .get("configuration")
                    .and_then(|c| c.get("value"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
        });
        out
    }

    /// Takes out the path and header-name hardening the shipped configs add to every HTTP
    /// connection manager, leaving Envoy's defaults: the filters must be safe without it.
    pub fn with_envoy_defaults(&mut self) {
        const HARDENING: [&str; 4] = [
            "normalize_path",
            "merge_slashes",
            "path_with_escaped_slashes_action",
            "headers_with_underscores_action",
        ];
        walk_mut(&mut self.root, &mut |_, value| {
            if let Some(map) = value.as_mapping_mut() {
                for key in HARDENING {
                    map.remove(key);
                }
            }
        });
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(&self.root).unwrap_or_default()
    }

    pub fn value_mut(&mut self) -> &mut Value {
        &mut self.root
    }
}

fn walk_mut(value: &mut Value, f: &mut dyn FnMut(Option<&str>, &mut Value)) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                f(k.as_str(), v);
                walk_mut(v, f);
            }
        }
        Value::Sequence(items) => {
            for v in items {
                walk_mut(v, f);
            }
        }
        _ => {}
    }
}

fn walk(value: &Value, f: &mut dyn FnMut(Option<&str>, &Value)) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                f(k.as_str(), v);
                walk(v, f);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| walk(v, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
admin: { address: { socket_address: { address: 127.0.0.1, port_value: 9901 } } }
filters:
  - config:
      root_id: tracing
      vm_config: { code: { local: { filename: dist/tracing.wasm } } }
      configuration: { "@type": type.googleapis.com/google.protobuf.StringValue, value: "{}" }
endpoint: { port_value: 8080 }
"#;

    #[test]
    fn ports_paths_and_plugin_config_are_rewritten() {
        let mut config = EnvoyConfig::parse(SAMPLE).unwrap();
        config.map_port(9901, 0);
        config.map_port(8080, 4242);
        config.absolutize_paths(Path::new("/repo"));
        assert!(config.set_plugin_config("tracing", r#"{"a":1}"#));
        assert!(!config.set_plugin_config("nope", "{}"));
        let yaml = config.to_yaml();
        assert!(yaml.contains("port_value: 0"), "{yaml}");
        assert!(yaml.contains("port_value: 4242"), "{yaml}");
        assert!(yaml.contains("/repo/dist/tracing.wasm"), "{yaml}");
        assert_eq!(
            config.plugin_config("tracing").as_deref(),
            Some(r#"{"a":1}"#)
        );
    }
}
