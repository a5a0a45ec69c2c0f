//! The rate-limit service for global-mode tests, as real processes on 127.0.0.1: a throwaway
//! Redis (Debian's `redis-server`) and the RLS test server over it (`target/debug/rls-server`,
//! crate tests/rls-server: Kuadrant's limitador behind Envoy's RateLimitService gRPC API). Both
//! stop when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// Waits until something accepts connections on `port` (a process start, not a measurement).
fn wait_listening(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} is not listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A throwaway Redis on 127.0.0.1 (no persistence), stopped on drop.
pub struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Self {
        let mut redis = Redis {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port, empty.
    pub fn restart(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server (Debian package redis-server; `make tools` installs it): {e}")
            });
        wait_listening(self.port, "redis-server", &mut child);
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP / SIGCONT: Redis keeps its connections but answers nothing.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .expect("redis-server runs");
        // SAFETY: plain kill(2) on the child we started.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal(libc::SIGCONT);
        }
        self.kill();
    }
}

/// The RLS test server (limitador over Redis), stopped on drop.
pub struct Rls {
    pub port: u16,
    child: Child,
    limits: PathBuf,
}

/// `WASMGATE_RLS_SERVER`, or `target/debug/rls-server` (`make rls-server` builds it).
pub fn rls_binary() -> PathBuf {
    let path = std::env::var_os("WASMGATE_RLS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target/debug/rls-server"));
    assert!(
        path.exists(),
        "{} is missing: make rls-server",
        path.display()
    );
    path
}

impl Rls {
    /// Serves `limits` (Limitador's limits YAML) with counters in `redis`; `extra` are further
    /// rls-server arguments (`--request-header name:value`, `--storage-timeout-ms N`, …).
    pub fn start(redis: &Redis, limits: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let file = std::env::temp_dir().join(format!("wasmgate-rls-{port}.yaml"));
        std::fs::write(&file, limits)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        let mut child = Command::new(rls_binary())
            .args([
                "--redis",
                &redis.url(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--limits")
            .arg(&file)
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start rls-server: {e}"));
        wait_listening(port, "rls-server", &mut child);
        Rls {
            port,
            child,
            limits: file,
        }
    }
}

impl Drop for Rls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.limits);
    }
}
