#!/usr/bin/env python3
"""Fixtures for benches/run.sh: the same CSRs for gpki, openssl ca and cfssl; revoked
rows for CRL generation; openssl ca's index.txt for the same revoked set."""
import os, sqlite3, sys, secrets, time
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

def csrs(n, out, key_type):
    os.makedirs(out, exist_ok=True)
    # A pool of keys: the CSRs differ by subject; key generation is not what is measured.
    pool = [ec.generate_private_key(ec.SECP256R1()) if key_type == "p256"
            else rsa.generate_private_key(65537, 2048) for _ in range(16 if key_type == "p256" else 8)]
    with open(os.path.join(out, "officials.csv"), "w") as csv:
        csv.write("request_id,subject,csr\n")
        for i in range(n):
            cn = f"Official {i}(1{i:08d})"
            name = x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Government of Korea"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ministry of the Interior and Safety"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "people"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn)])
            csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(pool[i % len(pool)], hashes.SHA256())
            path = f"r{i:07d}.csr"
            with open(os.path.join(out, path), "wb") as f:
                f.write(csr.public_bytes(serialization.Encoding.PEM))
            csv.write(f'r{i:07d},"CN={cn}, OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR",{path}\n')

def crl_entry(serial: bytes, revoked_at: int, reason: int) -> bytes:
    """DER of a revokedCertificates entry with a reasonCode, as gpki's store keeps it."""
    def tlv(tag, body):
        n = len(body)
        return bytes([tag]) + (bytes([n]) if n < 128 else bytes([0x81, n])) + body
    when = time.strftime("%y%m%d%H%M%SZ", time.gmtime(revoked_at)).encode()
    reason_ext = tlv(0x30, tlv(0x06, bytes([0x55, 0x1d, 0x15])) + tlv(0x04, tlv(0x0a, bytes([reason]))))
    return tlv(0x30, tlv(0x02, serial) + tlv(0x17, when) + tlv(0x30, reason_ext))

def revoked_sqlite(db, ca, n):
    """Adds n revoked certificates of CA `ca` straight into a gpki SQLite store."""
    con = sqlite3.connect(db)
    (issuer,) = con.execute("SELECT id FROM authorities WHERE name = ?", (ca,)).fetchone()
    now = int(time.time())
    seq = con.execute("SELECT revocation_seq FROM authorities WHERE id = ?", (issuer,)).fetchone()[0] + 1
    def rows():
        for k in range(n):
            serial = bytes([0x40 | secrets.randbelow(64)]) + secrets.token_bytes(15)
            reason = 1 + (k % 5)
            yield (issuer, serial.hex(), "CN=bench", "official-sign", "revoked", now - 86400, now + 86400 * 700, "00", b"",
                   now - 3600, reason, seq, crl_entry(serial, now - 3600, reason), now)
    con.executemany("INSERT INTO certificates (issuer_id, serial, subject, profile, status, not_before, not_after, spki_sha256, tbs, revoked_at, reason, revocation_seq, crl_entry, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows())
    con.execute("UPDATE authorities SET revocation_seq = ? WHERE id = ?", (seq, issuer))
    con.commit()

def openssl_index(n, path):
    """openssl ca's text database with n revoked entries."""
    reasons = ["keyCompromise", "CACompromise", "affiliationChanged", "superseded", "cessationOfOperation"]
    with open(path, "w") as f:
        for k in range(n):
            f.write(f"R\t281231000000Z\t261122000000Z,{reasons[k % 5]}\t4{secrets.token_hex(15)}0\tunknown\t/CN=bench{k}\n")

def measure(argv):
    """Runs a command; prints its wall time in seconds and peak RSS in MiB."""
    import resource, subprocess
    t = time.time()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{time.time() - t:.2f} {rss:.0f}")

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "measure":
        measure(sys.argv[2:])
    elif cmd == "csrs":
        csrs(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif cmd == "revoked-sqlite":
        revoked_sqlite(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "openssl-index":
        openssl_index(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")
