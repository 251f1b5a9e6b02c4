#!/usr/bin/env bash
# Benchmarks for docs/benchmarks.md: gpki beside `openssl ca` and `cfssl sign` over the
# same CSRs and the same CA key, and CRL generation beside `openssl ca -gencrl` over the
# same number of revoked entries. Everything runs here, in one go, on this machine.
#
#   benches/run.sh [N_ISSUE] [N_PROC] [N_BULK]
#
# N_ISSUE CSRs go through gpki (in-process, one `cert issue-batch` run) and through
# `openssl ca -batch -infiles` (one process); the first N_PROC also through one
# `openssl ca -batch` and one `cfssl sign` process per certificate, which is how those
# tools are scripted. N_BULK officials are issued by `cert issue-batch` into SQLite.
set -euo pipefail
N_ISSUE=${1:-2000}
N_PROC=${2:-200}
N_BULK=${3:-100000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GPKI=$ROOT/target/release/gpki
GEN="python3 $ROOT/benches/gen.py"
PG=${GPKI_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
# A new directory each run: deleting many files just before creating many others
# makes ext4's inode allocator skip the freed ones, which would be measured too.
W=${BENCH_DIR:-$(mktemp -d /tmp/gpki-bench.XXXXXX)}
[ -x "$GPKI" ] || { echo "build first: cargo build --release -p gpki" >&2; exit 1; }
command -v cfssl >/dev/null || { echo "cfssl missing: apt-get install golang-cfssl" >&2; exit 1; }
mkdir -p "$W"; cd "$W"
echo "bench passphrase" > pass
export GPKI_KEY_PASS_FILE=$W/pass GPKI_OUT_PASS_FILE=$W/pass GPKI_URL_BASE=http://pki.gpki.go.kr
now() { date +%s.%N; }
per_sec() { python3 -c "print(f'{$1/($3-$2):.0f}')"; }
say() { echo "$*" | tee -a results.txt; }
# Median of three runs of a command: "seconds peak_MiB".
median3() { for _ in 1 2 3; do $GEN measure "$@"; done | sort -n | sed -n 2p; }

hierarchy() { # store dir keytype
  GPKI_STORE=$1 GPKI_DATA_DIR=$2 $GPKI ca init-root --name root --subject "CN=Bench Root, OU=GPKI, O=Government of Korea, C=KR" --key-type p384 >/dev/null
  GPKI_STORE=$1 GPKI_DATA_DIR=$2 $GPKI ca create --parent root --name mois --subject "CN=Bench MOIS, OU=GPKI, O=Government of Korea, C=KR" --key-type "$3" --out "$2/mois.pem" >/dev/null
}

openssl_ca_setup() { # dir ca.pem ca.key
  mkdir -p "$1/newcerts"; : > "$1/index.txt"; echo 1000 > "$1/serial"; echo 1000 > "$1/crlnumber"
  cp "$2" "$1/ca.pem"; cp "$3" "$1/ca.key"
  cat > "$1/ca.cnf" <<CNF
[ ca ]
default_ca = gpki
[ gpki ]
dir = $1
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
serial = \$dir/serial
crlnumber = \$dir/crlnumber
default_md = sha256
default_days = 730
default_crl_days = 1
policy = any
unique_subject = no
copy_extensions = none
x509_extensions = official_sign
crl_extensions = crl_ext
[ any ]
commonName = supplied
organizationalUnitName = optional
organizationName = optional
countryName = optional
[ official_sign ]
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = clientAuth,emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = 1.2.410.100001.2.2.1
crlDistributionPoints = URI:http://pki.gpki.go.kr/crl/mois.crl
authorityInfoAccess = OCSP;URI:http://pki.gpki.go.kr/ocsp,caIssuers;URI:http://pki.gpki.go.kr/ca/mois.crt
[ crl_ext ]
authorityKeyIdentifier = keyid
CNF
}

say "# $(date -u +%FT%TZ) on $(nproc) cores; gpki $($GPKI --version | cut -d' ' -f2), $(openssl version | cut -d' ' -f1-2), cfssl $(cfssl version | head -1 | awk '{print $2}')"
for kt in p256 rsa2048; do
  $GEN csrs "$N_ISSUE" "csrs-$kt" "$kt"
  # gpki into SQLite
  hierarchy "sqlite://$W/$kt-sqlite/gpki.db" "$W/$kt-sqlite" "$kt"
  t0=$(now)
  GPKI_STORE="sqlite://$W/$kt-sqlite/gpki.db" GPKI_DATA_DIR="$W/$kt-sqlite" $GPKI cert issue-batch --ca mois --profile official-sign --csv "csrs-$kt/officials.csv" --out-dir "out-$kt-sqlite" >/dev/null
  t1=$(now); gpki_sqlite=$(per_sec "$N_ISSUE" "$t0" "$t1")
  # gpki into PostgreSQL
  db="gpki_bench_$kt"
  psql -q "$PG" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
  pg="${PG%/*}/$db"
  hierarchy "$pg" "$W/$kt-pg" "$kt"
  t0=$(now)
  GPKI_STORE="$pg" GPKI_DATA_DIR="$W/$kt-pg" $GPKI cert issue-batch --ca mois --profile official-sign --csv "csrs-$kt/officials.csv" --out-dir "out-$kt-pg" >/dev/null
  t1=$(now); gpki_pg=$(per_sec "$N_ISSUE" "$t0" "$t1")
  # The same CA key, decrypted, for the reference tools.
  openssl pkey -in "$kt-sqlite/keys/mois.key.pem" -passin file:pass -out "ref-$kt.key" 2>/dev/null
  openssl_ca_setup "$W/ossl-$kt" "$kt-sqlite/mois.pem" "ref-$kt.key"
  t0=$(now)
  openssl ca -batch -notext -config "ossl-$kt/ca.cnf" -out "ossl-$kt/all.pem" -infiles csrs-$kt/r*.csr 2>/dev/null
  t1=$(now); ossl_infiles=$(per_sec "$N_ISSUE" "$t0" "$t1")
  openssl_ca_setup "$W/ossl1-$kt" "$kt-sqlite/mois.pem" "ref-$kt.key"
  t0=$(now)
  for f in $(ls csrs-$kt/r*.csr | head -n "$N_PROC"); do
    openssl ca -batch -notext -config "ossl1-$kt/ca.cnf" -in "$f" -out /dev/null 2>/dev/null
  done
  t1=$(now); ossl_proc=$(per_sec "$N_PROC" "$t0" "$t1")
  t0=$(now)
  for f in $(ls csrs-$kt/r*.csr | head -n "$N_PROC"); do
    cfssl sign -ca "$kt-sqlite/mois.pem" -ca-key "ref-$kt.key" "$f" >/dev/null 2>&1
  done
  t1=$(now); cfssl_proc=$(per_sec "$N_PROC" "$t0" "$t1")
  say "issuance $kt: gpki sqlite $gpki_sqlite/s, gpki postgres $gpki_pg/s, openssl ca -infiles $ossl_infiles/s, openssl ca per process $ossl_proc/s, cfssl sign per process $cfssl_proc/s"
  say "  ratios: gpki sqlite / openssl per process = $(python3 -c "print(round($gpki_sqlite/$ossl_proc,1))")x, / openssl -infiles = $(python3 -c "print(round($gpki_sqlite/$ossl_infiles,1))")x, / cfssl = $(python3 -c "print(round($gpki_sqlite/$cfssl_proc,1))")x"
done

# CRLs: the same revoked count in gpki's store and in openssl's index.txt.
S="sqlite://$W/p256-sqlite/gpki.db"
$GEN revoked-sqlite "$W/p256-sqlite/gpki.db" mois 100000
read -r g100 gm100 < <(median3 env GPKI_STORE="$S" GPKI_DATA_DIR="$W/p256-sqlite" $GPKI crl generate --ca mois --der --out crl-100k.der)
$GEN openssl-index 100000 "ossl-p256/index.txt"
read -r o100 om100 < <(median3 openssl ca -gencrl -config ossl-p256/ca.cnf -out ossl-crl-100k.pem)
$GEN revoked-sqlite "$W/p256-sqlite/gpki.db" mois 900000
read -r g1m gm1m < <(median3 env GPKI_STORE="$S" GPKI_DATA_DIR="$W/p256-sqlite" $GPKI crl generate --ca mois --der --out crl-1m.der)
openssl crl -inform DER -in crl-1m.der -noout -verify -CAfile p256-sqlite/mois.pem 2>&1 | grep -q "verify OK"
say "crl (median of 3 runs each)"
say "crl 100k: gpki ${g100}s ${gm100} MiB ($(stat -c %s crl-100k.der) bytes); openssl ca -gencrl ${o100}s ${om100} MiB"
say "crl 1M:   gpki ${g1m}s ${gm1m} MiB ($(stat -c %s crl-1m.der) bytes, openssl crl -verify OK); ratio openssl(100k)/gpki(1M) = $(python3 -c "print(round($o100/$g1m,1))")x"

# Bulk: N_BULK officials into SQLite.
$GEN csrs "$N_BULK" bulk p256
hierarchy "sqlite://$W/bulk/gpki.db" "$W/bulk-data" p256
read -r tb mb < <($GEN measure env GPKI_STORE="sqlite://$W/bulk/gpki.db" GPKI_DATA_DIR="$W/bulk-data" $GPKI cert issue-batch --ca mois --profile official-sign --csv bulk/officials.csv --out-dir bulk-out)
say "bulk: $N_BULK officials in ${tb}s ($(python3 -c "print(round($N_BULK/$tb))")/s, peak ${mb} MiB); 1.6 million at that rate: $(python3 -c "print(round(1_600_000/($N_BULK/$tb)/60,1))") min"
