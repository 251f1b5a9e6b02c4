"""Independent judge of a gpki presentation, on PyPI parts only.

usage: presentation_oracle.py mdoc|sd-jwt PRESENTATION IACA.pem VERIFIER NONCE

mdoc (a DeviceResponse): pymdoccbor verifies the issuer's MSO signature, the chain
to the issuing CA and every disclosed item's digest; pycose verifies the device
signature over DeviceAuthenticationBytes that this script rebuilds itself from the
verifier and nonce (session transcript [null, null, ["OpenID4VPHandover",
SHA-256(CBOR [verifier, nonce, null, verifier])]]) with the MSO's device key.

sd-jwt: the sd-jwt reference library verifies the issuer JWS (key of the x5c leaf,
which must chain to the issuing CA), every disclosure, and the key binding JWT's
signature (cnf key), aud, nonce and sd_hash; the digests are recomputed here too.

Prints {"disclosed": {name: value}}; exits non-zero naming the failed check.
"""
import base64
import hashlib
import json
import sys

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto import jwk
from pycose.keys import EC2Key
from pycose.keys.curves import P256, P384
from pycose.messages import Sign1Message
from pymdoccbor.mdoc.verifier import MdocCbor


def fail(what):
    print(f"presentation oracle: {what}", file=sys.stderr)
    sys.exit(1)


fmt, path, iaca_path, verifier, nonce = sys.argv[1:6]
iaca = x509.load_pem_x509_certificate(open(iaca_path, "rb").read())


def chained_to_iaca(der):
    leaf = x509.load_der_x509_certificate(der)
    try:
        iaca.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm))
    except Exception as e:
        fail(f"the signer certificate is not signed by the issuing CA: {e}")
    return leaf


disclosed = {}
if fmt == "mdoc":
    raw = open(path, "rb").read()
    m = MdocCbor()
    m.loads(raw)
    if not m.verify(trusted_root_certs=[iaca], verify_hashes=True):
        fail("pymdoccbor refuses the issuer part")
    doc = cbor2.loads(raw)["documents"][0]
    auth = doc["issuerSigned"]["issuerAuth"]
    mso = cbor2.loads(cbor2.loads(auth[2]).value)
    dk = mso["deviceKeyInfo"]["deviceKey"]
    crv = {1: P256, 2: P384}[dk[-1]]
    ds = doc["deviceSigned"]
    # OpenID4VP 1.0 Appendix B.2.6.1, with the verifier as clientId and responseUri.
    handover_info = hashlib.sha256(cbor2.dumps([verifier, nonce, None, verifier])).digest()
    transcript = [None, None, ["OpenID4VPHandover", handover_info]]
    da = ["DeviceAuthentication", transcript, doc["docType"], ds["nameSpaces"]]
    da_bytes = cbor2.dumps(cbor2.CBORTag(24, cbor2.dumps(da)))
    sig = Sign1Message.from_cose_obj(list(ds["deviceAuth"]["deviceSignature"]), True)
    sig.key = EC2Key(crv=crv, x=dk[-2], y=dk[-3])
    if not sig.verify_signature(detached_payload=da_bytes):
        fail("pycose: the device signature does not verify for this verifier and nonce")
    for ns, items in doc["issuerSigned"]["nameSpaces"].items():
        for tagged in items:
            item = cbor2.loads(tagged.value)
            v = item["elementValue"]
            disclosed[item["elementIdentifier"]] = v.isoformat() if hasattr(v, "isoformat") else (v.hex() if isinstance(v, bytes) else v)
elif fmt == "sd-jwt":
    from sd_jwt.verifier import SDJWTVerifier

    text = open(path).read().strip()
    parts = text.split("~")
    header = json.loads(base64.urlsafe_b64decode(parts[0].split(".")[0] + "=="))
    leaf = chained_to_iaca(base64.b64decode(header["x5c"][0]))
    key = jwk.JWK.from_pyca(leaf.public_key())
    try:
        v = SDJWTVerifier(text, lambda iss, h: key, expected_aud=verifier, expected_nonce=nonce)
        claims = v.get_verified_payload()
    except Exception as e:
        fail(f"sd-jwt reference library refuses it: {e!r}")
    payload = json.loads(base64.urlsafe_b64decode(parts[0].split(".")[1] + "=="))
    for d in parts[1:-1]:
        h = base64.urlsafe_b64encode(hashlib.sha256(d.encode()).digest()).rstrip(b"=").decode()
        if h not in payload["_sd"]:
            fail("a disclosure has no digest in _sd")
        _, name, value = json.loads(base64.urlsafe_b64decode(d + "=" * (-len(d) % 4)))
        if claims.get(name) != value:
            fail(f"{name} differs between the reference library and the disclosure")
        disclosed[name] = value
else:
    fail(f"unknown format {fmt}")
print(json.dumps({"disclosed": disclosed}))
