//! The gateway configuration: one optional section per stage, each the standalone filter's
//! configuration, compiled by that filter's code. Errors name the section first
//! (`authn.providers[0].issuer`); a missing section turns its stage off.

use serde::Deserialize;
use wasmgate_authn::config::RawAuthnConfig;
use wasmgate_authn::Worker;
use wasmgate_ratelimit::config::RawRatelimitConfig;
use wasmgate_ratelimit::Plugin;
use wasmgate_shared::{ConfigError, Host};
use wasmgate_tracing::config::RawTracingConfig;
use wasmgate_tracing::Tracing;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawGatewayConfig {
    /// The JSON Schema of this configuration (`docs/schemas/`), for editors; ignored.
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    pub tracing: Option<RawTracingConfig>,
    /// Rate limits before authn: cheap refusals of floods before any signature check.
    pub pre_auth: Option<RawRatelimitConfig>,
    pub authn: Option<RawAuthnConfig>,
    /// Rate limits after authn, which may key on the verified identity.
    pub ratelimit: Option<RawRatelimitConfig>,
}

/// The compiled stages, in request order.
pub struct Sections {
    pub tracing: Option<Tracing>,
    pub pre_auth: Option<Plugin>,
    pub authn: Option<Worker>,
    pub ratelimit: Option<Plugin>,
}

impl RawGatewayConfig {
    pub fn compile(self, host: &(impl Host + ?Sized)) -> Result<Sections, ConfigError> {
        let tracing = self
            .tracing
            .map(|raw| Tracing::compile(host, raw).map_err(|e| e.within("tracing")))
            .transpose()?;
        let pre_auth = self
            .pre_auth
            .map(|raw| Plugin::compile(host, raw, false).map_err(|e| e.within("pre_auth")))
            .transpose()?;
        let authn = self
            .authn
            .map(|raw| Worker::compile(host, raw).map_err(|e| e.within("authn")))
            .transpose()?;
        let identity = authn.is_some();
        let ratelimit = self
            .ratelimit
            .map(|raw| Plugin::compile(host, raw, identity).map_err(|e| e.within("ratelimit")))
            .transpose()?;
        Ok(Sections {
            tracing,
            pre_auth,
            authn,
            ratelimit,
        })
    }
}
