#!/bin/sh
# Remove a file only if it still holds what was written.
# Usage: file_remove.sh PATH SHA256
# Prints `removed`, `missing` (nothing to do) or `changed` (the file's SHA-256
# differs from SHA256, or PATH is a symbolic link or not a regular file, so
# it was kept).
set -eu
path=$1
expected=$2
# A symbolic link, a directory or anything but a regular file is not what
# was written: never followed, kept.
if [ -L "$path" ] || { [ -e "$path" ] && [ ! -f "$path" ]; }; then
  echo changed
  exit 0
fi
if [ ! -e "$path" ]; then
  echo missing
  exit 0
fi
if command -v sha256sum >/dev/null 2>&1; then
  actual=$(sha256sum < "$path")
elif command -v shasum >/dev/null 2>&1; then
  actual=$(shasum -a 256 < "$path")
else
  actual=$(openssl dgst -sha256 -r < "$path")
fi
# All three print the hex digest first.
actual=${actual%% *}
if [ "$actual" = "$expected" ]; then
  rm -f -- "$path"
  echo removed
else
  echo changed
fi
