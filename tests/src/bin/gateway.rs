//! `make run`: the wasmgate gateway module (`envoy-config/gateway.yaml`, dist/gateway.wasm) in
//! real Envoy on 127.0.0.1:10000 (admin 9901) in front of the echo upstream on 127.0.0.1:8080.
//! Prints what to try, then runs until Ctrl-C, when it stops Envoy and the upstream. The same
//! gateway as separate modules is `envoy-config/chain.yaml`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmgate_tests::envoy::{EnvoyBinary, EnvoyProcess};
use wasmgate_tests::render::EnvoyConfig;
use wasmgate_tests::{repo_root, Client, TestServer};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    let root = repo_root();
    let binary = EnvoyBinary::get();

    let upstream = TestServer::start_on(8080, wasmgate_tests::server::echo_reply);
    let mut config = match EnvoyConfig::load(&root.join("envoy-config/gateway.yaml")) {
        Ok(c) => c,
        Err(e) => return eprintln!("{e}"),
    };
    config.absolutize_paths(&root);
    let workdir = root.join(".work/run");
    let _ = std::fs::create_dir_all(&workdir);
    let rendered = workdir.join("gateway.yaml");
    if let Err(e) = std::fs::write(&rendered, config.to_yaml()) {
        return eprintln!("cannot write {}: {e}", rendered.display());
    }
    let mut envoy = match EnvoyProcess::spawn(&rendered, 2, &workdir) {
        Ok(e) => e,
        Err(e) => return eprintln!("cannot start Envoy ({}): {e}", binary.display()),
    };

    let client = Client::new();
    let ready = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        envoy.exited().is_none()
            && client
                .try_request("GET", "http://127.0.0.1:9901/ready", &[], b"")
                .is_ok_and(|r| r.status == 200)
    });
    if !ready {
        eprintln!(
            "Envoy did not become ready; its log ({}):",
            envoy.log_path.display()
        );
        eprintln!("{}", wasmgate_tests::gateway::tail(&envoy.log(), 40));
        return;
    }
    print_banner(&root, &envoy);

    while !STOP.load(Ordering::SeqCst) {
        if let Some(status) = envoy.exited() {
            eprintln!(
                "Envoy exited ({status}); its log: {}",
                envoy.log_path.display()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    envoy.stop();
    drop(upstream);
    println!("\nstopped Envoy and the upstream.");
}

fn print_banner(root: &std::path::Path, envoy: &EnvoyProcess) {
    let demo_token = std::fs::read_to_string(root.join("envoy-config/demo/demo-token.jwt"))
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    println!(
        r#"
wasmgate gateway is up (Envoy pid {pid}; log {log})
  listener  http://127.0.0.1:10000   (gateway.wasm: tracing → pre_auth → authn → ratelimit → echo upstream)
  admin     http://127.0.0.1:9901    (metrics: curl -s 127.0.0.1:9901/stats/prometheus | grep wasmgate)
  upstream  http://127.0.0.1:8080    (answers with the request it saw, as JSON)

Try:"#,
        pid = envoy.pid(),
        log = envoy.log_path.display()
    );
    let demo =
        std::fs::read_to_string(root.join("envoy-config/demo/commands.txt")).unwrap_or_default();
    for line in demo.lines() {
        println!("  {}", line.replace("$DEMO_TOKEN", &demo_token));
    }
    println!("\nCtrl-C stops Envoy and the upstream.");
}
