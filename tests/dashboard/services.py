"""The real processes the dashboard test runs beside Envoy, on 127.0.0.1: Prometheus (Debian's
`prometheus`) scraping Envoy's admin `/stats/prometheus`, and the rate-limit service of global
mode (Debian's `redis-server` and `target/debug/rls-server`, as tests/src/rls.rs starts them).
Each is a context manager that always stops its processes."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from processes import ROOT, free_port, http_ok, stop, tail, wait_until


def _binary(name: str, env: str, package: str) -> str:
    path = os.environ.get(env) or shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} not found: `make tools` installs Debian's {package} (or set {env})")
    return path


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Prometheus:
    """`prometheus` scraping `targets` (host:port) at `metrics_path` every second, with
    `rule_files` loaded and evaluated every second; a temp dir for its TSDB."""

    def __init__(self, targets: list[str], metrics_path: str, rule_files: list[Path] = ()):
        self.binary = _binary("prometheus", "PROMETHEUS_BIN", "prometheus")
        self.targets, self.metrics_path, self.rule_files = targets, metrics_path, rule_files
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Prometheus":
        self.dir = Path(tempfile.mkdtemp(prefix="wasmgate-prometheus-"))
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [{"job_name": "envoy", "metrics_path": self.metrics_path,
                                "static_configs": [{"targets": self.targets}]}],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = self.dir / "prometheus.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={self.dir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
            )
        try:
            wait_until(lambda: http_ok(f"{self.url}/-/ready"), "prometheus", self.log, self.process)
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        stop(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)

    def api(self, path: str, **params) -> dict:
        """The `data` of a Prometheus HTTP API answer; raises with Prometheus's own error text."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as e:
            answer = json.loads(e.read() or b"{}")
        if answer.get("status") != "success":
            raise PrometheusError(f"{answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query's result vector (a scalar or string result is one element)."""
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [{"value": data["result"]}]

    def log_text(self) -> str:
        return tail(self.log)


class PrometheusError(Exception):
    pass


class RateLimitService:
    """A throwaway Redis and the RLS test server over it, serving `limits` (Limitador's limits
    YAML). `stop_redis()` makes every later check fail, as a Redis outage does."""

    def __init__(self, limits: str, workdir: Path):
        self.limits, self.workdir = limits, workdir
        self.redis_port, self.port = free_port(), free_port()

    def __enter__(self) -> "RateLimitService":
        redis = _binary("redis-server", "REDIS_BIN", "redis-server")
        rls = os.environ.get("WASMGATE_RLS_SERVER") or str(ROOT / "target" / "debug" / "rls-server")
        if not Path(rls).exists():
            raise RuntimeError(f"{rls} is missing: `make rls-server` builds it (or set WASMGATE_RLS_SERVER)")
        limits = self.workdir / "limits.yaml"
        limits.write_text(self.limits)
        self.redis_log, self.log = self.workdir / "redis.log", self.workdir / "rls-server.log"
        self.redis = self.process = None
        try:
            with open(self.redis_log, "wb") as out:
                self.redis = subprocess.Popen(
                    [redis, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no"], stdout=out, stderr=subprocess.STDOUT)
            wait_until(lambda: _listening(self.redis_port), "redis-server", self.redis_log, self.redis)
            self.command = [rls, "--redis", f"redis://127.0.0.1:{self.redis_port}",
                            "--listen", f"127.0.0.1:{self.port}", "--limits", str(limits)]
            self.start_service()
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def start_service(self):
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: _listening(self.port), "rls-server", self.log, self.process)

    def kill_service(self):
        """The service dies (SIGKILL): calls fail until `start_service()`."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop_redis(self):
        stop(self.redis)

    def __exit__(self, *exc):
        for process in (self.process, self.redis):
            if process is not None:
                stop(process)
