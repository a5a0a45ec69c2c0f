"""Signing keys and JWTs for the benchmark: one key per algorithm, its JWKS (given inline to
both the Wasm filter and native jwt_authn), one repeated token, a pool of distinct tokens, and a
pool of forged tokens (valid header and claims, random signature) for the forged-token flood.

Keys are made fresh on every run; nothing here is a secret worth keeping."""

import base64
import json
import secrets
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://bench.wasmgate.local"
AUDIENCE = "wasmgate-bench"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n: int, size: int | None = None) -> str:
    size = size or (n.bit_length() + 7) // 8
    return b64url(n.to_bytes(size, "big"))


# ECDSA per JWS algorithm: curve, hash, and the byte length of a coordinate and of r and s.
EC = {
    "ES256": (ec.SECP256R1, hashes.SHA256, "P-256", 32),
    "ES384": (ec.SECP384R1, hashes.SHA384, "P-384", 48),
    "ES512": (ec.SECP521R1, hashes.SHA512, "P-521", 66),
}


class Signer:
    """One key of one JWS algorithm: signs tokens and describes itself as a JWK."""

    def __init__(self, alg: str):
        self.alg = alg
        self.issuer = ISSUER
        self.audience = AUDIENCE
        self.kid = f"bench-{alg.lower()}"
        if alg in ("RS256", "PS256"):
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pub = self.key.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "n": uint(pub.n), "e": uint(pub.e)}
        elif alg in EC:
            curve, _, crv, size = EC[alg]
            self.key = ec.generate_private_key(curve())
            pub = self.key.public_key().public_numbers()
            self.jwk = {"kty": "EC", "crv": crv, "x": uint(pub.x, size), "y": uint(pub.y, size)}
        elif alg == "EdDSA":
            self.key = ed25519.Ed25519PrivateKey.generate()
            raw = self.key.public_key().public_bytes_raw()
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        else:
            raise ValueError(alg)
        self.jwk.update({"kid": self.kid, "alg": alg, "use": "sig"})

    def jwks(self) -> str:
        return json.dumps({"keys": [self.jwk]})

    def sign(self, data: bytes) -> bytes:
        if self.alg == "RS256":
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if self.alg == "PS256":
            # RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash.
            return self.key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        if self.alg in EC:
            _, hash_type, _, size = EC[self.alg]
            r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hash_type())))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return self.key.sign(data)

    def signing_input(self, subject: str, now: int) -> str:
        header = {"alg": self.alg, "typ": "JWT", "kid": self.kid}
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "scope": "read write",
            "iat": now,
            "nbf": now - 60,
            # Valid for the whole run and then some; both verifiers check it.
            "exp": now + 6 * 3600,
        }
        return (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )

    def token(self, subject: str, now: int) -> str:
        signing_input = self.signing_input(subject, now)
        return signing_input + "." + b64url(self.sign(signing_input.encode()))

    def pool(self, count: int) -> list[str]:
        now = int(time.time())
        return [self.token(f"user-{i:06d}", now) for i in range(count)]

    def forged_signature(self) -> bytes:
        """Random bytes shaped like a real signature, in range, so that no verifier can refuse
        them early: for RS256 an integer below the modulus (one at or above it would be refused
        before the exponentiation), for ES256 r and s in [1, n-1] of P-256."""
        if self.alg == "RS256":
            n = self.key.public_key().public_numbers().n
            return (1 + secrets.randbelow(n - 1)).to_bytes((n.bit_length() + 7) // 8, "big")
        if self.alg == "ES256":
            order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
            return b"".join((1 + secrets.randbelow(order - 1)).to_bytes(32, "big") for _ in range(2))
        return secrets.token_bytes(64)

    def forged_pool(self, count: int) -> list[str]:
        """What a forger can send for free: this key's `kid` and `alg`, the right `iss`, `aud`,
        `exp` and `nbf` (all public), a distinct subject each, and a random signature. Every one
        passes every claim check and costs a full signature check that fails."""
        now = int(time.time())
        return [self.signing_input(f"forged-{i:06d}", now) + "." + b64url(self.forged_signature())
                for i in range(count)]
