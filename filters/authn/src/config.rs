//! The authn plugin configuration: serde shape, then a checked compile step.

use serde::Deserialize;
use wasmgate_shared::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuthnConfig {}

#[derive(Debug)]
pub struct AuthnConfig {}

impl RawAuthnConfig {
    pub fn compile(self) -> Result<AuthnConfig, ConfigError> {
        Ok(AuthnConfig {})
    }
}
