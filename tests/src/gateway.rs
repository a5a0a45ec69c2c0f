//! [`Gateway`]: one Envoy with a rendered `envoy-config/` file in front of an echo upstream,
//! ready to take requests. Build it with [`Gateway::builder`].

use crate::envoy::EnvoyProcess;
use crate::http::{Client, Response};
use crate::render::{EnvoyConfig, ADMIN_PORT, LISTENER_PORT, UPSTREAM_PORT};
use crate::server::TestServer;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct GatewayBuilder {
    file: String,
    config: Result<EnvoyConfig, String>,
    ports: Vec<(u64, u64)>,
    concurrency: u32,
    upstream: Option<TestServer>,
}

/// A running Envoy and its echo upstream; both stop when this is dropped.
pub struct Gateway {
    envoy: EnvoyProcess,
    upstream: TestServer,
    admin: String,
    listener_port: u16,
    client: Client,
    workdir: PathBuf,
}

impl Gateway {
    /// Starts from `envoy-config/<file>`.
    pub fn builder(file: &str) -> GatewayBuilder {
        let path = crate::repo_root().join("envoy-config").join(file);
        GatewayBuilder {
            file: file.to_string(),
            config: EnvoyConfig::load(&path),
            ports: Vec::new(),
            concurrency: 2,
            upstream: None,
        }
    }

    /// Starts from a config given as YAML text (for rendered configs that are not examples).
    pub fn builder_from_yaml(name: &str, yaml: &str) -> GatewayBuilder {
        GatewayBuilder {
            file: name.to_string(),
            config: EnvoyConfig::parse(yaml),
            ports: Vec::new(),
            concurrency: 2,
            upstream: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.listener_port)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub fn listener_port(&self) -> u16 {
        self.listener_port
    }

    pub fn upstream(&self) -> &TestServer {
        &self.upstream
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.client.get(&self.url(path), headers)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.client.request(method, &self.url(path), headers, body)
    }

    /// A counter or gauge from the admin `/stats` (text format), by its Envoy name.
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.stat_text(name)?.parse().ok()
    }

    /// Any stat from the admin `/stats` as Envoy prints it (a text stat such as ECDS's
    /// `version_text` keeps its quotes).
    pub fn stat_text(&self, name: &str) -> Option<String> {
        let text = self.client.get(&self.admin_url("/stats"), &[]).body;
        text.lines().find_map(|line| {
            let (k, v) = line.split_once(": ")?;
            (k == name).then(|| v.trim().to_string())
        })
    }

    /// The value of an un-labelled Prometheus sample from `/stats/prometheus`.
    pub fn prometheus_metric(&self, name: &str) -> Option<f64> {
        let text = self.prometheus();
        text.lines().find_map(|line| {
            let (k, v) = line.rsplit_once(' ')?;
            let k = k.strip_suffix("{}").unwrap_or(k);
            (k == name).then(|| v.parse().ok()).flatten()
        })
    }

    /// Every decision authn counted: requests it let through and refusals by reason.
    pub fn authn_decisions(&self) -> u64 {
        let total: f64 = self
            .prometheus()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                let k = k.strip_suffix("{}").unwrap_or(k);
                let decision =
                    k == "wasmgate_authn_allowed" || k.starts_with("wasmgate_authn_denied_");
                decision.then(|| v.parse::<f64>().ok()).flatten()
            })
            .sum();
        total as u64
    }

    pub fn prometheus(&self) -> String {
        self.client
            .get(&self.admin_url("/stats/prometheus"), &[])
            .body
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        self.envoy.log()
    }

    /// Waits until Envoy's log contains `needle`, up to `limit`.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn envoy_pid(&self) -> u32 {
        self.envoy.pid()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.envoy.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- last lines of Envoy's log ({}) ----\n{}",
                self.envoy.log_path.display(),
                tail(&self.envoy.log(), 60)
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.workdir);
        }
    }
}

impl GatewayBuilder {
    /// Replaces the plugin configuration of the Wasm filter whose `root_id` is `root_id`.
    pub fn plugin_config(self, root_id: &str, json: serde_json::Value) -> Self {
        self.plugin_config_raw(root_id, &json.to_string())
    }

    /// As [`GatewayBuilder::plugin_config`] with raw text (which need not be valid JSON).
    pub fn plugin_config_raw(mut self, root_id: &str, text: &str) -> Self {
        if let Ok(config) = &mut self.config {
            assert!(
                config.set_plugin_config(root_id, text),
                "{}: no Wasm filter with root_id {root_id}",
                self.file
            );
        }
        self
    }

    /// Every `port_value: from` in the config becomes `to` (a test server's port).
    pub fn port(mut self, from: u16, to: u16) -> Self {
        self.ports.push((u64::from(from), u64::from(to)));
        self
    }

    pub fn concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers;
        self
    }

    /// Uses `upstream` instead of a fresh echo server.
    pub fn upstream(mut self, upstream: TestServer) -> Self {
        self.upstream = Some(upstream);
        self
    }

    /// Edits the rendered config directly.
    pub fn edit(mut self, f: impl FnOnce(&mut EnvoyConfig)) -> Self {
        if let Ok(config) = &mut self.config {
            f(config);
        }
        self
    }

    /// Starts Envoy and waits for `/ready`; panics with Envoy's log if it does not get there.
    pub fn start(self) -> Gateway {
        match self.launch() {
            Ok(gateway) => gateway,
            Err((why, log)) => panic!(
                "Envoy did not start: {why}\n---- Envoy log ----\n{}",
                tail(&log, 80)
            ),
        }
    }

    /// Starts Envoy expecting it to refuse the config; returns its log. Panics if it serves.
    pub fn start_expecting_failure(self) -> String {
        match self.launch() {
            Ok(gateway) => panic!(
                "Envoy accepted the configuration\n---- Envoy log ----\n{}",
                tail(&gateway.log(), 40)
            ),
            Err((_, log)) => log,
        }
    }

    fn launch(self) -> Result<Gateway, (String, String)> {
        let mut config = self.config.map_err(|e| (e, String::new()))?;
        let upstream = self.upstream.unwrap_or_else(TestServer::echo);
        let root = crate::repo_root();
        config.map_port(LISTENER_PORT, 0);
        config.map_port(ADMIN_PORT, 0);
        config.map_port(UPSTREAM_PORT, u64::from(upstream.port()));
        for (from, to) in &self.ports {
            config.map_port(*from, *to);
        }
        config.absolutize_paths(&root);

        let workdir = new_workdir(&self.file);
        let rendered = workdir.join("envoy.yaml");
        std::fs::write(&rendered, config.to_yaml()).map_err(|e| (e.to_string(), String::new()))?;
        let mut envoy = EnvoyProcess::spawn(&rendered, self.concurrency, &workdir)
            .map_err(|e| (format!("cannot run Envoy: {e}"), String::new()))?;

        let client = Client::new();
        let start = Instant::now();
        let admin = loop {
            if let Some(status) = envoy.exited() {
                return Err((format!("Envoy exited ({status})"), envoy.log()));
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(("not ready in time".into(), envoy.log()));
            }
            if let Some(admin) = std::fs::read_to_string(&envoy.admin_address_path)
                .ok()
                .filter(|a| !a.trim().is_empty())
            {
                let admin = admin.trim().to_string();
                let ready = client
                    .try_request("GET", &format!("http://{admin}/ready"), &[], b"")
                    .is_ok_and(|r| r.status == 200);
                if ready {
                    break admin;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let listener_port = listener_port(&client, &admin)
            .ok_or_else(|| ("no listener named `gateway` found".to_string(), envoy.log()))?;
        Ok(Gateway {
            envoy,
            upstream,
            admin,
            listener_port,
            client,
            workdir,
        })
    }
}

/// The bound port of the listener named `gateway` (or the first one), from `/listeners`.
fn listener_port(client: &Client, admin: &str) -> Option<u16> {
    let body = client
        .try_request(
            "GET",
            &format!("http://{admin}/listeners?format=json"),
            &[],
            b"",
        )
        .ok()?
        .json();
    let statuses = body.get("listener_statuses")?.as_array()?;
    let chosen = statuses
        .iter()
        .find(|s| s.get("name").and_then(|n| n.as_str()) == Some("gateway"))
        .or_else(|| statuses.first())?;
    let port = chosen
        .pointer("/local_address/socket_address/port_value")?
        .as_u64()?;
    u16::try_from(port).ok()
}

fn new_workdir(file: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let stem = file.trim_end_matches(".yaml").replace('/', "_");
    let dir = std::env::temp_dir().join(format!("wasmgate-{}-{stem}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
