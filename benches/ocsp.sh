#!/usr/bin/env bash
# OCSP benchmarks for docs/benchmarks.md: gpki-ocsp (pre-signed and live-signing
# paths) beside `openssl ocsp -index` and `cfssl ocspserve`, against the same N
# issued certificates (1% revoked), loaded by h2load (GETs, keep-alive); the floor of the
# same HTTP stack; and the time from `gpki cert revoke` to a revoked answer on SQLite
# and PostgreSQL. Everything runs here, in one go, one server at a time.
#
#   cargo build --release -p gpki -p gpki-ocsp --examples --bins
#   benches/ocsp.sh [N_CERTS] [SECONDS] [N_REVOKE]
set -euo pipefail
N=${1:-100000}
SECS=${2:-10}
N_REVOKE=${3:-100}
THREADS=${LOAD_THREADS:-1}
CONNS=${LOAD_CONNS:-32}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GPKI=$ROOT/target/release/gpki
OCSP=$ROOT/target/release/gpki-ocsp
FLOOR=$ROOT/target/release/examples/floor
PY="python3 $ROOT/benches/ocsp.py"
PG=${GPKI_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
for b in "$GPKI" "$OCSP" "$FLOOR"; do
  [ -x "$b" ] || { echo "build first: cargo build --release -p gpki -p gpki-ocsp --examples --bins" >&2; exit 1; }
done
for t in h2load cfssl openssl curl; do command -v $t >/dev/null || { echo "$t missing (apt-get install nghttp2-client golang-cfssl)" >&2; exit 1; }; done
W=${BENCH_DIR:-$(mktemp -d /tmp/gpki-ocsp-bench.XXXXXX)}
mkdir -p "$W"; cd "$W"
echo "bench passphrase" > pass
export GPKI_KEY_PASS_FILE=$W/pass GPKI_URL_BASE=http://127.0.0.1:18080
say() { echo "$*" | tee -a results.txt; }
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_up() { for _ in $(seq 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "$1 did not come up" >&2; exit 1; }
# run NAME URL KEY [get|post]: check one answer, warm up, then measure. GET cycles
# through the 10,000 requests; POST sends the first one every time (what h2load can
# do), the only form `cfssl ocspserve` 1.2 answers (its GET decoder keeps the
# leading slash).
run() {
  local name=$1 url=$2 mode=${4:-get}
  local body=""; [ "$mode" = post ] && body=one.der
  local answer; answer=$($PY check "$url" reqs.hex)
  $PY load "$url" paths.txt 2 "$THREADS" "$CONNS" $body >/dev/null
  read -r rps p50 p99 err < <($PY load "$url" paths.txt "$SECS" "$THREADS" "$CONNS" $body)
  say "$(printf '%-34s %8s/s  p50 %7s ms  p99 %7s ms  non-200 %s  (first answer: %s)' "$name [$mode]" "$rps" "$p50" "$p99" "$err" "$answer")"
  eval "RPS_$3=$rps"
}
ratio() { python3 -c "print(round($1/$2, 2))"; }

say "# $(date -u +%FT%TZ) on $(nproc) cores; $(openssl version | cut -d' ' -f1-2), cfssl $(cfssl version | head -1 | awk '{print $2}'), h2load $(h2load --version | awk '{print $NF}') --h1 -t$THREADS -c$CONNS -D $SECS, GET"

# N officials issued by gpki into SQLite, 1% then revoked.
S="sqlite://$W/data/gpki.db"
export GPKI_STORE=$S GPKI_DATA_DIR=$W/data
$GPKI ca init-root --name root --subject "CN=Bench Root, OU=GPKI, O=Government of Korea, C=KR" --key-type p384 --out root.pem >/dev/null
$GPKI ca create --parent root --name mois --subject "CN=Bench MOIS, OU=GPKI, O=Government of Korea, C=KR" --key-type p256 --out mois.pem >/dev/null
python3 "$ROOT/benches/gen.py" csrs "$N" csrs p256
$GPKI cert issue-batch --ca mois --profile official-sign --csv csrs/officials.csv --out-dir issued >/dev/null
$PY revoke-share "$W/data/gpki.db" mois 0.01
$GPKI ocsp issue-signer --ca mois --key-type p256 >/dev/null
$PY requests "$W/data/gpki.db" mois mois.pem 10000 reqs.hex
$PY paths reqs.hex paths.txt
head -1 reqs.hex | xxd -r -p > one.der

cat > ocsp.toml <<TOML
store = "$S"
listen = "127.0.0.1:18080"
key_pass_file = "$W/pass"
[[ca]]
name = "mois"
cert = "$W/data/ocsp/mois.crt.pem"
key = "$W/data/ocsp/mois.key.pem"
TOML
sed -e 's/18080/18081/' -e 's/^key_pass_file.*/&\npresign = false/' ocsp.toml > ocsp-live.toml

# gpki-ocsp, pre-signed path; how long the N responses take to sign at start.
t0=$(date +%s.%N)
$OCSP serve --config ocsp.toml 2>ocsp.log & PIDS+=($!)
wait_up http://127.0.0.1:18080/healthz
t1=$(date +%s.%N)
say "gpki-ocsp start with $N pre-signed responses: $(python3 -c "print(round($t1-$t0, 1))") s, RSS $(ps -o rss= -p ${PIDS[-1]} | awk '{print int($1/1024)}') MiB"
SIZE=$(curl -s --data-binary @<(xxd -r -p <(head -1 reqs.hex)) -H 'Content-Type: application/ocsp-request' http://127.0.0.1:18080/ | wc -c)
run "gpki-ocsp pre-signed" http://127.0.0.1:18080/ PRE
run "gpki-ocsp pre-signed" http://127.0.0.1:18080/ PRE_POST post
$OCSP export --config ocsp.toml --out responses.b64 2>/dev/null
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

# gpki-ocsp, every response signed for its request.
$OCSP serve --config ocsp-live.toml 2>ocsp-live.log & PIDS+=($!)
wait_up http://127.0.0.1:18081/healthz
run "gpki-ocsp live-signing" http://127.0.0.1:18081/ LIVE
run "gpki-ocsp live-signing" http://127.0.0.1:18081/ LIVE_POST post
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

# The floor: the same HTTP stack returning a body of the same size.
$FLOOR 127.0.0.1:18082 "$SIZE" 2>/dev/null & PIDS+=($!)
wait_up http://127.0.0.1:18082/
for mode in get post; do
  body=""; [ $mode = post ] && body=one.der
  $PY load http://127.0.0.1:18082/ paths.txt 2 "$THREADS" "$CONNS" $body >/dev/null
  read -r rps p50 p99 err < <($PY load http://127.0.0.1:18082/ paths.txt "$SECS" "$THREADS" "$CONNS" $body)
  say "$(printf '%-34s %8s/s  p50 %7s ms  p99 %7s ms  non-200 %s  (%s-octet body)' "floor (hyper, fixed body) [$mode]" "$rps" "$p50" "$p99" "$err" "$SIZE")"
  if [ $mode = get ]; then RPS_FLOOR=$rps; else RPS_FLOOR_POST=$rps; fi
done
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

# OpenSSL's responder: same certificates (index.txt), same responder key and certificate.
$PY openssl-index "$W/data/gpki.db" mois index.txt
echo "unique_subject = no" > index.txt.attr
openssl pkey -in data/ocsp/mois.key.pem -passin file:pass -out rkey.pem
# One fresh OpenSSL responder per run, with -timeout 1: single-threaded, it otherwise
# waits forever on a connection a load generator opened and has not written to yet.
ossl() { # PORT NAME KEY MODE [extra…]
  local port=$1 name=$2 key=$3 mode=$4; shift 4
  openssl ocsp -index index.txt -port "$port" -rsigner data/ocsp/mois.crt.pem -rkey rkey.pem -CA mois.pem -ndays 1 -timeout 1 "$@" 2>>openssl.log & PIDS+=($!)
  sleep 1
  run "$name" "http://127.0.0.1:$port/" "$key" "$mode"
  # -multi's parent ignores SIGTERM while its workers spin on a closed socket.
  pkill -9 -f "ocsp -index index.txt -port $port" || true
  wait "${PIDS[-1]}" 2>/dev/null || true
  sleep 0.5
}
ossl 18083 "openssl ocsp -index" OSSL get
ossl 18083 "openssl ocsp -index" OSSL_POST post
ossl 18084 "openssl ocsp -index -multi $(nproc)" OSSLM get -multi "$(nproc)"

# cfssl, serving the same pre-signed responses (exported by gpki-ocsp).
cfssl ocspserve -address 127.0.0.1 -port 18085 -responses responses.b64 2>cfssl.log & PIDS+=($!)
wait_up http://127.0.0.1:18085/
run "cfssl ocspserve" http://127.0.0.1:18085/ CFSSL post
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

say "ratios [get]: pre-signed / floor = $(ratio "$RPS_PRE" "$RPS_FLOOR"); pre-signed / openssl = $(ratio "$RPS_PRE" "$RPS_OSSL"); live / openssl = $(ratio "$RPS_LIVE" "$RPS_OSSL"); live / openssl -multi = $(ratio "$RPS_LIVE" "$RPS_OSSLM"); floor / openssl = $(ratio "$RPS_FLOOR" "$RPS_OSSL")"
say "ratios [post]: pre-signed / floor = $(ratio "$RPS_PRE_POST" "$RPS_FLOOR_POST"); pre-signed / cfssl = $(ratio "$RPS_PRE_POST" "$RPS_CFSSL"); pre-signed / openssl = $(ratio "$RPS_PRE_POST" "$RPS_OSSL_POST"); live / openssl = $(ratio "$RPS_LIVE_POST" "$RPS_OSSL_POST")"
say "signing bound: $(openssl speed -seconds 3 ecdsap256 2>/dev/null | tail -1 | awk '{print $(NF-1)}') P-256 signatures/s on one core (openssl speed ecdsap256)"

# Revocation to answer: SQLite (polling, default 250 ms) on the N-certificate store.
sqlite3_serials() { python3 -c "import sqlite3,sys; c=sqlite3.connect('$W/data/gpki.db'); [print(s) for (s,) in c.execute(\"SELECT serial FROM certificates WHERE status='issued' AND profile='official-sign' LIMIT $N_REVOKE\")]"; }
sqlite3_serials > revoke-sqlite.txt
$OCSP serve --config ocsp.toml 2>ocsp2.log & PIDS+=($!)
wait_up http://127.0.0.1:18080/healthz
read -r l50 l99 lmax lcli < <($PY revocation-latency "$GPKI" mois http://127.0.0.1:18080/ mois.pem revoke-sqlite.txt "$N_REVOKE")
say "revocation -> revoked answer, SQLite, poll 250 ms ($N_REVOKE revocations): p50 $l50 ms, p99 $l99 ms, max $lmax ms (gpki cert revoke itself: $lcli ms)"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

# PostgreSQL (LISTEN/NOTIFY), 2,000 certificates.
db=gpki_bench_ocsp
psql -q "$PG" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
P="${PG%/*}/$db"
export GPKI_STORE=$P GPKI_DATA_DIR=$W/pg
$GPKI ca init-root --name root --subject "CN=Bench Root, OU=GPKI, O=Government of Korea, C=KR" --key-type p384 >/dev/null
$GPKI ca create --parent root --name mois --subject "CN=Bench MOIS, OU=GPKI, O=Government of Korea, C=KR" --key-type p256 --out pg-mois.pem >/dev/null
head -2001 csrs/officials.csv > csrs/pg.csv
$GPKI cert issue-batch --ca mois --profile official-sign --csv csrs/pg.csv --out-dir pg-issued >/dev/null
$GPKI ocsp issue-signer --ca mois --key-type p256 >/dev/null
sed -e "s|^store = .*|store = \"$P\"|" -e "s|$W/data/ocsp|$W/pg/ocsp|" -e 's/18080/18086/' ocsp.toml > ocsp-pg.toml
$OCSP serve --config ocsp-pg.toml 2>ocsp-pg.log & PIDS+=($!)
wait_up http://127.0.0.1:18086/healthz
psql -At "$P" -c "SELECT serial FROM certificates WHERE status='issued' AND profile='official-sign' LIMIT $N_REVOKE" > revoke-pg.txt
read -r l50 l99 lmax lcli < <($PY revocation-latency "$GPKI" mois http://127.0.0.1:18086/ pg-mois.pem revoke-pg.txt "$N_REVOKE")
say "revocation -> revoked answer, PostgreSQL, LISTEN/NOTIFY ($N_REVOKE revocations): p50 $l50 ms, p99 $l99 ms, max $lmax ms (gpki cert revoke itself: $lcli ms)"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
psql -q "$PG" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
echo "results in $W/results.txt"
