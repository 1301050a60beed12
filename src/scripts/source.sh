#!/bin/sh
# Content-addressed copies of `source` trees on a builder, under
# ~/.cache/nixbuild/sources/HASH. HASH is the tree's NAR hash (SHA-256, hex),
# computed by the provider; a copy is installed only after `nix-hash` agrees,
# and checked again on every later use.
#   source.sh use HASH LEASE DURATION
#       take a lease on HASH for DURATION seconds (a running push's tree is
#       never pruned), then print the directory if a good copy is there
#   source.sh unpack HASH
#       extract the tar stream on stdin, check it, install it, print the directory
#   source.sh release LEASE KEEP
#       drop the lease, then remove the least recently used trees beyond the
#       KEEP most recent ones (0: remove none), sparing trees under a lease
#
# Concurrency: any number of pushes may run these at once. Extraction and
# hashing happen in private directories; every step that looks at or changes
# what is installed (install, lease, prune) holds one lock, a directory made
# with mkdir (atomic everywhere), for a few milliseconds. So `mv` never finds
# the target in place, and nothing ever lands inside another copy.
set -eu

root=${HOME:-/root}/.cache/nixbuild/sources
lock=$root/.lock
leases=$root/.leases

fail() {
  echo "source.sh: $*" >&2
  exit 2
}

hex() {
  case $1 in '' | *[!0-9a-f]*) fail "bad $2: $1" ;; esac
}

count() {
  case $1 in '' | *[!0-9]*) fail "bad $2: $1" ;; esac
}

held=
tmp=
cleanup() {
  if [ -n "$held" ]; then rmdir -- "$lock" 2>/dev/null || true; fi
  if [ -n "$tmp" ]; then rm -rf -- "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# A lock older than a minute was left by a process killed with SIGKILL (all
# other ends release it): it is broken.
take_lock() {
  while ! mkdir -- "$lock" 2>/dev/null; do
    if [ -n "$(find "$lock" -maxdepth 0 -mmin +1 2>/dev/null)" ]; then
      rmdir -- "$lock" 2>/dev/null || true
    fi
    sleep 0.1 2>/dev/null || sleep 1
  done
  held=1
}

drop_lock() {
  rmdir -- "$lock"
  held=
}

nix_hash() {
  if command -v nix-hash >/dev/null 2>&1; then
    set -- "$(command -v nix-hash)" "$1"
  elif [ -x /nix/var/nix/profiles/default/bin/nix-hash ]; then
    set -- /nix/var/nix/profiles/default/bin/nix-hash "$1"
  else
    set -- "$HOME/.nix-profile/bin/nix-hash" "$1"
  fi
  "$1" --type sha256 "$2"
}

# Record a use of tree $1 (the pruning order). Under the lock.
stamp() {
  date +%s >"$root/$1.used"
}

# Move tree $1 aside (atomic); empty_trash deletes it outside the lock.
# Under the lock.
trash() {
  bin=$(mktemp -d "$root/.trash.XXXXXX")
  mv -- "$root/$1" "$bin/"
  rm -f -- "$root/$1.used"
}

empty_trash() {
  for bin in "$root"/.trash.*; do
    if [ -e "$bin" ]; then rm -rf -- "$bin" 2>/dev/null || true; fi
  done
}

# Remove trees beyond the $1 most recently used, except leased ones; drop
# expired leases. Under the lock.
prune() {
  now=$(date +%s)
  in_use=' '
  for lease in "$leases"/*; do
    [ -f "$lease" ] || continue
    read -r leased expires <"$lease" || true
    case ${expires:-x} in *[!0-9]*) expires=0 ;; esac
    if [ "$expires" -gt "$now" ]; then
      in_use="$in_use${leased:-} "
    else
      rm -f -- "$lease"
    fi
  done
  for tree in "$root"/*; do
    name=${tree##*/}
    case $name in *[!0-9a-f]*) continue ;; esac
    [ -d "$tree" ] || continue
    used=$(cat -- "$tree.used" 2>/dev/null || true)
    case ${used:-x} in *[!0-9]*) used=0 ;; esac
    printf '%s %s\n' "$used" "$name"
  done | sort -rn | {
    n=0
    while read -r _ name; do
      n=$((n + 1))
      if [ "$n" -le "$1" ]; then continue; fi
      case $in_use in *" $name "*) continue ;; esac
      trash "$name"
    done
  }
}

mode=${1:-}
mkdir -p -- "$root" "$leases"
case $mode in
  use)
    [ $# -eq 4 ] || fail "usage: use HASH LEASE DURATION"
    hex "$2" hash
    hex "$3" lease
    count "$4" duration
    dir=$root/$2
    take_lock
    printf '%s %s\n' "$2" "$(($(date +%s) + $4))" >"$leases/$3"
    present=
    if [ -d "$dir" ]; then
      present=1
      stamp "$2"
    fi
    drop_lock
    if [ -n "$present" ]; then
      if [ "$(nix_hash "$dir")" = "$2" ]; then
        printf '%s\n' "$dir"
      else
        echo "source.sh: $dir no longer matches its hash: it is uploaded again" >&2
        take_lock
        if [ -d "$dir" ]; then trash "$2"; fi
        drop_lock
        empty_trash
      fi
    fi
    ;;
  unpack)
    [ $# -eq 2 ] || fail "usage: unpack HASH"
    hex "$2" hash
    dir=$root/$2
    tmp=$(mktemp -d "$root/.unpack.XXXXXX")
    tar -x -f - -C "$tmp" --no-same-owner --no-same-permissions
    chmod 755 "$tmp"
    got=$(nix_hash "$tmp")
    if [ "$got" != "$2" ]; then
      echo "source.sh: the uploaded tree hashes to $got, not $2: not installed" >&2
      exit 1
    fi
    take_lock
    # A concurrent push of the same tree may have installed it first: its
    # copy passed the same check, so ours is dropped (by the EXIT trap).
    if [ ! -e "$dir" ]; then
      mv -- "$tmp" "$dir"
      tmp=
    fi
    stamp "$2"
    drop_lock
    printf '%s\n' "$dir"
    ;;
  release)
    [ $# -eq 3 ] || fail "usage: release LEASE KEEP"
    hex "$2" lease
    count "$3" keep
    take_lock
    rm -f -- "$leases/$2"
    if [ "$3" -gt 0 ]; then prune "$3"; fi
    drop_lock
    empty_trash
    # Extractions cut off mid-transfer (the process was killed).
    find "$root" -maxdepth 1 -name '.unpack.*' -mmin +1440 -exec rm -rf -- {} + 2>/dev/null || true
    ;;
  *)
    fail "unknown mode $mode"
    ;;
esac
