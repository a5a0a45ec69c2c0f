//! Command line: `rls-server --redis URL --listen ADDR --limits FILE [options]`.

use std::net::SocketAddr;
use std::time::Duration;

pub const USAGE: &str = "usage: rls-server --redis redis://127.0.0.1:6379 --listen 127.0.0.1:8082 \
--limits limits.yaml [--storage-timeout-ms 1000] [--concurrent] \
[--rate-limit-headers draft03] [--request-header name:value]...";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub redis: String,
    pub listen: SocketAddr,
    pub limits: String,
    /// A Redis call slower than this is a failure (gRPC UNAVAILABLE), as for Redis down.
    pub storage_timeout: Duration,
    /// Let checks run concurrently. By default they take turns: limitador's Redis storage
    /// reads the counters and then increments them in a second round trip, so two checks in
    /// flight at once can both see the last unit of a limit.
    pub concurrent: bool,
    /// Adds Limitador's `X-RateLimit-*` (draft 03) fields to `response_headers_to_add`, as
    /// Limitador's `--rate-limit-headers DRAFT_VERSION_03` does.
    pub draft03_headers: bool,
    /// Put in `request_headers_to_add` of every admitted request.
    pub request_headers: Vec<(String, String)>,
}

pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut redis = None;
    let mut listen = None;
    let mut limits = None;
    let mut storage_timeout = Duration::from_millis(1000);
    let mut concurrent = false;
    let mut draft03_headers = false;
    let mut request_headers = Vec::new();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--redis" => redis = Some(value()?),
            "--listen" => {
                let v = value()?;
                listen = Some(v.parse().map_err(|e| format!("--listen {v}: {e}"))?);
            }
            "--limits" => limits = Some(value()?),
            "--storage-timeout-ms" => {
                let v = value()?;
                let ms: u64 = v
                    .parse()
                    .map_err(|e| format!("--storage-timeout-ms {v}: {e}"))?;
                storage_timeout = Duration::from_millis(ms);
            }
            "--concurrent" => concurrent = true,
            "--rate-limit-headers" => match value()?.as_str() {
                "draft03" | "DRAFT_VERSION_03" => draft03_headers = true,
                "none" | "NONE" => draft03_headers = false,
                other => return Err(format!("--rate-limit-headers {other}: draft03 or none")),
            },
            "--request-header" => {
                let v = value()?;
                let (name, val) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--request-header {v}: expected name:value"))?;
                request_headers.push((name.trim().to_string(), val.trim().to_string()));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        redis: redis.ok_or("--redis is required")?,
        listen: listen.ok_or("--listen is required")?,
        limits: limits.ok_or("--limits is required")?,
        storage_timeout,
        concurrent,
        draft03_headers,
        request_headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Args, String> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_every_option() {
        let a = parse_str(
            "--redis redis://127.0.0.1:7 --listen 127.0.0.1:9 --limits l.yaml \
             --storage-timeout-ms 250 --concurrent --rate-limit-headers draft03 \
             --request-header x-a:1 --request-header x-b:2",
        )
        .unwrap();
        assert_eq!(a.redis, "redis://127.0.0.1:7");
        assert_eq!(a.listen.port(), 9);
        assert_eq!(a.storage_timeout, Duration::from_millis(250));
        assert!(a.concurrent && a.draft03_headers);
        assert_eq!(a.request_headers.len(), 2);
    }

    #[test]
    fn required_and_unknown_arguments_are_errors() {
        assert_eq!(
            parse_str("--listen 127.0.0.1:9 --limits l.yaml"),
            Err("--redis is required".to_string())
        );
        assert!(parse_str("--redis r --listen x --limits l").is_err());
        assert_eq!(
            parse_str("--bogus"),
            Err("unknown argument --bogus".to_string())
        );
    }
}
