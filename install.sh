#!/usr/bin/env bash
# Builds every gpki binary once (release) and installs them side by side: gpki
# (the command line, and `gpki dev up`) and the services it can also run alone,
# gpki-ca, gpki-ra, gpki-ocsp, gpki-tsa and gpki-api. Into $CARGO_HOME/bin
# (~/.cargo/bin, on the PATH of a rustup install) unless a directory is given.
set -euo pipefail
cd "$(dirname "$0")"
dest="${1:-${CARGO_HOME:-$HOME/.cargo}/bin}"
bins=(gpki gpki-ca gpki-ra gpki-ocsp gpki-tsa gpki-api)
cargo build --release --locked --workspace --bins
install -d "$dest"
for b in "${bins[@]}"; do
  install -m 0755 "target/release/$b" "$dest/$b"
done
echo "installed ${bins[*]} into $dest"
case ":$PATH:" in
  *":$dest:"*) ;;
  *) echo "note: $dest is not on your PATH" >&2 ;;
esac
