#!/bin/sh
# Content-addressed copies of `source` trees on a builder, under
# ~/.cache/nixbuild/sources/HASH (HASH is the tree's content hash, computed by
# the provider). A directory there is always complete: it is extracted beside
# it and renamed into place.
#   source.sh has HASH      prints the directory if it exists, else nothing
#   source.sh unpack HASH   extracts the tar stream on stdin, prints the directory
set -eu
mode=$1
hash=$2
case $hash in
  *[!0-9a-f]* | '') echo "source.sh: bad hash" >&2; exit 2 ;;
esac
root=${HOME:-/root}/.cache/nixbuild/sources
dir=$root/$hash
case $mode in
  has)
    if [ -d "$dir" ]; then printf '%s\n' "$dir"; fi
    ;;
  unpack)
    if [ -d "$dir" ]; then
      cat >/dev/null
      printf '%s\n' "$dir"
      exit 0
    fi
    mkdir -p -- "$root"
    tmp=$(mktemp -d "$root/.unpack.XXXXXX")
    trap 'rm -rf -- "$tmp"' EXIT
    tar -x -f - -C "$tmp" --no-same-owner --no-same-permissions
    chmod 755 "$tmp"
    # Another push of the same tree may have won the race: its copy is
    # identical, so ours is dropped (by the trap).
    if [ ! -e "$dir" ]; then
      mv -- "$tmp" "$dir"
      trap - EXIT
    fi
    printf '%s\n' "$dir"
    ;;
  *)
    echo "source.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
