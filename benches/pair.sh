#!/usr/bin/env bash
# Two gpki builds side by side on the same CSRs: `cert issue-batch` into SQLite,
# alternating A and B, RUNS times each, each run on a fresh hierarchy. For a change
# that must not cost speed (a refactor): the ratio B/A of the medians is the figure.
#
#   benches/pair.sh GPKI_A GPKI_B [N] [RUNS] [KEY_TYPE]
set -euo pipefail
A=$1; B=$2; N=${3:-2000}; RUNS=${4:-3}; KT=${5:-p256}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/gpki-pair.XXXXXX); cd "$W"
echo "bench passphrase" > pass
export GPKI_KEY_PASS_FILE=$W/pass GPKI_OUT_PASS_FILE=$W/pass GPKI_URL_BASE=http://pki.gpki.go.kr
python3 "$ROOT/benches/gen.py" csrs "$N" csrs "$KT"
run() { # binary tag i -> certificates per second
  local g=$1 d="$W/$2-$3"
  GPKI_STORE="sqlite://$d/gpki.db" GPKI_DATA_DIR="$d" $g ca init-root --name root --subject "CN=Bench Root, OU=GPKI, O=Government of Korea, C=KR" --key-type p384 >/dev/null
  GPKI_STORE="sqlite://$d/gpki.db" GPKI_DATA_DIR="$d" $g ca create --parent root --name mois --subject "CN=Bench MOIS, OU=GPKI, O=Government of Korea, C=KR" --key-type "$KT" --out "$d/mois.pem" >/dev/null
  local t0 t1; t0=$(date +%s.%N)
  GPKI_STORE="sqlite://$d/gpki.db" GPKI_DATA_DIR="$d" $g cert issue-batch --ca mois --profile official-sign --csv csrs/officials.csv --out-dir "$d/out" >/dev/null
  t1=$(date +%s.%N)
  python3 -c "print(f'{$N/($t1-$t0):.0f}')"
}
ra=(); rb=()
for i in $(seq "$RUNS"); do ra+=("$(run "$A" a "$i")"); rb+=("$(run "$B" b "$i")"); done
med() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
ma=$(med "${ra[@]}"); mb=$(med "${rb[@]}")
echo "A $A: ${ra[*]} (median $ma/s)"
echo "B $B: ${rb[*]} (median $mb/s)"
python3 -c "print(f'B/A = {$mb/$ma:.2f}')"
rm -rf "$W"
