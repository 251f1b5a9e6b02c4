#!/usr/bin/env bash
# Where the time of issuance through RA -> CA goes (docs/benchmarks.md, issue 10):
# one `gpki ra import` against `gpki dev up` on PostgreSQL (or SQLite), with the CPU seconds the
# `dev up` process and the PostgreSQL backends spent during it.
#
#   benches/ra_profile.sh [N] [CONCURRENCY]
#
# Environment:
#   STORE_KIND=sqlite a SQLite store instead (its CPU is the dev up process's)
#   CLIENT_WRAP=...   a command the import runs under, e.g. "/usr/bin/time -f %U+%S"
#   PERF=1            also `perf record` the dev up process (perf.data in the work dir;
#                     PERF_ARGS="--call-graph dwarf,32768" for stacks)
#   GPKI_LOG=...      passed to dev up, e.g. gpki_store::writer=debug for each group's
#                     size and time, sqlx::query=debug for every statement (up.log)
#   GPKI_STORE_WRITER_LANES, TOKIO_WORKER_THREADS: passed through, for trials
set -euo pipefail
N=${1:-2000}
C=${2:-64}
# shellcheck source=benches/ra_fixtures.sh
source "$(dirname "$0")/ra_fixtures.sh"
if [ "${STORE_KIND:-postgres}" = sqlite ]; then
  STORE=sqlite://$W/store/gpki.db
else
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS gpki_ra_profile" \
    -qc "CREATE DATABASE gpki_ra_profile" >/dev/null
  STORE=$PG/gpki_ra_profile
fi

GPKI_STORE=$STORE GPKI_DATA_DIR=$W/data "$GPKI" dev up --ca-key-type "$CA_KEY" --listen 127.0.0.1:19080 \
  --tsa-listen 127.0.0.1:19081 --ca-listen 127.0.0.1:19443 \
  --ra-listen 127.0.0.1:19444 > "$W/up.log" 2>&1 &
UP=$!
trap 'kill $UP 2>/dev/null || true' EXIT
export GPKI_RA_CONFIG=$W/data/ra-client.toml
for _ in $(seq 1 300); do
  GPKI_STORE=$STORE "$GPKI" ra whoami >/dev/null 2>&1 && break
  sleep 0.2
done

g0=$(cpu $UP); p0=$(cpu pg)
if [ -n "${PERF:-}" ]; then
  # shellcheck disable=SC2086
  perf record -F 2000 ${PERF_ARGS:-} -p $UP -o "$W/perf.data" 2>/dev/null &
  PP=$!
fi
GPKI_STORE=$STORE ${CLIENT_WRAP:-} "$GPKI" ra import --csv csr/ra.csv --profile official-sign \
  --concurrency "$C" --output json > "$W/ra.json"
if [ -n "${PERF:-}" ]; then kill -INT $PP; wait $PP || true; fi
g1=$(cpu $UP); p1=$(cpu pg)
python3 - "$W/ra.json" "$g0" "$g1" "$p0" "$p1" "$N" <<'PY'
import json, sys
path, g0, g1, p0, p1, n = sys.argv[1:]
r = json.load(open(path))
assert not r["failed"] and r["issued"] == int(n), r
g, p = float(g1) - float(g0), float(p1) - float(p0)
print(f"RA->CA {r['per_second']:.0f}/s (p50 {r['latency_ms']['p50']:.1f} ms, "
      f"p99 {r['latency_ms']['p99']:.1f} ms) in {r['seconds']:.2f} s; CPU: dev up {g:.2f} s "
      f"({1000 * g / int(n):.2f} ms/request), postgres {p:.2f} s ({1000 * p / int(n):.2f} ms/request)")
PY
echo "work dir: $W"
