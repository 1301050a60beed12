#!/bin/sh
# The first step of every push, as one remote command: take the `source` tree
# (if any), build the installables (one flake evaluation), release the tree,
# and describe the closure (`nix path-info`). Two nix starts for one
# installable; with several, one more `nix build --json` each (nothing is
# built: Nix 2.8 reports a build's results sorted by derivation, so this is
# how each installable's outputs are told apart; locked flakes answer from
# Nix's evaluation cache).
# Usage: push_build.sh MODE NIX_SCRIPT SOURCE_SCRIPT HASH LEASE SECONDS KEEP FLAKE NARGS ARGS... INSTALLABLES...
#   MODE     `build`, or `evaluate`: the plan's evaluation, which builds and
#            fetches nothing (`nix build --dry-run`, substituters not asked)
#            and prints one `evaluated<TAB>JSON` line: the derivation and out
#            paths of every installable, in installable order. In this mode
#            KEEP is RECORD: a key (hex) under which the answer is kept in
#            ~/.cache/nixbuild/evaluations; when a record with that key
#            exists, it is printed as `recorded<TAB>JSON` and nothing else
#            runs (Terraform plans each change again at apply: that plan must
#            see what the first one saw). Records older than a week go.
#   NIX_SCRIPT, SOURCE_SCRIPT  the texts of nix.sh and source.sh (run with sh -c)
#   HASH     an uploaded `source` tree to build from (empty: none); without a
#            verified copy on this builder it prints `source-missing` and ends
#            (the provider uploads the tree and runs this again). LEASE and
#            SECONDS: the lease taken on it; KEEP: trees kept afterwards.
#   FLAKE    put before `#` of every installable (empty: complete installables;
#            with HASH the tree's `path:` directory is used)
#   NARGS    how many extra `nix build` arguments follow; the rest are installables
# Prints one `built<TAB>I<TAB>JSON` line per installable I (from 0; the
# `nix build --json` output), then one `closure<TAB>JSON` line
# (`nix path-info --json --recursive` of every output).
set -eu
mode=$1
nix_script=$2
source_script=$3
hash=$4
lease=$5
seconds=$6
keep=$7
flake=$8
nargs=$9
shift 9
case $mode in build | evaluate) ;; *)
  echo "push_build.sh: unknown mode $mode" >&2
  exit 2
  ;;
esac

nix() {
  sh -c "$nix_script" nix.sh "$@"
}
source_sh() {
  sh -c "$source_script" source.sh "$@"
}

records=${HOME:-/root}/.cache/nixbuild/evaluations
if [ "$mode" = evaluate ] && [ -n "$keep" ]; then
  case $keep in *[!0-9a-f]*)
    echo "push_build.sh: bad record key $keep" >&2
    exit 2
    ;;
  esac
  if [ -f "$records/$keep" ]; then
    printf 'recorded\t%s\n' "$(cat -- "$records/$keep")"
    exit 0
  fi
fi

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

if [ "$mode" = evaluate ]; then
  status=0
  evaluated=$(nix build --dry-run --json --no-link --option substitute false "$@") || status=$?
  if [ -n "$hash" ]; then
    # Prune nothing at plan time: only a push prunes.
    source_sh release "$lease" 0 >/dev/null ||
      echo "push_build.sh: cannot release the source lease" >&2
  fi
  [ "$status" = 0 ] || exit "$status"
  if [ -n "$keep" ]; then
    # Best effort: without the record, the apply's plan evaluates again.
    {
      mkdir -p -- "$records" &&
        find "$records" -type f -mtime +7 -exec rm -f -- {} + &&
        printf '%s' "$evaluated" >"$records/.$keep.$$" &&
        mv -f -- "$records/.$keep.$$" "$records/$keep"
    } 2>/dev/null || echo "push_build.sh: cannot record the evaluation" >&2
  fi
  printf 'evaluated\t%s\n' "$evaluated"
  exit 0
fi

# one J ARGS...: `nix build --json` of the build arguments and installable J.
one() {
  j=$1
  shift
  k=0
  n=$#
  while [ "$k" -lt "$n" ]; do
    arg=$1
    shift
    if [ "$k" -lt "$nargs" ] || [ "$k" -eq $((nargs + j)) ]; then
      set -- "$@" "$arg"
    fi
    k=$((k + 1))
  done
  nix build --json --no-link "$@"
}

# Out-links keep the outputs from garbage collection while this runs.
links=$(mktemp -d "${TMPDIR:-/tmp}/nixbuild-push.XXXXXX")
trap 'rm -rf -- "$links"' EXIT
# The provider's stop (guard.sh) sends SIGTERM: exit through the EXIT trap.
trap 'exit 143' TERM
status=0
nix build --json --print-build-logs --out-link "$links/result" "$@" >"$links/built.json" || status=$?
if [ -n "$hash" ]; then
  # Nix has copied the tree into its store: the lease can go. Best effort: a
  # failure only delays pruning until the next push.
  source_sh release "$lease" "$keep" >/dev/null ||
    echo "push_build.sh: cannot prune uploaded sources" >&2
fi
[ "$status" = 0 ] || exit "$status"

# The closure and (with several installables) each installable's outputs,
# asked in parallel: all of it is built already.
nix path-info --json --recursive "$links"/result* >"$links/closure.json" &
pids=$!
installables=$(($# - nargs))
if [ "$installables" = 1 ]; then
  cp "$links/built.json" "$links/built-0.json"
else
  j=0
  while [ "$j" -lt "$installables" ]; do
    one "$j" "$@" >"$links/built-$j.json" &
    pids="$pids $!"
    j=$((j + 1))
  done
fi
for pid in $pids; do
  wait "$pid" || status=$?
done
[ "$status" = 0 ] || exit "$status"
j=0
while [ "$j" -lt "$installables" ]; do
  printf 'built\t%s\t%s\n' "$j" "$(cat "$links/built-$j.json")"
  j=$((j + 1))
done
printf 'closure\t%s\n' "$(cat "$links/closure.json")"
