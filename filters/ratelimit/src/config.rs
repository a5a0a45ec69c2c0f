//! The ratelimit plugin configuration: serde shape, then a checked compile step.

use serde::Deserialize;
use wasmgate_shared::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRatelimitConfig {}

#[derive(Debug)]
pub struct RatelimitConfig {}

impl RawRatelimitConfig {
    pub fn compile(self) -> Result<RatelimitConfig, ConfigError> {
        Ok(RatelimitConfig {})
    }
}
