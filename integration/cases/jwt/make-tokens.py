#!/usr/bin/env python3
"""Makes the test tokens of ../jwt.yaml from the test-only keys here (needs `cryptography`).

Run from this directory: python3 make-tokens.py > tokens.txt. The keys are test material only."""
import base64, hashlib, hmac, json
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SECRET = b"test-only-hs256-secret-32-bytes-long!"

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def load_or_make(path):
    try:
        return serialization.load_pem_private_key(open(path, "rb").read(), None)
    except FileNotFoundError:
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        open(path, "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return k

RS = load_or_make("test-rsa-private.pem")
OTHER = load_or_make("other-rsa-private.pem")
open("test-rsa-public.pem", "wb").write(RS.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

def token(header, claims, key):
    signed = b64(json.dumps(header, separators=(",", ":")).encode()) + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
    if header["alg"] == "HS256":
        sig = hmac.new(key, signed.encode(), hashlib.sha256).digest()
    elif header["alg"] == "RS256":
        sig = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        sig = b""
    return signed + "." + b64(sig)

GOOD = {"iss": "https://issuer.example", "aud": "api", "sub": "alice", "scope": ["read", "write"], "exp": 4102444800, "nbf": 946684800}
HS = {"alg": "HS256", "typ": "JWT"}
tokens = {
    "hs_good": token(HS, GOOD, SECRET),
    "rs_good": token({"alg": "RS256", "kid": "rs1"}, dict(GOOD, sub="bob", aud=["other", "api"]), RS),
    "expired": token(HS, dict(GOOD, exp=978307200), SECRET),
    "not_yet": token(HS, dict(GOOD, nbf=4102444000), SECRET),
    "wrong_iss": token(HS, dict(GOOD, iss="https://evil.example"), SECRET),
    "wrong_aud": token(HS, dict(GOOD, aud="billing"), SECRET),
    "rs_other_key": token({"alg": "RS256", "kid": "rs1"}, GOOD, OTHER),
    "alg_none": token({"alg": "none"}, GOOD, None),
}
good = tokens["hs_good"].split(".")
tokens["tampered"] = good[0] + "." + b64(json.dumps(dict(GOOD, sub="root"), separators=(",", ":")).encode()) + "." + good[2]
for k, v in tokens.items():
    print(f"{k}: {v}")
