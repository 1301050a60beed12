#!/bin/sh
# The first step of every push, as one remote command: take the `source` tree
# (if any), build the installables (one flake evaluation), release the tree,
# and describe the closure (`nix path-info`). Two nix starts in all.
# Usage: push_build.sh NIX_SCRIPT SOURCE_SCRIPT HASH LEASE SECONDS KEEP FLAKE NARGS ARGS... INSTALLABLES...
#   NIX_SCRIPT, SOURCE_SCRIPT  the texts of nix.sh and source.sh (run with sh -c)
#   HASH     an uploaded `source` tree to build from (empty: none); without a
#            verified copy on this builder it prints `source-missing` and ends
#            (the provider uploads the tree and runs this again). LEASE and
#            SECONDS: the lease taken on it; KEEP: trees kept afterwards.
#   FLAKE    put before `#` of every installable (empty: complete installables;
#            with HASH the tree's `path:` directory is used)
#   NARGS    how many extra `nix build` arguments follow; the rest are installables
# Prints one `out<TAB>LINK<TAB>PATH` line per output, LINK being the out-link
# `nix build` made (result, result-dev, result-1, … by installable and output),
# then one `closure<TAB>JSON` line (nix path-info --json --recursive).
set -eu
nix_script=$1
source_script=$2
hash=$3
lease=$4
seconds=$5
keep=$6
flake=$7
nargs=$8
shift 8

nix() {
  sh -c "$nix_script" nix.sh "$@"
}
source_sh() {
  sh -c "$source_script" source.sh "$@"
}

if [ -n "$hash" ]; then
  dir=$(source_sh use "$hash" "$lease" "$seconds")
  if [ -z "$dir" ]; then
    echo source-missing
    exit 0
  fi
  flake=path:$dir
  # The uploaded copy must stay byte for byte the tree that was hashed.
  set -- --no-write-lock-file "$@"
  nargs=$((nargs + 1))
fi

# Installables get the flake prefix: rotate the arguments once.
i=0
count=$#
while [ "$i" -lt "$count" ]; do
  arg=$1
  shift
  if [ "$i" -ge "$nargs" ] && [ -n "$flake" ]; then
    arg="$flake#$arg"
  fi
  set -- "$@" "$arg"
  i=$((i + 1))
done

links=$(mktemp -d "${TMPDIR:-/tmp}/nixbuild-push.XXXXXX")
trap 'rm -rf -- "$links"' EXIT
status=0
nix build --print-build-logs --out-link "$links/result" "$@" || status=$?
if [ -n "$hash" ]; then
  # Nix has copied the tree into its store: the lease can go. Best effort: a
  # failure only delays pruning until the next push.
  source_sh release "$lease" "$keep" >/dev/null ||
    echo "push_build.sh: cannot prune uploaded sources" >&2
fi
[ "$status" = 0 ] || exit "$status"

for link in "$links"/result*; do
  printf 'out\t%s\t%s\n' "${link##*/}" "$(readlink "$link")"
done
printf 'closure\t'
nix path-info --json --recursive "$links"/result*
