#!/bin/sh
# Write the managed Nix config (stdin) and make nix.conf include it, keeping
# every line the user has in nix.conf (check-then-act).
# Usage: write_config.sh MANAGED_PATH NIX_CONF INCLUDE_LINE
# Prints changed=yes when either file changed (the daemon then needs a restart).
set -eu
managed=$1
conf=$2
include=$3
changed=no

if [ -L "$conf" ]; then
  echo "$conf is a symlink (NixOS generates it): refusing to edit it" >&2
  exit 4
fi
dir=${managed%/*}
[ -d "$dir" ] || mkdir -p "$dir"

# Few processes (ten hosts share two cores during a bootstrap): the wanted
# text is read once (the trailing x keeps its trailing newlines), compared
# with cmp, and written only when it differs, so an unchanged config leaves
# /etc/nix as it was (its files are part of every Read's Nix fingerprint).
wanted=$(cat; echo x)
wanted=${wanted%x}
if [ ! -f "$managed" ] || ! printf '%s' "$wanted" | cmp -s - "$managed"; then
  new=$(mktemp "$managed.XXXXXX")
  trap '[ -z "$new" ] || rm -f "$new"' EXIT
  printf '%s' "$wanted" >"$new"
  chmod 0644 "$new"
  mv -f "$new" "$managed"
  new=
  changed=yes
fi

if [ ! -f "$conf" ] || ! grep -qxF "$include" "$conf"; then
  next=$(mktemp "$conf.XXXXXX")
  trap 'rm -f "$next"' EXIT
  if [ -f "$conf" ]; then
    cat "$conf" >"$next"
    # Keep the user's last line whole.
    if [ -s "$conf" ] && [ -n "$(tail -c 1 "$conf")" ]; then
      echo >>"$next"
    fi
  fi
  # Last, so the managed settings win over earlier lines.
  printf '%s\n' "$include" >>"$next"
  chmod 0644 "$next"
  mv -f "$next" "$conf"
  changed=yes
fi
echo "changed=$changed"
