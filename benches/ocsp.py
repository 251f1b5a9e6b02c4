#!/usr/bin/env python3
"""Fixtures and measurements for benches/ocsp.sh: revoking a share of a gpki store,
openssl's index.txt for the same certificates, OCSP requests for h2load, its
numbers, and the time from `gpki cert revoke` to a revoked answer."""
import os, random, sqlite3, statistics, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from gen import crl_entry  # noqa: E402

REASONS = {1: "keyCompromise", 3: "affiliationChanged", 4: "superseded", 5: "cessationOfOperation"}


def revoke_share(db, ca, share):
    """Marks `share` of CA `ca`'s issued certificates revoked, as `gpki cert revoke` would."""
    con = sqlite3.connect(db)
    (issuer, seq) = con.execute("SELECT id, revocation_seq FROM authorities WHERE name = ?", (ca,)).fetchone()
    rows = con.execute("SELECT id, serial FROM certificates WHERE issuer_id = ? AND status = 'issued' AND profile = 'official-sign'", (issuer,)).fetchall()
    now = int(time.time())
    pick = random.Random(7).sample(rows, int(len(rows) * share))
    for k, (cid, serial) in enumerate(pick):
        seq += 1
        reason = list(REASONS)[k % len(REASONS)]
        con.execute("UPDATE certificates SET status='revoked', revoked_at=?, reason=?, revocation_seq=?, crl_entry=? WHERE id=?",
                    (now - 3600, reason, seq, crl_entry(bytes.fromhex(serial), now - 3600, reason), cid))
    con.execute("UPDATE authorities SET revocation_seq = ? WHERE id = ?", (seq, issuer))
    con.commit()


def openssl_index(db, ca, path):
    """openssl ca's index.txt holding the same certificates and statuses."""
    con = sqlite3.connect(db)
    fmt = lambda t: time.strftime("%y%m%d%H%M%SZ", time.gmtime(t))
    with open(path, "w") as f:
        for serial, status, not_after, revoked_at, reason in con.execute(
                "SELECT c.serial, c.status, c.not_after, c.revoked_at, c.reason FROM certificates c "
                "JOIN authorities a ON a.id = c.issuer_id WHERE a.name = ? AND c.status IN ('issued','revoked')", (ca,)):
            if status == "revoked":
                f.write(f"R\t{fmt(not_after)}\t{fmt(revoked_at)},{REASONS.get(reason, 'unspecified')}\t{serial.upper()}\tunknown\t/CN=x\n")
            else:
                f.write(f"V\t{fmt(not_after)}\t\t{serial.upper()}\tunknown\t/CN=x\n")


def requests(db, ca, issuer_pem, n, out):
    """n OCSP requests (SHA-1 CertID, no nonce) for random issued certificates of `ca`,
    hex, one per line: openssl makes one, the others differ only in the serial."""
    con = sqlite3.connect(db)
    serials = [s for (s,) in con.execute(
        "SELECT c.serial FROM certificates c JOIN authorities a ON a.id = c.issuer_id "
        "WHERE a.name = ? AND c.profile = 'official-sign'", (ca,))]
    pick = random.Random(11).sample(serials, min(n, len(serials)))
    subprocess.run(["openssl", "ocsp", "-issuer", issuer_pem, "-serial", "0x" + pick[0], "-no_nonce", "-reqout", out + ".der"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    template = open(out + ".der", "rb").read()
    first = bytes.fromhex(pick[0])
    assert template.endswith(first) and all(len(s) == len(pick[0]) for s in pick)
    with open(out, "w") as f:
        for s in pick:
            f.write((template[: -len(first)] + bytes.fromhex(s)).hex() + "\n")


def paths(reqs, out):
    """The GET form of each request: /<URL-encoded base64> (RFC 6960 Appendix A.1)."""
    import base64, urllib.parse
    with open(reqs) as f, open(out, "w") as o:
        for line in f:
            b64 = base64.b64encode(bytes.fromhex(line.strip())).decode()
            o.write("/" + urllib.parse.quote(b64, safe="") + "\n")


def load(base, path_file, seconds, threads, conns, post_body=None):
    """Runs h2load (HTTP/1.1, keep-alive where the server allows it) with GETs cycling
    through the requests, and prints 'rps p50_ms p99_ms non_200' from its per-request
    log. (wrk cannot load `openssl ocsp`: wrk holds an idle probe connection open and
    the single-threaded OpenSSL responder waits on it forever.)"""
    uris = path_file + ".uris"
    with open(path_file) as f, open(uris, "w") as o:
        for line in f:
            o.write(base.rstrip("/") + line)
    log = path_file + ".log"
    if os.path.exists(log):
        os.remove(log)
    if post_body:
        # One request body for every POST (h2load sends the same body each time).
        target = ["-d", post_body, "-H", "Content-Type: application/ocsp-request", base]
    else:
        target = ["-i", uris]
    # h2load sometimes waits on a server that closed its last connection; the log
    # is complete by then.
    try:
        subprocess.run(["h2load", "--h1", f"-t{threads}", f"-c{conns}", "-D", str(seconds), "--log-file", log] + target,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 15)
    except subprocess.TimeoutExpired:
        pass
    rows = [l.split("\t") for l in open(log) if l.strip()] if os.path.exists(log) else []
    if not rows:
        print("0 0 0 0")
        return
    ok = [r for r in rows if r[1] == "200"]
    starts = [int(r[0]) for r in rows]
    lat = sorted(int(r[2]) / 1000 for r in ok)
    span = (max(starts) - min(starts)) / 1e6
    print(f"{len(ok) / span:.0f} {lat[len(lat) // 2]:.3f} {lat[int(len(lat) * 0.99)]:.3f} {len(rows) - len(ok)}")


def check_answer(url, reqs):
    """POSTs the first request and prints the certificate status the response gives."""
    from cryptography.x509 import ocsp
    body = bytes.fromhex(open(reqs).readline().strip())
    r = urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/ocsp-request"}), timeout=10)
    resp = ocsp.load_der_ocsp_response(r.read())
    print(resp.response_status.name, resp.certificate_status.name if resp.response_status.name == "SUCCESSFUL" else "-")


def revocation_latency(gpki, ca, url, issuer_pem, serial_file, n):
    """Revokes n certificates one by one with `gpki cert revoke` and polls the responder
    (no nonce, so the pre-signed path) every 2 ms until it says revoked. Prints the
    p50/p99/max from the CLI's return (the commit is just before) and the CLI time."""
    from cryptography.x509 import ocsp
    serials = [l.strip() for l in open(serial_file) if l.strip()][:n]
    tmpl_path = serial_file + ".tmpl.der"
    subprocess.run(["openssl", "ocsp", "-issuer", issuer_pem, "-serial", "0x" + serials[0], "-no_nonce", "-reqout", tmpl_path],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    template = open(tmpl_path, "rb").read()
    first = bytes.fromhex(serials[0])
    seen, cli = [], []
    for s in serials:
        body = template[: -len(first)] + bytes.fromhex(s)
        t0 = time.perf_counter()
        subprocess.run([gpki, "cert", "revoke", "--ca", ca, "--serial", s, "--reason", "superseded"],
                       check=True, stdout=subprocess.DEVNULL)
        t1 = time.perf_counter()
        while True:
            r = urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/ocsp-request"}), timeout=10)
            if ocsp.load_der_ocsp_response(r.read()).certificate_status == ocsp.OCSPCertStatus.REVOKED:
                break
            if time.perf_counter() - t1 > 10:
                raise SystemExit(f"{s}: not revoked after 10 s")
            time.sleep(0.002)
        seen.append((time.perf_counter() - t1) * 1000)
        cli.append((t1 - t0) * 1000)
    q = statistics.quantiles(seen, n=100)
    print(f"{statistics.median(seen):.0f} {q[98]:.0f} {max(seen):.0f} {statistics.median(cli):.0f}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "revoke-share":
        revoke_share(args[0], args[1], float(args[2]))
    elif cmd == "openssl-index":
        openssl_index(*args)
    elif cmd == "requests":
        requests(args[0], args[1], args[2], int(args[3]), args[4])
    elif cmd == "paths":
        paths(args[0], args[1])
    elif cmd == "load":
        load(args[0], args[1], int(args[2]), int(args[3]), int(args[4]), args[5] if len(args) > 5 else None)
    elif cmd == "check":
        check_answer(args[0], args[1])
    elif cmd == "revocation-latency":
        revocation_latency(args[0], args[1], args[2], args[3], args[4], int(args[5]))
