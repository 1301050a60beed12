#!/bin/sh
# Remove the managed Nix config and its include line (on_destroy = "clean").
# The user's own nix.conf lines stay. The rest of what nixbuild_builder added is
# removed by the scripts that added it: the build user by `build_user.sh
# release` (only an account it created is deleted), the watch-store service and
# its token file by `cachix.sh` with WATCH=false.
# Usage: builder_clean.sh MANAGED_PATH NIX_CONF INCLUDE_LINE
set -eu
managed=$1
conf=$2
include=$3

rm -f "$managed"
if [ -f "$conf" ] && grep -qxF "$include" "$conf"; then
  next=$(mktemp "$conf.XXXXXX")
  grep -vxF "$include" "$conf" >"$next" || true
  chmod 0644 "$next"
  mv -f "$next" "$conf"
fi
echo "cleaned"
