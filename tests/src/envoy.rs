//! Finding and running Envoy. Discovery order: `ENVOY_BIN` (a path, or a command such as
//! `func-e run`), `func-e` on PATH (as `func-e run`), then the project venv's `envoy`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The command that runs Envoy: a program and the arguments before Envoy's own.
#[derive(Debug, Clone)]
pub struct EnvoyBinary {
    pub program: String,
    pub prefix_args: Vec<String>,
    /// Where it came from, for the banner.
    pub source: &'static str,
}

impl EnvoyBinary {
    /// The Envoy to use, discovered once per process; prints which one and its version.
    pub fn get() -> &'static EnvoyBinary {
        static BINARY: OnceLock<EnvoyBinary> = OnceLock::new();
        BINARY.get_or_init(|| {
            let binary = Self::discover();
            eprintln!(
                "wasmgate: Envoy from {}: `{}` — {}",
                binary.source,
                binary.display(),
                binary.version()
            );
            binary
        })
    }

    pub fn discover() -> EnvoyBinary {
        if let Some(value) = std::env::var("ENVOY_BIN")
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            let mut words = value.split_whitespace().map(str::to_string);
            let program = words.next().unwrap_or_default();
            return EnvoyBinary {
                program,
                prefix_args: words.collect(),
                source: "ENVOY_BIN",
            };
        }
        if let Some(func_e) = which("func-e") {
            return EnvoyBinary {
                program: func_e.to_string_lossy().into_owned(),
                prefix_args: vec!["run".into()],
                source: "func-e on PATH",
            };
        }
        let venv = std::env::var_os("WASMGATE_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::repo_root().join(".venv"));
        EnvoyBinary {
            program: venv.join("bin/envoy").to_string_lossy().into_owned(),
            prefix_args: Vec::new(),
            source: "the project venv (make tools)",
        }
    }

    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.prefix_args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.prefix_args);
        cmd
    }

    /// `envoy --version`, trimmed; an explanation if it cannot run.
    pub fn version(&self) -> String {
        match self.command().arg("--version").output() {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                let line = text.lines().find(|l| l.contains("version")).unwrap_or("");
                line.trim().to_string()
            }
            Err(err) => format!("cannot run it: {err} (run `make tools`, or set ENVOY_BIN)"),
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A running Envoy. Dropping it stops the whole process group (func-e and its Envoy too).
pub struct EnvoyProcess {
    child: Child,
    pub log_path: PathBuf,
    pub admin_address_path: PathBuf,
}

impl EnvoyProcess {
    /// Starts Envoy on `config` with `concurrency` workers; its stderr goes to `log_path`.
    pub fn spawn(config: &Path, concurrency: u32, workdir: &Path) -> std::io::Result<Self> {
        let log_path = workdir.join("envoy.log");
        let admin_address_path = workdir.join("admin-address");
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = EnvoyBinary::get().command();
        cmd.arg("-c")
            .arg(config)
            .args(["--concurrency", &concurrency.to_string()])
            .arg("--disable-hot-restart")
            .arg("--admin-address-path")
            .arg(&admin_address_path)
            .args(["--log-level", "info", "--component-log-level", "wasm:debug"])
            .current_dir(crate::repo_root())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        own_process_group(&mut cmd);
        let child = cmd.spawn()?;
        Ok(Self {
            child,
            log_path,
            admin_address_path,
        })
    }

    /// `Some(status)` once Envoy has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `limit` for Envoy to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM to the group, then SIGKILL after a grace period.
    pub fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let pgid = self.child.id() as i32;
        // SAFETY: plain kill(2) on the process group we created.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
        if self.wait_exit(Duration::from_secs(5)).is_none() {
            // SAFETY: as above.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            let _ = self.child.wait();
        }
    }
}

impl Drop for EnvoyProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Envoy gets its own process group (so the whole group can be stopped, func-e included) and
/// dies with the thread that started it if the test process is killed.
fn own_process_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}
