//! The gateway policy: the stages in request order over one [`RequestView`] (one read of the
//! request headers for all of them). Tracing runs first, so every reply, local or upstream,
//! carries the trace context; then rate limits before authn, authn, rate limits after it. A
//! stage that pauses (a JWKS wait, a rate-limit service call) is resumed where it stopped,
//! and the stages after it run then.

use crate::sections::{RawGatewayConfig, Sections};
use std::time::Duration;
use wasmgate_authn::AuthnStream;
use wasmgate_ratelimit::RatelimitStream;
use wasmgate_shared::{config, ConfigError, Flow, Host, LocalReply, Policy, RequestView};
use wasmgate_tracing::{TraceStream, Tracing};

pub struct Gateway {
    stages: Sections,
}

/// The stages that can stop a request, in order; tracing never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    PreAuth,
    Authn,
    Ratelimit,
}

impl Stage {
    fn next(self) -> Option<Stage> {
        match self {
            Stage::PreAuth => Some(Stage::Authn),
            Stage::Authn => Some(Stage::Ratelimit),
            Stage::Ratelimit => None,
        }
    }
}

/// What a request keeps: each stage's state and the stage it waits in.
pub struct GatewayStream {
    waiting_in: Option<Stage>,
    trace: TraceStream,
    pre_auth: RatelimitStream,
    authn: AuthnStream,
    ratelimit: RatelimitStream,
}

impl Gateway {
    /// Runs the stages from `stage` on until one stops or pauses the request.
    fn run_from(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut GatewayStream,
        stage: Stage,
    ) -> Flow {
        let mut next = Some(stage);
        while let Some(stage) = next {
            let s = &self.stages;
            let flow = match stage {
                Stage::PreAuth => s
                    .pre_auth
                    .as_ref()
                    .map(|p| p.on_request(host, request, &mut stream.pre_auth)),
                Stage::Authn => s
                    .authn
                    .as_ref()
                    .map(|a| a.on_request(host, request, &mut stream.authn)),
                Stage::Ratelimit => s
                    .ratelimit
                    .as_ref()
                    .map(|r| r.on_request(host, request, &mut stream.ratelimit)),
            };
            match flow.unwrap_or(Flow::Continue) {
                Flow::Continue => next = stage.next(),
                flow => return self.stopped(stream, stage, flow),
            }
        }
        Flow::Continue
    }

    /// Continues after `stage` finished a pause with `flow`.
    fn resumed(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut GatewayStream,
        stage: Stage,
        flow: Flow,
    ) -> Flow {
        match (flow, stage.next()) {
            (Flow::Continue, Some(next)) => self.run_from(host, request, stream, next),
            (Flow::Continue, None) => {
                stream.waiting_in = None;
                Flow::Continue
            }
            (flow, _) => self.stopped(stream, stage, flow),
        }
    }

    /// A stage replied or paused: the reply gets the trace headers, a pause its stage.
    fn stopped(&self, stream: &mut GatewayStream, stage: Stage, flow: Flow) -> Flow {
        match flow {
            Flow::Reply(reply) => {
                stream.waiting_in = None;
                Flow::Reply(traced(reply, &stream.trace))
            }
            Flow::Pause => {
                stream.waiting_in = Some(stage);
                Flow::Pause
            }
            Flow::Continue => Flow::Continue,
        }
    }
}

/// A local reply carries the trace headers an upstream response would get.
fn traced(mut reply: LocalReply, trace: &TraceStream) -> LocalReply {
    reply.headers.extend(trace.response_headers.iter().cloned());
    reply
}

impl Policy for Gateway {
    const NAME: &'static str = "gateway";
    type Stream = GatewayStream;

    fn configure(host: &(impl Host + ?Sized), bytes: Option<&[u8]>) -> Result<Self, ConfigError> {
        let stages = config::parse::<RawGatewayConfig>(bytes)?.compile(host)?;
        Ok(Self { stages })
    }

    fn tick_period(&self) -> Duration {
        let s = &self.stages;
        [
            s.tracing.as_ref().map(Policy::tick_period),
            s.pre_auth.as_ref().map(Policy::tick_period),
            s.authn.as_ref().map(Policy::tick_period),
            s.ratelimit.as_ref().map(Policy::tick_period),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Duration::from_secs(1))
    }

    fn retire(&self, host: &(impl Host + ?Sized)) {
        let s = &self.stages;
        if let Some(t) = &s.tracing {
            t.retire(host);
        }
        if let Some(a) = &s.authn {
            a.retire(host);
        }
        for r in [&s.pre_auth, &s.ratelimit].into_iter().flatten() {
            r.retire(host);
        }
    }

    fn new_stream(&self, context_id: u32) -> GatewayStream {
        GatewayStream {
            waiting_in: None,
            trace: TraceStream::default(),
            pre_auth: RatelimitStream::default(),
            authn: AuthnStream::new(context_id),
            ratelimit: RatelimitStream::default(),
        }
    }

    fn on_request(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut GatewayStream,
    ) -> Flow {
        if let Some(tracing) = &self.stages.tracing {
            tracing.on_request(host, request, &mut stream.trace);
        }
        self.run_from(host, request, stream, Stage::PreAuth)
    }

    /// Ratelimit's fields first, then pre-auth's, as the two filters of a chain would leave
    /// them (the one nearer the client writes last); the trace headers in any case.
    fn on_response(&self, host: &(impl Host + ?Sized), stream: &mut GatewayStream) {
        let s = &self.stages;
        if let Some(r) = &s.ratelimit {
            r.on_response(host, &mut stream.ratelimit);
        }
        if let Some(p) = &s.pre_auth {
            p.on_response(host, &mut stream.pre_auth);
        }
        if let Some(t) = &s.tracing {
            t.on_response(host, &mut stream.trace);
        }
    }

    fn on_tick(&self, host: &(impl Host + ?Sized)) -> Vec<u32> {
        let s = &self.stages;
        if let Some(t) = &s.tracing {
            t.on_tick(host);
        }
        for r in [&s.pre_auth, &s.ratelimit].into_iter().flatten() {
            r.on_tick(host);
        }
        s.authn
            .as_ref()
            .map(|a| a.on_tick(host))
            .unwrap_or_default()
    }

    /// The root's callouts: span exports (tracing) and JWKS fetches (authn).
    fn on_http_call_response(
        &self,
        host: &(impl Host + ?Sized),
        token: u32,
        body_size: usize,
    ) -> Vec<u32> {
        let s = &self.stages;
        let exported = s.tracing.as_ref().and_then(Tracing::exporter);
        if exported.is_some_and(|e| e.on_response(host, token, body_size)) {
            return Vec::new();
        }
        s.authn
            .as_ref()
            .map(|a| a.on_http_call_response(host, token, body_size))
            .unwrap_or_default()
    }

    fn on_log(
        &self,
        host: &(impl Host + ?Sized),
        request: &RequestView,
        stream: &mut GatewayStream,
    ) {
        if let Some(t) = &self.stages.tracing {
            t.on_log(host, request, &mut stream.trace);
        }
    }

    fn on_wake(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut GatewayStream,
    ) -> Flow {
        let (Some(Stage::Authn), Some(authn)) = (stream.waiting_in, &self.stages.authn) else {
            return Flow::Pause;
        };
        let flow = authn.on_wake(host, request, &mut stream.authn);
        self.resumed(host, request, stream, Stage::Authn, flow)
    }

    fn on_grpc_call_response(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut GatewayStream,
        token: u32,
        status: u32,
        size: usize,
    ) -> Flow {
        let s = &self.stages;
        let (stage, flow) = match stream.waiting_in {
            Some(Stage::PreAuth) => match &s.pre_auth {
                Some(p) => (
                    Stage::PreAuth,
                    p.on_grpc_call_response(
                        host,
                        request,
                        &mut stream.pre_auth,
                        token,
                        status,
                        size,
                    ),
                ),
                None => return Flow::Pause,
            },
            Some(Stage::Ratelimit) => match &s.ratelimit {
                Some(r) => (
                    Stage::Ratelimit,
                    r.on_grpc_call_response(
                        host,
                        request,
                        &mut stream.ratelimit,
                        token,
                        status,
                        size,
                    ),
                ),
                None => return Flow::Pause,
            },
            _ => return Flow::Pause,
        };
        self.resumed(host, request, stream, stage, flow)
    }

    fn awaited_call(&self, stream: &GatewayStream) -> Option<u32> {
        let s = &self.stages;
        match stream.waiting_in? {
            Stage::PreAuth => s.pre_auth.as_ref()?.awaited_call(&stream.pre_auth),
            Stage::Authn => None,
            Stage::Ratelimit => s.ratelimit.as_ref()?.awaited_call(&stream.ratelimit),
        }
    }

    fn on_stream_end(&self, stream: &mut GatewayStream) {
        if let Some(authn) = &self.stages.authn {
            authn.on_stream_end(&mut stream.authn);
        }
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
