#!/bin/sh
# Remove what nixbuild_builder added (on_destroy = "clean"): the watch-store
# service and its token file, the build user, the managed config and its
# include line. The user's own nix.conf lines stay.
# Usage: builder_clean.sh BUILD_USER MANAGED_PATH NIX_CONF INCLUDE_LINE UNIT ENV_FILE
set -eu
user=$1
managed=$2
conf=$3
include=$4
unit=$5
env_file=$6
PATH="$PATH:/usr/sbin:/sbin"

if [ -f "/etc/systemd/system/$unit" ]; then
  systemctl disable --now "$unit" || true
  rm -f "/etc/systemd/system/$unit"
  systemctl daemon-reload || true
fi
rm -f "$env_file"
if id -u "$user" >/dev/null 2>&1; then
  pkill -u "$user" 2>/dev/null || true
  userdel -r "$user" 2>/dev/null || userdel "$user"
fi
rm -f "$managed"
if [ -f "$conf" ] && grep -qxF "$include" "$conf"; then
  next=$(mktemp "$conf.XXXXXX")
  grep -vxF "$include" "$conf" >"$next" || true
  chmod 0644 "$next"
  mv -f "$next" "$conf"
fi
echo "cleaned"
