"""Independent judge of a gpki mdoc (ISO/IEC 18013-5 IssuerSigned), on PyPI parts only.

usage: mdoc_oracle.py ISSUER_SIGNED.cbor IACA.pem HOLDER_PUB.pem

- pymdoccbor verifies the MSO's COSE_Sign1 with the x5chain leaf, that the leaf is
  signed by the given issuing CA (its trust anchor), and every item's digest;
- pycose verifies the same COSE_Sign1 again, on its own;
- cbor2 re-derives each IssuerSignedItem's digest (SHA-256 of the tagged bytes) and
  checks it against valueDigests, and reads the MSO's fields.

Prints one JSON object: the attributes, the MSO fields and the x5chain (hex DER).
Exits non-zero, naming the check, on any failure.
"""
import datetime
import hashlib
import json
import sys

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pycose.keys import EC2Key
from pycose.keys.curves import P256, P384
from pycose.messages import Sign1Message
from pymdoccbor.mdoc.verifier import MdocCbor


def fail(what):
    print(f"mdoc oracle: {what}", file=sys.stderr)
    sys.exit(1)


raw = open(sys.argv[1], "rb").read()
iaca = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
holder = serialization.load_pem_public_key(open(sys.argv[3], "rb").read())

issuer_signed = cbor2.loads(raw)
auth = issuer_signed["issuerAuth"]
mso_tag = cbor2.loads(auth[2])
if not (isinstance(mso_tag, cbor2.CBORTag) and mso_tag.tag == 24):
    fail("the COSE payload is not #6.24(bstr .cbor MSO)")
mso = cbor2.loads(mso_tag.value)
doc_type = mso["docType"]

# 1. pymdoccbor, as a verifier of a DeviceResponse carrying this document.
response = {"version": "1.0", "documents": [{"docType": doc_type, "issuerSigned": issuer_signed}], "status": 0}
m = MdocCbor()
m.loads(cbor2.dumps(response))
if not m.verify(trusted_root_certs=[iaca], verify_hashes=True):
    fail(f"pymdoccbor refuses it: {m.documents_invalid or m.documents}")

# 2. pycose on its own.
x5chain = auth[1][33]
chain = [x5chain] if isinstance(x5chain, bytes) else list(x5chain)
leaf = x509.load_der_x509_certificate(chain[0])
pub = leaf.public_key().public_numbers()
crv = {"secp256r1": P256, "secp384r1": P384}[leaf.public_key().curve.name]
size = {"secp256r1": 32, "secp384r1": 48}[leaf.public_key().curve.name]
# (from_cose_obj: pycose's decode() expects tagged arrays as lists, cbor2 6 gives tuples)
msg = Sign1Message.from_cose_obj(list(auth), True)
msg.key = EC2Key(crv=crv, x=pub.x.to_bytes(size, "big"), y=pub.y.to_bytes(size, "big"))
if not msg.verify_signature():
    fail("pycose: the MSO signature does not verify")

# 3. Digests recomputed here.
ns_items = issuer_signed["nameSpaces"]
attributes = {}
for ns, items in ns_items.items():
    digests = mso["valueDigests"][ns]
    for tagged in items:
        encoded = cbor2.dumps(tagged)
        item = cbor2.loads(tagged.value)
        if len(item["random"]) < 16:
            fail(f"{item['elementIdentifier']}: salt shorter than 16 bytes")
        if digests.get(item["digestID"]) != hashlib.sha256(encoded).digest():
            fail(f"digest of {item['elementIdentifier']} does not match valueDigests")
        v = item["elementValue"]
        if isinstance(v, datetime.date):
            # cbor2 decodes full-date (tag 1004) itself.
            v = {"full-date": v.isoformat()}
        elif isinstance(v, cbor2.CBORTag):
            v = {"tag": v.tag, "value": v.value}
        elif isinstance(v, bytes):
            v = {"bytes": v.hex()}
        attributes[item["elementIdentifier"]] = v

dk = mso["deviceKeyInfo"]["deviceKey"]
hn = holder.public_numbers()
hsize = {"secp256r1": 32, "secp384r1": 48}[holder.curve.name]
if dk[-2] != hn.x.to_bytes(hsize, "big") or dk[-3] != hn.y.to_bytes(hsize, "big"):
    fail("the MSO's deviceKey is not the holder's key")

vi = mso["validityInfo"]
print(json.dumps({
    "docType": doc_type,
    "version": mso["version"],
    "digestAlgorithm": mso["digestAlgorithm"],
    "alg": cbor2.loads(auth[0])[1],
    # tdate (tag 0) decodes to an aware datetime.
    "validityInfo": {k: v.isoformat() for k, v in vi.items()},
    "status": mso.get("status"),
    "attributes": attributes,
    "x5chain": [c.hex() for c in chain],
}))
