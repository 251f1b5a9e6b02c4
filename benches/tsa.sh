#!/usr/bin/env bash
# TSA benchmarks for docs/benchmarks.md: gpki-tsa tokens/s and latency for P-256 and
# RSA-2048 TSA keys, every token logged in the SQLite store, beside the one-process
# signing limit of the same key type (`openssl speed`) and `openssl ts -reply` run
# once per request. One server at a time; the load generator (wrk, which keeps its
# latency histogram in memory) on the same cores.
#
#   cargo build --release -p gpki -p gpki-tsa
#   benches/tsa.sh [SECONDS] [CONNECTIONS] [N_OPENSSL]
set -euo pipefail
SECS=${1:-10}
CONNS=${2:-64}
N_OSSL=${3:-200}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GPKI=$ROOT/target/release/gpki
TSA=$ROOT/target/release/gpki-tsa
LUA=$ROOT/benches/tsa_post.lua
# wrk URL SECONDS CONNS: prints "rps p50_ms p99_ms non2xx".
load() {
  TSA_QUERY=$W/q.tsq wrk -t1 -c"$3" -d"$2"s --latency -s "$LUA" "$1" | python3 -c '
import sys
def ms(v):
    for u, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(u):
            return float(v[:-len(u)]) * f
rps = p50 = p99 = None; bad = 0
for line in sys.stdin:
    w = line.split()
    if line.startswith("Requests/sec:"): rps = float(w[1])
    elif len(w) == 2 and w[0] == "50%": p50 = ms(w[1])
    elif len(w) == 2 and w[0] == "99%": p99 = ms(w[1])
    elif "Non-2xx" in line or "Socket errors" in line: bad += sum(int(x.strip(",")) for x in w if x.strip(",").isdigit())
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {bad}")'
}
for b in "$GPKI" "$TSA"; do [ -x "$b" ] || { echo "build first: cargo build --release -p gpki -p gpki-tsa" >&2; exit 1; }; done
for t in wrk openssl curl; do command -v $t >/dev/null || { echo "$t missing (apt-get install wrk)" >&2; exit 1; }; done
W=${BENCH_DIR:-$(mktemp -d /tmp/gpki-tsa-bench.XXXXXX)}
mkdir -p "$W"; cd "$W"
echo "bench passphrase" > pass
export GPKI_KEY_PASS_FILE=$W/pass GPKI_OUT_PASS_FILE=$W/pass GPKI_STORE=sqlite://$W/gpki.db GPKI_DATA_DIR=$W/data
say() { echo "$*" | tee -a results.txt; }
say "# $(date -u +%FT%TZ) on $(nproc) cores; $(openssl version | cut -d' ' -f1-2), wrk -t1 -c$CONNS -d${SECS}s, POST with certReq"

$GPKI ca init-root --name root --subject "CN=Bench Root, OU=GPKI, O=Government of Korea, C=KR" --key-type p384 --out root.pem >/dev/null
$GPKI ca create --parent root --name mois --subject "CN=Bench MOIS, OU=GPKI, O=Government of Korea, C=KR" --key-type p256 --out mois.pem >/dev/null
head -c 100000 /dev/urandom > doc.bin
openssl ts -query -data doc.bin -sha256 -cert -out q.tsq 2>/dev/null
port=18095
for kt in p256 rsa2048; do
  $GPKI cert issue --ca mois --profile tsa --subject "CN=Bench TSA $kt, OU=GPKI, O=Government of Korea, C=KR" \
    --generate-key --key-type $kt --key-out tsa-$kt.key --out tsa-$kt.pem >/dev/null
  cat > tsa-$kt.toml <<TOML
store = "sqlite://$W/gpki.db"
listen = "127.0.0.1:$port"
name = "bench-$kt"
cert = "$W/tsa-$kt.pem"
key = "$W/tsa-$kt.key"
key_pass_file = "$W/pass"
require_clock_sync = false
TOML
  $TSA serve --config tsa-$kt.toml 2>tsa-$kt.log & pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  curl -s -H 'Content-Type: application/timestamp-query' --data-binary @q.tsq "http://127.0.0.1:$port/" -o one-$kt.tsr
  openssl ts -verify -data doc.bin -in one-$kt.tsr -CAfile root.pem -untrusted mois.pem 2>/dev/null | grep -q "Verification: OK"
  load "http://127.0.0.1:$port/" 2 "$CONNS" >/dev/null
  # Three runs; the one with the median rate is reported (runs on this VM vary).
  read -r rps p50 p99 err < <(for _ in 1 2 3; do load "http://127.0.0.1:$port/" "$SECS" "$CONNS"; done | sort -n | sed -n 2p)
  kill $pid; wait $pid 2>/dev/null || true
  logged=$(python3 -c "import sqlite3; print(sqlite3.connect('$W/gpki.db').execute(\"SELECT COUNT(*), COUNT(DISTINCT serial) FROM tsa_tokens WHERE tsa='bench-$kt'\").fetchone())")
  case $kt in p256) alg=ecdsap256;; rsa2048) alg=rsa2048;; esac
  limit=$(openssl speed -seconds 5 $alg 2>/dev/null | tail -1 | awk -v a=$alg '{ if (a ~ /rsa/) print $(NF-1); else print $(NF-1) }')
  say "$(printf 'gpki-tsa %-8s %8s tokens/s  p50 %6s ms  p99 %6s ms  non-200 %s  | openssl speed %s, one process: %s signs/s  | ratio %s  | tokens logged (rows, distinct serials): %s' \
    "$kt" "$rps" "$p50" "$p99" "$err" "$alg" "$limit" "$(python3 -c "print(round($rps/$limit, 2))")" "$logged")"
  # openssl ts -reply, one process per request, the same key (decrypted) and query.
  openssl pkey -in tsa-$kt.key -passin file:pass -out tsa-$kt-plain.key
  cat > ossl-$kt.cnf <<CNF
[ tsa ]
default_tsa = t
[ t ]
serial = $W/ossl-serial-$kt
signer_cert = $W/tsa-$kt.pem
certs = $W/mois.pem
signer_key = $W/tsa-$kt-plain.key
signer_digest = sha256
default_policy = 1.2.410.100001.2.1.5
digests = sha256, sha384, sha512
accuracy = secs:1
ess_cert_id_alg = sha256
CNF
  t0=$(date +%s.%N)
  for _ in $(seq "$N_OSSL"); do openssl ts -reply -config ossl-$kt.cnf -queryfile q.tsq -out ossl-$kt.tsr 2>/dev/null; done
  t1=$(date +%s.%N)
  orate=$(python3 -c "print(round($N_OSSL/($t1-$t0)))")
  say "$(printf 'openssl ts -reply %-8s %6s tokens/s (one process per request, %s requests)  | gpki-tsa / openssl ts -reply = %s' "$kt" "$orate" "$N_OSSL" "$(python3 -c "print(round($rps/$orate, 1))")")"
  port=$((port + 1))
done
echo "results in $W/results.txt"
