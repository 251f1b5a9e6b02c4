#!/usr/bin/env bash
# Standard API benchmarks for docs/benchmarks.md (issue 12):
#  1. logins verified per second in one process on one thread (warm path and status
#     cache), and CMS sign / verify / encrypt / decrypt of 1 KiB and 1 MiB, beside
#     SHA-256 and AES-256-CBC of the same megabyte (api/examples/api-throughput.rs);
#  2. the one-process limits of the same keys and primitives: `openssl speed`
#     ecdsap256 (the official's key), rsa2048 (the km key), and sha256 and
#     aes-256-cbc on 1 MiB blocks;
#  3. `openssl cms` per process on the same files;
#  4. logins over HTTP: gpki-api (in `gpki dev up`) under wrk, each body a fresh
#     challenge signed beforehand.
# Everything against one `gpki dev up` hierarchy (P-256 official, P-384 CA, RSA-4096
# root), its OCSP responder answering the first status query of each certificate.
#
#   apt-get install wrk
#   cargo build --release -p gpki -p gpki-api --example api-throughput
#   benches/api.sh [SECONDS] [N_OPENSSL]
set -euo pipefail
SECS=${1:-5}
N_OSSL=${2:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GPKI=$ROOT/target/release/gpki
EX=$ROOT/target/release/examples/api-throughput
for b in "$GPKI" "$EX"; do [ -x "$b" ] || { echo "build first: cargo build --release -p gpki -p gpki-api --example api-throughput" >&2; exit 1; }; done
for t in wrk openssl curl; do command -v $t >/dev/null || { echo "$t missing (apt-get install wrk)" >&2; exit 1; }; done
W=$(mktemp -d /tmp/gpki-api-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
cd "$W"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
OCSP=127.0.0.1:$(port) TSA=127.0.0.1:$(port) CA=127.0.0.1:$(port) RA=127.0.0.1:$(port) API=127.0.0.1:$(port)
export GPKI_DATA_DIR=$W/data
unset GPKI_STORE GPKI_KEY_PASS_FILE GPKI_URL_BASE
"$GPKI" dev up --listen "$OCSP" --tsa-listen "$TSA" --ca-listen "$CA" --ra-listen "$RA" --api-listen "$API" > dev.log 2>&1 &
for _ in $(seq 1 600); do curl -sf "http://$API/healthz" >/dev/null && break; sleep 0.2; done
curl -sf "http://$API/healthz" >/dev/null || { cat dev.log; exit 1; }
echo "# $(date -u +%FT%TZ) on $(nproc) cores; $(openssl version | cut -d' ' -f1-2)"

echo "== in process, one thread, ${SECS}s each"
"$EX" inproc "$W/data" "$SECS"
echo "== openssl speed, ${SECS}s each"
openssl speed -seconds "$SECS" ecdsap256 2>/dev/null | tail -1
openssl speed -seconds "$SECS" ecdsap384 2>/dev/null | tail -1
openssl speed -seconds "$SECS" rsa2048 2>/dev/null | tail -1
openssl speed -seconds "$SECS" -bytes 1048576 -evp sha256 2>/dev/null | tail -1
openssl speed -seconds "$SECS" -bytes 1048576 -evp aes-256-cbc 2>/dev/null | tail -1
openssl speed -seconds "$SECS" -bytes 1048576 -decrypt -evp aes-256-cbc 2>/dev/null | tail -1

echo "== openssl cms, one process per operation, $N_OSSL runs each"
C=$W/data/certs
P=file:$W/data/dev-signer-passphrase
openssl pkey -in "$C/official-sign.key.pem" -passin "$P" -out sign.key
openssl pkey -in "$C/official-km.key.pem" -passin "$P" -out km.key
per_second() { # LABEL COMMAND...: runs COMMAND N_OSSL times, prints runs per second
  local label=$1; shift
  local t0 t1; t0=$(date +%s.%N)
  for _ in $(seq 1 "$N_OSSL"); do "$@" >/dev/null 2>&1; done
  t1=$(date +%s.%N)
  python3 -c "print(f'$label: {$N_OSSL/($t1-$t0):.0f}/s')"
}
for size in 1024 1048576; do
  head -c $size /dev/urandom > doc.$size
  openssl cms -sign -binary -in doc.$size -signer "$C/official-sign.crt.pem" -inkey sign.key -certfile "$C/mois.crt.pem" -outform DER -nodetach -out s.$size
  openssl cms -encrypt -binary -aes256 -in doc.$size -outform DER -out e.$size -recip "$C/official-km.crt.pem" -keyopt rsa_padding_mode:oaep
  per_second "openssl cms -sign $size" openssl cms -sign -binary -in doc.$size -signer "$C/official-sign.crt.pem" -inkey sign.key -certfile "$C/mois.crt.pem" -outform DER -nodetach -out /dev/null
  per_second "openssl cms -verify $size" openssl cms -verify -binary -inform DER -in s.$size -CAfile "$C/gpki-root.crt.pem" -out /dev/null
  per_second "openssl cms -encrypt $size" openssl cms -encrypt -binary -aes256 -in doc.$size -outform DER -out /dev/null -recip "$C/official-km.crt.pem" -keyopt rsa_padding_mode:oaep
  per_second "openssl cms -decrypt $size" openssl cms -decrypt -binary -inform DER -in e.$size -recip "$C/official-km.crt.pem" -inkey km.key -out /dev/null
done

echo "== logins over HTTP (gpki-api in dev up; wrk -t2 -c16 -d${SECS}s; one fresh challenge a request)"
N=$(( SECS * 30000 ))
"$EX" prepare "$W/data" "http://$API" "$N" bodies 2
wrk -t2 -c16 -d"${SECS}s" --latency -s "$ROOT/benches/api_login.lua" "http://$API" -- "$W/bodies" | grep -E "Requests/sec|Non-2xx|Socket|50%|99%"
curl -s "http://$API/metrics" | grep -E "^gpki_api_(answers|status)_total"
