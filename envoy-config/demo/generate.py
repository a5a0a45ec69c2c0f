#!/usr/bin/env python3
"""DEMO ONLY: (re)generates the wasmgate authn demo keys, JWKS and token in this folder.

    python3 envoy-config/demo/generate.py            # keep existing keys, re-sign the token
    python3 envoy-config/demo/generate.py --new-keys # new RSA 2048 + Ed25519 keys as well

Needs Python's `cryptography` package. Never use these keys for anything real.
"""
import base64, json, os, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
RSA_KEY = os.path.join(HERE, "demo-rsa-private.pem")
ED_KEY = os.path.join(HERE, "demo-ed25519-private.pem")


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def load_or_create(path, make):
    if os.path.exists(path) and "--new-keys" not in sys.argv:
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    key = make()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with open(path, "wb") as f:
        f.write(pem)
    return key


rsa_key = load_or_create(RSA_KEY, lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
ed_key = load_or_create(ED_KEY, ed25519.Ed25519PrivateKey.generate)
pub = rsa_key.public_key().public_numbers()
ed_pub = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
jwks = {"keys": [
    {"kty": "RSA", "kid": "demo-rsa-1", "alg": "RS256", "use": "sig", "n": b64u(uint(pub.n)), "e": b64u(uint(pub.e))},
    {"kty": "OKP", "kid": "demo-ed25519-1", "alg": "EdDSA", "use": "sig", "crv": "Ed25519", "x": b64u(ed_pub)},
]}
with open(os.path.join(HERE, "jwks.json"), "w") as f:
    json.dump(jwks, f, indent=2)
    f.write("\n")

header = {"alg": "RS256", "typ": "JWT", "kid": "demo-rsa-1"}
claims = {"iss": "https://demo.wasmgate.local", "aud": "wasmgate-demo", "sub": "demo-user",
          "scope": "read", "iat": 1767225600, "exp": 2082758400}  # 2026-01-01 .. 2036-01-01
signing_input = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + \
    b64u(json.dumps(claims, separators=(",", ":")).encode())
signature = rsa_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
with open(os.path.join(HERE, "demo-token.jwt"), "w") as f:
    f.write(signing_input + "." + b64u(signature) + "\n")
print("wrote jwks.json and demo-token.jwt")
