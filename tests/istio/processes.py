"""Real servers the Istio tests start on 127.0.0.1: an OCI registry (Debian's `docker-registry`,
distribution 2.8) and Envoy. Each is a context manager that always stops its process, also when
the test fails, and shows the process's log tail when it does not come up."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, what: str, log: Path, process: subprocess.Popen, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{tail(log)}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {seconds}s:\n{tail(log)}")


def tail(log: Path, lines: int = 25) -> str:
    """The log's last lines, without Envoy's long startup inventory."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(line for line in text if "server.cc:4" not in line and "server.cc:5" not in line)[-6000:]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Registry:
    """`docker-registry serve` with filesystem storage in a temp dir on a free loopback port."""

    def __init__(self):
        binary = os.environ.get("DOCKER_REGISTRY_BIN") or shutil.which("docker-registry")
        if not binary:
            raise RuntimeError("docker-registry not found: `make tools` installs Debian's docker-registry")
        self.binary = binary
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"

    def __enter__(self) -> "Registry":
        self.dir = Path(tempfile.mkdtemp(prefix="wasmgate-registry-"))
        config = self.dir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: info}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.dir / 'data'}}}}}\n"
            f"http: {{addr: '{self.address}'}}\n"
        )
        self.log = self.dir / "registry.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [self.binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        try:
            wait_until(lambda: http_ok(f"http://{self.address}/v2/"), "registry", self.log, self.process)
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        stop(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


def envoy_binary() -> str:
    """ENVOY_BIN, else the project venv's Envoy (WASMGATE_VENV from the Makefile, or the venv
    whose Python runs these tests, or .venv)."""
    if os.environ.get("ENVOY_BIN"):
        return os.environ["ENVOY_BIN"]
    venvs = [os.environ.get("WASMGATE_VENV"), Path(sys.executable).parent.parent, ROOT / ".venv"]
    for venv in filter(None, venvs):
        if (Path(venv) / "bin" / "envoy").exists():
            return str(Path(venv) / "bin" / "envoy")
    raise RuntimeError("Envoy not found: run `make tools` or set ENVOY_BIN")


class Envoy:
    """Envoy with one bootstrap file; `admin_port` must be the bootstrap's admin port."""

    def __init__(self, bootstrap: Path, admin_port: int, workdir: Path, expect_ready: bool = True):
        """With `expect_ready=False`, start returns once the admin endpoint answers (for a proxy
        that must stay initializing)."""
        self.bootstrap, self.admin_port, self.workdir = bootstrap, admin_port, workdir
        self.expect_ready = expect_ready
        self.log = workdir / "envoy.log"

    def __enter__(self) -> "Envoy":
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [envoy_binary(), "-c", str(self.bootstrap), "--concurrency", "2",
                 "--base-id", str(self.admin_port), "--log-level", "info",
                 "--component-log-level", "wasm:debug"],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
            )
        try:
            probe = "/ready" if self.expect_ready else "/server_info"
            wait_until(
                lambda: http_ok(f"http://127.0.0.1:{self.admin_port}{probe}"), "envoy", self.log, self.process
            )
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        stop(self.process)

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as r:
            return r.read().decode()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")
