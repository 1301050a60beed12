#!/bin/sh
# Write stdin to a file atomically, with the given mode.
# Usage: upload.sh PATH MODE
# The temporary file is created 0600 by mktemp, so secret content is never
# readable by others, even for a moment; it is renamed over PATH only when
# complete, so a cut connection never leaves a half-written file.
set -eu
path=$1
mode=$2
dir=$(dirname -- "$path")
mkdir -p -- "$dir"
tmp=$(mktemp "$dir/.nixbuild-upload.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
# The provider's stop (guard.sh) sends SIGTERM: exit through the EXIT trap.
trap 'exit 143' TERM
cat > "$tmp"
chmod "$mode" "$tmp"
# A symbolic link at PATH is replaced, never followed: mv would move the file
# into a linked directory.
if [ -L "$path" ]; then
  rm -f -- "$path"
fi
# A directory at PATH is someone's: mv would move the file into it.
if [ -d "$path" ]; then
  echo "$path is a directory; it was left untouched" >&2
  exit 3
fi
mv -f -- "$tmp" "$path"
trap - EXIT
