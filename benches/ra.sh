#!/usr/bin/env bash
# Issuance through RA -> CA over mutual TLS beside in-process issuance, on the same
# store in the same run (docs/benchmarks.md, issue 10).
#
#   benches/ra.sh [N] [CONCURRENCY]      (10000 and 64 unless given)
#
# For SQLite and then PostgreSQL: `gpki dev up` (release build) makes the hierarchy,
# the RA dev-mois and its administrator, and serves the CA and RA services. Then
#  - end to end: `gpki ra import` submits N official-sign CSRs, CONCURRENCY at a time
#    over one keep-alive client (each request: mTLS operator check in the store, scope,
#    CSR, identity record, request row, approval, forward over mTLS to the CA, the CA's
#    client check, scope again, plan, lints, record, sign, store, audit, reply);
#  - in process: `gpki cert issue-batch` issues the same N CSRs from the same CA into
#    the same store (the foundation issue's path).
# Both use the same CSRs (benches/gen.py, P-256) and the same CA key: P-256 as in the
# foundation issue's issuance benchmark, or CA_KEY=p384 (dev up's default).
set -euo pipefail
N=${1:-10000}
C=${2:-64}
# shellcheck source=benches/ra_fixtures.sh
source "$(dirname "$0")/ra_fixtures.sh"

run() { # label store
  local label=$1 store=$2 data=$W/$1
  local ports=(18080 18081 18443 18444)
  GPKI_STORE=$store GPKI_DATA_DIR=$data "$GPKI" dev up --ca-key-type "$CA_KEY" --listen 127.0.0.1:${ports[0]} \
    --tsa-listen 127.0.0.1:${ports[1]} --ca-listen 127.0.0.1:${ports[2]} \
    --ra-listen 127.0.0.1:${ports[3]} > "$W/$label.up.log" 2>&1 &
  local up=$!
  export GPKI_RA_CONFIG=$data/ra-client.toml
  for _ in $(seq 1 300); do
    GPKI_STORE=$store "$GPKI" ra whoami >/dev/null 2>&1 && break
    sleep 0.2
  done
  local g0 g1 p0 p1
  g0=$(cpu $up); p0=$(cpu pg)
  GPKI_STORE=$store cpu_of "$W/$label.ra.cpu" "$GPKI" ra import --csv csr/ra.csv \
    --profile official-sign --concurrency "$C" --output json > "$W/$label.ra.json"
  g1=$(cpu $up); p1=$(cpu pg)
  kill "$up"; wait "$up" || true
  local q0 q1
  q0=$(cpu pg)
  GPKI_STORE=$store GPKI_DATA_DIR=$data GPKI_KEY_PASS_FILE=$data/dev-passphrase \
  GPKI_OUT_PASS_FILE=$data/dev-signer-passphrase \
    cpu_of "$W/$label.batch.cpu" "$GPKI" cert issue-batch --ca mois --profile official-sign \
    --csv csr/officials.csv --out-dir "$W/$label.batch" --output json > "$W/$label.batch.json"
  q1=$(cpu pg)
  python3 - "$label" "$W/$label" "$N" "$C" "$g0" "$g1" "$p0" "$p1" "$q0" "$q1" <<'PY'
import json, sys
label, base, n, c = sys.argv[1:5]
g0, g1, p0, p1, q0, q1 = map(float, sys.argv[5:])
n = int(n)
r = json.load(open(base + ".ra.json")); b = json.load(open(base + ".batch.json"))
assert not r["failed"] and r["issued"] == n, r
assert b["issued"] == n, b
client_cpu = float(open(base + ".ra.cpu").read().split()[0])
batch_cpu, batch_wall = map(float, open(base + ".batch.cpu").read().split())
# issue-batch's own rate counts from the CA's key in hand, as `ra import`'s counts from its
# client made: neither counts its command's start-up (PBKDF2 on a key, the store's open).
inproc = b["per_second"]
# CPU per certificate, milliseconds: the services (+ PostgreSQL) and the load generator for
# RA -> CA; the issue-batch process (+ PostgreSQL) in process. Both runs share two cores.
# The two commands' start-up CPU is in (about 0.01-0.03 ms per certificate at 10,000).
split_ms = 1000 * (g1 - g0 + p1 - p0 + client_cpu) / n
inproc_ms = 1000 * (batch_cpu + q1 - q0) / n
print(f"{label}: RA->CA {r['per_second']:.0f}/s (p50 {r['latency_ms']['p50']:.1f} ms, "
      f"p99 {r['latency_ms']['p99']:.1f} ms, max {r['latency_ms']['max']:.1f} ms, {c} in flight); "
      f"in-process issue-batch {inproc:.0f}/s (whole command {n / batch_wall:.0f}/s); "
      f"ratio {r['per_second'] / inproc:.2f}")
print(f"{label}: CPU per certificate: RA->CA {split_ms:.2f} ms (services {1000 * (g1 - g0) / n:.2f}, "
      f"postgres {1000 * (p1 - p0) / n:.2f}, client {1000 * client_cpu / n:.2f}); "
      f"in process {inproc_ms:.2f} ms (postgres {1000 * (q1 - q0) / n:.2f}); "
      f"ratio {inproc_ms / split_ms:.2f}")
PY
}

run sqlite "sqlite://$W/sqlite/gpki.db"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS gpki_ra_bench" -qc "CREATE DATABASE gpki_ra_bench" >/dev/null
run postgres "$PG/gpki_ra_bench"
echo "work dir: $W"
