"""Independent judge of gpki Status List Tokens (draft-ietf-oauth-status-list), on
Python's zlib and PyPI parts only.

usage: status_list_oracle.py TOKEN.jwt TOKEN.cwt SIGNER_CA.pem IDX [IDX …]

The JWT: jwcrypto verifies it with the x5c leaf's key (the leaf must be signed by
SIGNER_CA); typ statuslist+jwt. The CWT: pycose verifies the COSE_Sign1 with the
x5chain leaf's key; typ (16) application/statuslist+cwt. Both lists are inflated with
zlib and must be equal; prints each IDX's status (entry 0 in the low bits of byte 0).
"""
import base64
import json
import sys
import zlib

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto import jwk, jws
from pycose.keys import EC2Key
from pycose.keys.curves import P256, P384
from pycose.messages import Sign1Message


def fail(what):
    print(f"status list oracle: {what}", file=sys.stderr)
    sys.exit(1)


jwt_text = open(sys.argv[1]).read().strip()
cwt_raw = open(sys.argv[2], "rb").read()
ca = x509.load_pem_x509_certificate(open(sys.argv[3], "rb").read())
indexes = [int(i) for i in sys.argv[4:]]


def leaf_of(der):
    leaf = x509.load_der_x509_certificate(der)
    try:
        ca.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm))
    except Exception as e:
        fail(f"the signer certificate is not signed by the CA: {e}")
    return leaf


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


header = json.loads(b64d(jwt_text.split(".")[0]))
if header.get("typ") != "statuslist+jwt":
    fail(f"JWT typ is {header.get('typ')}")
leaf = leaf_of(base64.b64decode(header["x5c"][0]))
token = jws.JWS()
token.deserialize(jwt_text)
try:
    token.verify(jwk.JWK.from_pyca(leaf.public_key()), alg=header["alg"])
except Exception as e:
    fail(f"jwcrypto: the JWT signature does not verify: {e}")
payload = json.loads(token.payload)
jwt_bits = payload["status_list"]["bits"]
jwt_list = zlib.decompress(b64d(payload["status_list"]["lst"]))

tagged = cbor2.loads(cwt_raw)
if not (isinstance(tagged, cbor2.CBORTag) and tagged.tag == 18):
    fail("the CWT is not a tagged COSE_Sign1")
# (cbor2 6 decodes a tag's content immutable: a tuple, a frozen map; pycose wants
# a list and a dict)
msg = Sign1Message.from_cose_obj([dict(v) if hasattr(v, "keys") else v for v in tagged.value], True)
protected = cbor2.loads(tagged.value[0])
if protected.get(16) != "application/statuslist+cwt":
    fail(f"CWT typ is {protected.get(16)}")
x5 = tagged.value[1][33]
cleaf = leaf_of(x5 if isinstance(x5, bytes) else x5[0])
n = cleaf.public_key().public_numbers()
size = {"secp256r1": 32, "secp384r1": 48}[cleaf.public_key().curve.name]
crv = {"secp256r1": P256, "secp384r1": P384}[cleaf.public_key().curve.name]
msg.key = EC2Key(crv=crv, x=n.x.to_bytes(size, "big"), y=n.y.to_bytes(size, "big"))
if not msg.verify_signature():
    fail("pycose: the CWT signature does not verify")
claims = cbor2.loads(tagged.value[2])
cwt_bits = claims[65533]["bits"]
cwt_list = zlib.decompress(claims[65533]["lst"])
if (cwt_bits, cwt_list) != (jwt_bits, jwt_list):
    fail("the JWT and the CWT carry different lists")
if claims[2] != payload["sub"] or claims[65534] != payload["ttl"]:
    fail("the JWT and the CWT differ in sub or ttl")

per_byte = 8 // jwt_bits
statuses = {}
for i in indexes:
    byte = jwt_list[i // per_byte]
    statuses[str(i)] = (byte >> ((i % per_byte) * jwt_bits)) & ((1 << jwt_bits) - 1)
print(json.dumps({
    "sub": payload["sub"], "iat": payload["iat"], "exp": payload["exp"], "ttl": payload["ttl"],
    "bits": jwt_bits, "entries": len(jwt_list) * per_byte, "lst_bytes": len(claims[65533]["lst"]),
    "set_bits": sum(bin(b).count("1") for b in jwt_list), "statuses": statuses,
}))
