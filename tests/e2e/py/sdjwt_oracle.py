"""Independent judge of a gpki SD-JWT VC, on PyPI parts only.

usage: sdjwt_oracle.py SD_JWT_FILE HOLDER_PUB.pem

- jwcrypto verifies the issuer JWS with the key of the x5c leaf;
- each disclosure's digest is recomputed here (SHA-256 over its ASCII, base64url) and
  must be in `_sd`, and `_sd` holds no digest without a disclosure;
- the `sd-jwt` reference library (PyPI) verifies it again and rebuilds the claims.

Prints one JSON object: header, payload, disclosed claims, x5c. Exits non-zero, naming
the check, on any failure.
"""
import base64
import hashlib
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwk, jws
from sd_jwt.verifier import SDJWTVerifier


def fail(what):
    print(f"sd-jwt oracle: {what}", file=sys.stderr)
    sys.exit(1)


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


text = open(sys.argv[1]).read().strip()
holder = serialization.load_pem_public_key(open(sys.argv[2], "rb").read())
parts = text.split("~")
if parts[-1] != "":
    fail("an issued SD-JWT ends with ~ (no key binding JWT)")
issuer_jwt, disclosures = parts[0], parts[1:-1]

header = json.loads(b64d(issuer_jwt.split(".")[0]))
x5c = [base64.b64decode(c) for c in header["x5c"]]
leaf = x509.load_der_x509_certificate(x5c[0])
key = jwk.JWK.from_pyca(leaf.public_key())
token = jws.JWS()
token.deserialize(issuer_jwt)
try:
    token.verify(key, alg=header["alg"])
except Exception as e:
    fail(f"jwcrypto: the issuer signature does not verify: {e}")
payload = json.loads(token.payload)

if payload.get("_sd_alg") != "sha-256":
    fail("_sd_alg is not sha-256")
sd = set(payload["_sd"])
claims = {}
for d in disclosures:
    digest = base64.urlsafe_b64encode(hashlib.sha256(d.encode("ascii")).digest()).rstrip(b"=").decode()
    if digest not in sd:
        fail(f"disclosure {d[:16]}… has no digest in _sd")
    salt, name, value = json.loads(b64d(d))
    if len(b64d(salt)) < 16:
        fail(f"{name}: salt shorter than 128 bits")
    claims[name] = value
    sd.discard(digest)
if sd:
    fail(f"{len(sd)} digest(s) in _sd without a disclosure")

holder_jwk = jwk.JWK.from_pyca(holder)
if jwk.JWK(**payload["cnf"]["jwk"]).thumbprint() != holder_jwk.thumbprint():
    fail("cnf.jwk is not the holder's key")

# The reference library, with the same issuer key.
ref = SDJWTVerifier(text, lambda iss, h: key).get_verified_payload()
for name, value in claims.items():
    if ref.get(name) != value:
        fail(f"sd-jwt reference library reads {name} differently")

print(json.dumps({
    "header": {k: v for k, v in header.items() if k != "x5c"},
    "payload": {k: v for k, v in payload.items() if k != "_sd"},
    "sd_count": len(payload["_sd"]),
    "claims": claims,
    "x5c": [c.hex() for c in x5c],
}))
