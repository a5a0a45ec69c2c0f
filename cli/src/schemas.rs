//! The JSON Schema of each module's configuration, generated from the very types the modules
//! parse it into (`Raw*Config`, their doc comments becoming descriptions), so a schema cannot
//! drift from what a module accepts. Published in `docs/schemas/`, kept current by a test.

use gateway::sections::RawGatewayConfig;
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use wasmgate_authn::config::RawAuthnConfig;
use wasmgate_ratelimit::config::RawRatelimitConfig;
use wasmgate_tracing::config::RawTracingConfig;

/// Where the schemas are published, relative to the repository root.
pub const DIR: &str = "docs/schemas";

/// The schema of module `name`'s configuration as pretty JSON, or `None` for another name.
pub fn schema(name: &str) -> Option<String> {
    let schema = match name {
        "gateway" => generate::<RawGatewayConfig>(name),
        "tracing" => generate::<RawTracingConfig>(name),
        "authn" => generate::<RawAuthnConfig>(name),
        "ratelimit" => generate::<RawRatelimitConfig>(name),
        _ => return None,
    };
    serde_json::to_string_pretty(&schema).ok().map(|s| s + "\n")
}

/// The file name a module's schema is published under.
pub fn file_name(module: &str) -> String {
    format!("{module}.schema.json")
}

fn generate<T: JsonSchema>(module: &str) -> serde_json::Value {
    let mut schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    schema.insert(
        "title".into(),
        format!("wasmgate {module} configuration").into(),
    );
    schema.to_value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::{self, MODULES};
    use std::path::PathBuf;

    fn published(module: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(DIR)
            .join(file_name(module))
    }

    /// `WASMGATE_UPDATE_SCHEMAS=1 cargo test -p wasmgate-cli schemas` rewrites them after a
    /// configuration type changed.
    #[test]
    fn the_published_schemas_are_the_ones_the_types_make() {
        let update = std::env::var_os("WASMGATE_UPDATE_SCHEMAS").is_some();
        for module in MODULES {
            let generated = schema(module).unwrap();
            let path = published(module);
            if update {
                std::fs::write(&path, &generated).unwrap();
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == generated,
                "{} is out of date: run WASMGATE_UPDATE_SCHEMAS=1 cargo test -p wasmgate-cli schemas",
                path.display()
            );
        }
        assert_eq!(schema("nope"), None);
    }

    #[test]
    fn every_module_accepts_the_schema_line_editors_need() {
        for module in MODULES {
            let config = format!(r#"{{"$schema": "../docs/schemas/{}"}}"#, file_name(module));
            assert_eq!(
                modules::check(module, config.as_bytes()),
                Ok(()),
                "{module}"
            );
        }
    }
}
