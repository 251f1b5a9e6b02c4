"""Independent judge of issuer discovery: does a verifier that trusts the issuer by its
SD-JWT VC issuer metadata, or by its did:web DID document, accept a credential?

usage: issuer_oracle.py METADATA.json DID.json ISSUER_ID CREDENTIAL...

Each CREDENTIAL is an issued SD-JWT VC (text) or mdoc IssuerSigned (CBOR). For each,
and for each of the two documents, on PyPI parts only:

- the key is selected without x5c: for an SD-JWT by the header's `kid`, for an mdoc by
  the RFC 7638 thumbprint (jwcrypto) of the key its x5chain names, matched against the
  JWKs' `kid`, recomputed here from each JWK;
- in the metadata, `issuer` must be ISSUER_ID (and the SD-JWT's `iss`); in the DID
  document the key must be a verificationMethod listed under assertionMethod, the
  document's `id` the did:web of ISSUER_ID;
- each JWK's x5c leaf must hold the JWK's own key;
- the signature is verified with that key alone: jwcrypto for the JWS, pycose for the
  MSO's COSE_Sign1.

Prints one JSON object: per credential, {"metadata": VERDICT, "did": VERDICT} where
VERDICT is "accept" or "no-key"; any other failure exits non-zero naming it.
"""
import base64
import json
import sys
import urllib.parse

import cbor2
from cryptography import x509
from jwcrypto import jwk, jws
from pycose.keys import EC2Key
from pycose.keys.curves import P256, P384
from pycose.messages import Sign1Message


def fail(what):
    print(f"issuer oracle: {what}", file=sys.stderr)
    sys.exit(1)


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


metadata = json.load(open(sys.argv[1]))
did_doc = json.load(open(sys.argv[2]))
issuer_id = sys.argv[3]

# did:web of the identifier (did:web §3.2), derived here.
u = urllib.parse.urlsplit(issuer_id)
did = "did:web:" + u.hostname + (f"%3A{u.port}" if u.port else "")
for seg in [s for s in u.path.split("/") if s]:
    did += ":" + seg

if metadata.get("issuer") != issuer_id:
    fail(f"metadata issuer {metadata.get('issuer')!r} is not {issuer_id!r}")
if did_doc.get("id") != did:
    fail(f"DID document id {did_doc.get('id')!r} is not {did!r}")


def checked_key(entry):
    """A JWK whose kid is its thumbprint and whose x5c leaf holds it."""
    public = {k: entry[k] for k in ("kty", "crv", "x", "y")}
    key = jwk.JWK(**public)
    if entry.get("kid") != key.thumbprint():
        fail(f"kid {entry.get('kid')} is not the JWK's thumbprint")
    leaf = x509.load_der_x509_certificate(base64.b64decode(entry["x5c"][0]))
    if jwk.JWK.from_pyca(leaf.public_key()).thumbprint() != key.thumbprint():
        fail("an x5c leaf holds another key than its JWK")
    return key


by_metadata = {}
for entry in metadata["jwks"]["keys"]:
    key = checked_key(entry)
    if key.thumbprint() in by_metadata:
        fail(f"kid {key.thumbprint()} is listed twice in the metadata")
    by_metadata[key.thumbprint()] = key
by_did = {}
asserting = set(did_doc.get("assertionMethod", []))
for vm in did_doc.get("verificationMethod", []):
    if vm.get("controller") != did or not vm["id"].startswith(did + "#"):
        fail(f"verification method {vm['id']} is not the issuer's")
    key = checked_key(vm["publicKeyJwk"])
    if vm["id"] != f"{did}#{key.thumbprint()}":
        fail(f"verification method {vm['id']} is not named by its thumbprint")
    if key.thumbprint() in by_did:
        fail(f"verification method {vm['id']} is listed twice")
    if vm["id"] in asserting:
        by_did[key.thumbprint()] = key


def sd_jwt(text):
    issuer_jwt = text.split("~")[0]
    header = json.loads(b64d(issuer_jwt.split(".")[0]))
    payload = json.loads(b64d(issuer_jwt.split(".")[1]))
    if payload.get("iss") != issuer_id:
        fail(f"iss {payload.get('iss')!r} is not {issuer_id!r}")
    kid = header.get("kid")
    if not kid:
        fail("the SD-JWT header has no kid")

    def judge(keys):
        key = keys.get(kid)
        if key is None:
            return "no-key"
        token = jws.JWS()
        token.deserialize(issuer_jwt)
        try:
            token.verify(key, alg=header["alg"])
        except Exception as e:
            fail(f"jwcrypto: the JWS does not verify with the listed key: {e}")
        return "accept"

    return {"metadata": judge(by_metadata), "did": judge(by_did)}


def mdoc(raw):
    auth = cbor2.loads(raw)["issuerAuth"]
    x5chain = auth[1][33]
    leaf = x509.load_der_x509_certificate(x5chain if isinstance(x5chain, bytes) else x5chain[0])
    kid = jwk.JWK.from_pyca(leaf.public_key()).thumbprint()

    def judge(keys):
        key = keys.get(kid)
        if key is None:
            return "no-key"
        crv = {"P-256": (P256, 32), "P-384": (P384, 48)}[key["crv"]]
        msg = Sign1Message.from_cose_obj(list(auth), True)
        msg.key = EC2Key(crv=crv[0], x=b64d(key["x"]), y=b64d(key["y"]))
        if not msg.verify_signature():
            fail("pycose: the MSO does not verify with the listed key")
        return "accept"

    return {"metadata": judge(by_metadata), "did": judge(by_did)}


out = {}
for path in sys.argv[4:]:
    raw = open(path, "rb").read()
    out[path] = sd_jwt(raw.decode().strip()) if raw[:2] == b"ey" else mdoc(raw)
out["keys"] = sorted(by_metadata)
out["did_keys"] = sorted(by_did)
print(json.dumps(out))
