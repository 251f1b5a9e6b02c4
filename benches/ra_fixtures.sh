# Sourced by benches/ra.sh and benches/ra_profile.sh with N set: the release
# binary, the PostgreSQL server, the CA's key type, and a work directory (made current) holding N
# P-256 official-sign CSRs (benches/gen.py) in csr/, with csr/ra.csv adding the
# identity verification the RA needs for each.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GPKI=${GPKI_BIN:-$ROOT/target/release/gpki}  # GPKI_BIN: another build, for A/B runs
PG=${GPKI_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
# The issuing CA's key: P-256 as in the foundation issue's issuance benchmark
# (benches/run.sh); CA_KEY=p384 for dev up's default.
CA_KEY=${CA_KEY:-p256}
[ -x "$GPKI" ] || { echo "build first: cargo build --release -p gpki" >&2; exit 1; }
W=$(mktemp -d "/tmp/gpki-$(basename "$0" .sh).XXXXXX")
cd "$W"
python3 "$ROOT/benches/gen.py" csrs "$N" csr p256 >/dev/null
awk -F, 'NR == 1 { print $0 ",identity_method,identity_document"; next }
         { print $0 ",face-to-face,card-" NR }' csr/officials.csv > csr/ra.csv
