#!/bin/sh
# Print a file's content. Usage: file_read.sh PATH
# Exits 3 when PATH does not exist, so the caller can tell "deleted" from
# "unreadable".
set -eu
path=$1
if [ ! -e "$path" ] && [ ! -L "$path" ]; then
  exit 3
fi
cat -- "$path"
