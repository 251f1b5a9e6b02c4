# Sourced by benches/ra.sh and benches/ra_profile.sh with N set: the release
# binary, the PostgreSQL server, the CA's key type, and a work directory (made current) holding N
# P-256 official-sign CSRs (benches/gen.py) in csr/, with csr/ra.csv adding the
# identity verification the RA needs for each; and two helpers that count CPU time.
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

# CPU seconds (user + system) of process $1, or for `pg` of every postgres process and
# of the backends that have exited (which the postmaster has reaped).
cpu() {
  python3 - "$1" <<'PY'
import os, sys
total = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        comm = open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        continue
    if (sys.argv[1] == "pg" and comm.startswith("postgres")) or pid == sys.argv[1]:
        total += int(fields[11]) + int(fields[12])
        if sys.argv[1] == "pg":
            total += int(fields[13]) + int(fields[14])
print(total / os.sysconf("SC_CLK_TCK"))
PY
}

# Runs a command and writes to the file $1 the CPU seconds (user + system) it and its
# children spent and its wall seconds: `cpu_of FILE CMD ARGS...`.
cpu_of() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.monotonic()
rc = subprocess.call(cmd, stdin=subprocess.DEVNULL)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
open(out, "w").write(f"{ru.ru_utime + ru.ru_stime} {wall}\n")
sys.exit(rc)
PY
}
