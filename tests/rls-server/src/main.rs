//! `rls-server`: Envoy's rate-limit service (gRPC, `envoy.service.ratelimit.v3`) backed by
//! Kuadrant's limitador library with its Redis storage. Test infrastructure for the global
//! mode of the ratelimit filter; in production run Limitador or envoyproxy/ratelimit instead
//! (docs/ratelimit-global.md).

mod args;
mod service;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use limitador::limit::Limit;
use limitador::storage::redis::AsyncRedisStorage;
use limitador::AsyncRateLimiter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use service::Rls;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use tokio::sync::Mutex;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rls-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args =
        args::parse(std::env::args().skip(1)).map_err(|e| format!("{e}\n{}", args::USAGE))?;
    let text = std::fs::read_to_string(&args.limits)
        .map_err(|e| format!("reading {}: {e}", args.limits))?;
    // Limitador's own limits file format: a YAML list of limits.
    let limits: Vec<Limit> =
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", args.limits))?;
    let storage = storage(&args)
        .await
        .map_err(|e| format!("connecting to {}: {e}", args.redis))?;
    let limiter = AsyncRateLimiter::new_with_storage(Box::new(storage));
    let count = limits.len();
    for limit in limits {
        limiter.add_limit(limit);
    }
    let rls = Rls {
        limiter,
        storage_timeout: args.storage_timeout,
        turn: (!args.concurrent).then(|| Mutex::new(())),
        draft03_headers: args.draft03_headers,
        request_headers: args.request_headers,
        served: AtomicU64::new(0),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "rls-server: {count} limits, redis {}, listening on {local}",
        args.redis
    );
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(RateLimitServiceServer::new(rls))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("serving: {e}"))
}

/// limitador's Redis storage over a connection that comes back quickly after Redis does:
/// redis 0.27's default reconnect backoff grows from one second by a factor of 100, so a
/// restarted Redis would not be used again for minutes.
async fn storage(args: &args::Args) -> redis::RedisResult<AsyncRedisStorage> {
    let client = redis::Client::open(args.redis.as_str())?;
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_factor(2)
        .set_max_delay(200)
        .set_connection_timeout(args.storage_timeout)
        .set_response_timeout(args.storage_timeout);
    let manager = ConnectionManager::new_with_config(client, config).await?;
    AsyncRedisStorage::new_with_conn_manager(manager).await
}
