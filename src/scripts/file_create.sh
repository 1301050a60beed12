#!/bin/sh
# Create a file from stdin, atomically, without replacing anyone else's file.
# Usage: file_create.sh PATH MODE
# Exits 3, leaving PATH untouched, when PATH exists with other content. A file
# that already holds exactly this content is taken over (nothing is lost).
set -eu
path=$1
mode=$2
dir=$(dirname -- "$path")
mkdir -p -- "$dir"
tmp=$(mktemp "$dir/.nixbuild-create.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
# The provider's stop (guard.sh) sends SIGTERM: exit through the EXIT trap.
trap 'exit 143' TERM
cat > "$tmp"
chmod "$mode" "$tmp"
# ln without -f refuses an existing target in one step, so a file that appears
# between a check and the write is never clobbered. But ln puts the link
# inside a directory (or a symlink to one) at PATH: those are refused first.
if [ ! -d "$path" ] && [ ! -L "$path" ] && ln -- "$tmp" "$path" 2>/dev/null; then
  exit 0
fi
if [ -e "$path" ] || [ -L "$path" ]; then
  if [ -f "$path" ] && [ ! -L "$path" ] && cmp -s -- "$tmp" "$path"; then
    mv -f -- "$tmp" "$path"
    trap - EXIT
    exit 0
  fi
  echo "$path already exists and holds something else; it was left untouched" >&2
  exit 3
fi
# A file system without hard links: rename after the check instead.
mv -f -- "$tmp" "$path"
trap - EXIT
