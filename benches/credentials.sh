#!/usr/bin/env bash
# Mobile credential benchmarks for docs/benchmarks.md:
#  1. credentials issued and presentations verified per second, in one process on one
#     thread (credentials/examples/credential-throughput.rs), beside `openssl speed ecdsap256` (the
#     one-process signing limit of the same key type) in the same run;
#  2. a 1,000,000-entry status list with 1% revoked, served by gpki-ocsp from a real
#     store: the token sizes, the first fetch (read from the store and signed), and
#     fetches from memory under load (wrk, keep-alive).
#
#   apt-get install wrk
#   cargo build --release -p gpki -p gpki-ocsp -p gpki-credentials --example credential-throughput
#   benches/credentials.sh [SECONDS]
set -euo pipefail
SECS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GPKI=$ROOT/target/release/gpki
OCSP=$ROOT/target/release/gpki-ocsp
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT

echo "== in process, ${SECS}s each"
"$ROOT/target/release/examples/credential-throughput" "$SECS"
openssl speed -seconds "$SECS" ecdsap256 2>/dev/null | tail -1

echo "== status list of 1,000,000 entries, 1% revoked, served by gpki-ocsp"
cd "$W"
export GPKI_DATA_DIR=$W/data GPKI_STORE=sqlite://$W/gpki.db GPKI_KEY_PASS_FILE=$W/pass \
  GPKI_OUT_PASS_FILE=$W/pass GPKI_URL_BASE=http://127.0.0.1:1
openssl rand -hex 16 > pass
g() { "$GPKI" "$@" > /dev/null; }
g ca init-root --name root --subject "CN=Bench Root CA, OU=GPKI, O=Government of Korea, C=KR" --key-type p384
g ca create --parent root --name mobile-id --subject "CN=Bench Mobile Credential CA, OU=GPKI, O=Government of Korea, C=KR" --key-type p256
g cert issue --ca mobile-id --profile status-list-signer \
  --subject "CN=Bench Status List, OU=credentials, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR" \
  --generate-key --key-out status.key --out status.pem --chain
g ocsp issue-signer --ca mobile-id
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
g credential status-list create --name big --uri "http://127.0.0.1:$PORT/statuslists/big" --size 1000000
# 10,000 revoked credentials at random distinct indexes (fixture rows: issuing them
# one by one through the CLI would time process start-up, not the list).
python3 - "$W/gpki.db" <<'PY'
import random, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
list_id = db.execute("SELECT id FROM status_lists WHERE name = 'big'").fetchone()[0]
now = int(time.time())
rows = [(list_id, i, "sd-jwt", "kr.go.gpki.mpoid.1", f"{n:09d}", "jkt", "00", "d", now,
         now + 86400, "revoked", now, "lost-device", 1)
        for n, i in enumerate(random.sample(range(1_000_000), 10_000))]
db.executemany("INSERT INTO credentials (list_id, idx, format, doc_type, subject, holder_jkt, "
               "signer_serial, digest, issued_at, valid_until, status, revoked_at, reason, status_seq) "
               "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
db.execute("UPDATE status_lists SET used = 10000, status_seq = 1 WHERE id = ?", (list_id,))
db.commit()
PY
cat > ocsp.toml <<EOF
store = "sqlite://$W/gpki.db"
listen = "127.0.0.1:$PORT"
key_pass_file = "$W/pass"
[status_lists]
cert = "$W/status.pem"
key = "$W/status-responder.key"
ttl_seconds = 300
valid_seconds = 86400
[[ca]]
name = "mobile-id"
cert = "$W/data/ocsp/mobile-id.crt.pem"
key = "$W/data/ocsp/mobile-id.key.pem"
EOF
cp status.key status-responder.key
GPKI_LOG=warn "$OCSP" serve --config ocsp.toml &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done
URL=http://127.0.0.1:$PORT/statuslists/big
curl -s -o big.jwt -w 'first fetch (store read + sign): %{time_total}s, %{size_download} bytes JWT\n' "$URL"
curl -s -o big.cwt -H 'Accept: application/statuslist+cwt' \
  -w 'CWT: %{size_download} bytes\n' "$URL"
curl -s -o /dev/null -D - "$URL" | grep -iE '^(cache-control|etag|expires):'
curl -s -o /dev/null -w 'a fetch from memory: %{time_total}s\n' "$URL"
for accept in application/statuslist+jwt application/statuslist+cwt; do
  echo "-- wrk, 8 connections, ${SECS}s, Accept: $accept"
  wrk -t1 -c8 -d"${SECS}s" --latency -H "Accept: $accept" "$URL" \
    | grep -E 'Requests/sec|Transfer/sec|  50%|  99%'
done
