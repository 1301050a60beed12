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
  trap 'rm -f "$next"' EXIT
  # The provider's stop (guard.sh) sends SIGTERM: exit through the EXIT trap.
  trap 'exit 143' TERM
  # The copy takes nix.conf's mode, owner and group (and, with GNU cp, its
  # ACLs and xattrs); writing into it keeps them: a root-only nix.conf
  # holding access-tokens stays root-only.
  cp --preserve=all -- "$conf" "$next" 2>/dev/null || cp -p -- "$conf" "$next"
  grep -vxF "$include" "$conf" >"$next" || true
  mv -f "$next" "$conf"
fi
echo "cleaned"
