#!/bin/sh
# Print a file's content, never following a symlink at PATH.
# Usage: file_read.sh PATH
# Exits 3 when PATH does not exist, so the caller can tell "deleted" from
# "unreadable"; exits 5, printing nothing, when PATH is a symbolic link or
# not a regular file: whoever can write its directory could otherwise point
# it at a root-only secret, and this runs as root.
set -eu
path=$1
if [ -L "$path" ]; then
  echo "$path is a symbolic link; it was not followed" >&2
  exit 5
fi
if [ ! -e "$path" ]; then
  exit 3
fi
if [ ! -f "$path" ]; then
  echo "$path is not a regular file; it was not read" >&2
  exit 5
fi
# GNU dd opens with O_NOFOLLOW, so a link swapped in after the test above is
# refused too; elsewhere the test above is all there is.
if dd if=/dev/null iflag=nofollow status=none 2>/dev/null; then
  if ! dd if="$path" iflag=nofollow bs=65536 status=none; then
    if [ -L "$path" ]; then
      echo "$path is a symbolic link; it was not followed" >&2
      exit 5
    fi
    exit 1
  fi
else
  cat -- "$path"
fi
