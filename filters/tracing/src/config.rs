//! The tracing plugin configuration: serde shape, then a checked compile step.

use serde::Deserialize;
use wasmgate_shared::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTracingConfig {}

#[derive(Debug)]
pub struct TracingConfig {}

impl RawTracingConfig {
    pub fn compile(self) -> Result<TracingConfig, ConfigError> {
        Ok(TracingConfig {})
    }
}
