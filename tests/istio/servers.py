"""Real HTTP servers on 127.0.0.1 for the delivery tests: an echo upstream that answers with the
request it saw, and an identity provider serving a JWKS over TLS with a test CA; plus JWT minting
with that provider's key."""

import base64
import datetime
import http.client
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle plus delayed ACKs stall
    # every response by ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, status: int, body: bytes, content_type="application/json"):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server:
    def __init__(self, handler, tls: ssl.SSLContext | None = None):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]

    def __enter__(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class EchoUpstream(_Server):
    """Answers 200 with {"method", "path", "headers"} as it received them."""

    def __init__(self):
        self.hits = 0
        upstream = self

        class Handler(_Quiet):
            def handle_any(self):
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                upstream.hits += 1
                seen = {"method": self.command, "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()}}
                self.reply(200, json.dumps(seen).encode())

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

        super().__init__(Handler)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class IdentityProvider(_Server):
    """Serves `/.well-known/jwks.json` over TLS for `hostname`, signed by a fresh test CA;
    `token(...)` mints RS256 JWTs with the key the JWKS publishes. While `down` is set it
    answers 503, as an identity provider in trouble does."""

    def __init__(self, hostname: str, workdir: Path, kid: str = "test-key-1"):
        self.hostname, self.kid = hostname, kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.key.public_key().public_numbers()
        jwks = {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                          "n": _uint(numbers.n), "e": _uint(numbers.e)}]}
        self.ca_file, tls = _tls_for(hostname, workdir)
        self.hits = 0
        self.down = False
        provider = self

        class Handler(_Quiet):
            def do_GET(self):
                if self.path != "/.well-known/jwks.json":
                    return self.reply(404, b"{}")
                if provider.down:
                    return self.reply(503, b"{}")
                provider.hits += 1
                self.reply(200, json.dumps(jwks).encode(), "application/jwk-set+json")

        super().__init__(Handler, tls)

    def token(self, claims: dict, lifetime: int = 600) -> str:
        now = int(time.time())
        body = {"iat": now, "nbf": now - 5, "exp": now + lifetime, **claims}
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(body).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def _tls_for(hostname: str, workdir: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA and a server certificate for `hostname`; returns the CA file and the server context."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wasmgate test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = workdir / "ca.pem", workdir / "idp.pem", workdir / "idp-key.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    cert_file.write_bytes(cert.public_bytes(pem))
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)

    def upstream_header(self, name: str) -> str | None:
        return self.json()["headers"].get(name.lower())


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None,
            timeout: float = 10, source: str = "127.0.0.1") -> Response:
    """`source`: the client address to connect from (any 127.0.0.0/8 address), for per-client keys."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        connection.request(method, path, headers={"host": "api.example.com", **(headers or {})})
        response = connection.getresponse()
        body = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()
