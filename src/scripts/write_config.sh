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
# Copy file $1 over $2 with $1's mode, owner, group and, where cp can,
# ACLs and xattrs.
copy_keeping_mode() {
  cp --preserve=all -- "$1" "$2" 2>/dev/null || cp -p -- "$1" "$2"
}

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
  # The provider's stop (guard.sh) sends SIGTERM: exit through the EXIT trap.
  trap 'exit 143' TERM
  # Through cat, which names the cause of a failed write ("No space left on
  # device"); dash's printf says only "I/O error".
  printf '%s' "$wanted" | cat >"$new"
  chmod 0644 "$new"
  mv -f "$new" "$managed"
  new=
  changed=yes
fi

if [ ! -f "$conf" ] || ! grep -qxF "$include" "$conf"; then
  next=$(mktemp "$conf.XXXXXX")
  trap 'rm -f "$next"' EXIT
  # The provider's stop (guard.sh) sends SIGTERM: exit through the EXIT trap.
  trap 'exit 143' TERM
  if [ -f "$conf" ]; then
    # The copy keeps the file's mode, owner and group (and, with GNU cp,
    # its ACLs and xattrs): a root-only nix.conf holding access-tokens stays
    # root-only. Appending to it below keeps them too.
    copy_keeping_mode "$conf" "$next"
    # Keep the user's last line whole.
    if [ -s "$conf" ] && [ -n "$(tail -c 1 "$conf")" ]; then
      echo >>"$next"
    fi
  else
    chmod 0644 "$next"
  fi
  # Last, so the managed settings win over earlier lines.
  printf '%s\n' "$include" >>"$next"
  mv -f "$next" "$conf"
  changed=yes
fi
echo "changed=$changed"
