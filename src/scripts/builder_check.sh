#!/bin/sh
# Report the builder's managed pieces as key=value lines (read-only): managed
# config hash, nix.conf include, build user and its keys, the watch-store
# service and its token file, and Nix's effective system features.
# Usage: builder_check.sh BUILD_USER MANAGED_PATH NIX_CONF INCLUDE_LINE UNIT DUMP RECORD_DIR ENV_FILE OWNER_FILE OWNER_ID
#   RECORD_DIR: where build_user.sh records the accounts it created or adopted.
#   OWNER_FILE: the host's owner claim (host_owner.sh); `host_owner=` is the
#   owner id it names. OWNER_ID: the resource's own (empty: not known yet).
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
owner_file=$9
owner_id=${10}
# Needs account_owner (account.sh) prepended; after nix_fingerprint.sh, no
# features line when Nix is unchanged.
PATH="$PATH:/nix/var/nix/profiles/default/bin"

# Few processes: a plan checks many hosts at once, so the shell reads what
# it can itself, and one sha256sum hashes both files.
user_found=no
home=
if passwd_line=$(getent passwd "$user" 2>/dev/null); then
  user_found=yes
  IFS=: read -r _ _ _ _ _ home _ <<EOF
$passwd_line
EOF
fi
keys_file="$home/.ssh/authorized_keys"
config_sha256=
user_keys_sha256=
while read -r hash path; do
  case "$path" in
    "$managed") config_sha256=$hash ;;
    "$keys_file") user_keys_sha256=$hash ;;
  esac
done <<EOF
$(if [ "$user_found" = yes ]; then sha256sum "$managed" "$keys_file"; else sha256sum "$managed"; fi 2>/dev/null)
EOF
echo "config_sha256=$config_sha256"
include_found=no
if [ -f "$conf" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    if [ "$line" = "$include" ]; then
      include_found=yes
      break
    fi
  done <"$conf"
fi
echo "include=$include_found"
if [ "$user_found" = yes ]; then
  echo "user=yes"
  echo "user_keys_sha256=$user_keys_sha256"
  echo "user_owner=$(account_owner "$user" "$records" "$owner_id")"
else
  echo "user=no"
  echo "user_keys_sha256="
  echo "user_owner=absent"
fi
host_owner=
if [ -f "$owner_file" ]; then
  while IFS='=' read -r field value; do
    [ "$field" != owner ] || host_owner=$value
  done <"$owner_file"
fi
echo "host_owner=$host_owner"
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
if [ "${nix_unchanged:-no}" = yes ]; then
  # Set by nix_fingerprint.sh: the caller knows the features; no line.
  :
elif command -v nix >/dev/null 2>&1; then
  echo "features=$(nix show-config 2>/dev/null | sed -n 's/^system-features = //p')"
fi
if [ "$dump" = yes ]; then
  if [ -f "$managed" ]; then
    echo "config_b64=$(base64 <"$managed" | tr -d '\n')"
  fi
  if [ "$user_found" = yes ] && [ -f "$keys_file" ]; then
    echo "keys_b64=$(base64 <"$keys_file" | tr -d '\n')"
  fi
fi
