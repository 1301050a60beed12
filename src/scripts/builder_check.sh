#!/bin/sh
# Report the builder's managed pieces as key=value lines (read-only): managed
# config hash, nix.conf include, build user and its keys, the watch-store
# service and its token file, and Nix's effective system features.
# Usage: builder_check.sh BUILD_USER MANAGED_PATH NIX_CONF INCLUDE_LINE UNIT DUMP RECORD_DIR ENV_FILE
#   RECORD_DIR: where build_user.sh records the accounts it created or adopted.
#   DUMP=yes also prints the managed config and authorized_keys (base64), which
#   import reads the arguments back from.
set -u
user=$1
managed=$2
conf=$3
include=$4
unit=$5
dump=$6
records=$7
env_file=$8
# Needs account_owner (account.sh) prepended.
PATH="$PATH:/nix/var/nix/profiles/default/bin"

sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }

if [ -f "$managed" ]; then
  echo "config_sha256=$(sha "$managed")"
else
  echo "config_sha256="
fi
if [ -f "$conf" ] && grep -qxF "$include" "$conf"; then
  echo "include=yes"
else
  echo "include=no"
fi
if id -u "$user" >/dev/null 2>&1; then
  echo "user=yes"
  home=$(getent passwd "$user" | cut -d: -f6)
  echo "user_keys_sha256=$(sha "$home/.ssh/authorized_keys")"
  echo "user_owner=$(account_owner "$user" "$records")"
else
  echo "user=no"
  echo "user_keys_sha256="
  echo "user_owner=absent"
fi
if [ -f "/etc/systemd/system/$unit" ]; then
  echo "unit=$(systemctl is-active "$unit" 2>/dev/null || true)"
else
  echo "unit=absent"
fi
if [ -e "$env_file" ]; then
  echo "cachix_env=yes"
else
  echo "cachix_env=no"
fi
if command -v nix >/dev/null 2>&1; then
  echo "features=$(nix show-config 2>/dev/null | sed -n 's/^system-features = //p')"
fi
if [ "$dump" = yes ]; then
  if [ -f "$managed" ]; then
    echo "config_b64=$(base64 <"$managed" | tr -d '\n')"
  fi
  if [ -n "${home:-}" ] && [ -f "$home/.ssh/authorized_keys" ]; then
    echo "keys_b64=$(base64 <"$home/.ssh/authorized_keys" | tr -d '\n')"
  fi
fi
