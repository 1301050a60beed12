#!/bin/sh
# Read-only health report of a builder as key=value lines: Nix version, whether
# the Nix daemon answers the build user (asked as that user, so a socket the
# user may not open counts as down), free space of the store's file system,
# and builds running. Changes nothing.
# Usage: builder_status.sh BUILD_USER
set -u
user=$1
PATH="$PATH:/nix/var/nix/profiles/default/bin"
export PATH
store=/nix/store

nix=$(command -v nix || true)
if [ -n "$nix" ]; then
  version=$("$nix" --version 2>/dev/null)
  echo "nix_version=${version##* }"
else
  echo "nix_version="
fi

# One line: what went wrong, newlines folded.
one_line() { tr '\n' ' ' | sed 's/  */ /g; s/ $//' | cut -c1-300; }

as_user() { # COMMAND...: run as the build user, bounded in time
  limit=""
  command -v timeout >/dev/null 2>&1 && limit="timeout 30"
  if command -v runuser >/dev/null 2>&1; then
    # shellcheck disable=SC2086 # $limit is empty or two words
    $limit runuser -u "$user" -- "$@"
  else
    # shellcheck disable=SC2086,SC2016 # $0 and $@ expand in the user's shell
    $limit su -s /bin/sh "$user" -c '"$0" "$@"' "$@"
  fi
}

if [ -z "$nix" ]; then
  echo "daemon=fail: Nix is not installed"
elif ! id -u "$user" >/dev/null 2>&1; then
  echo "daemon=fail: the build user $user does not exist"
elif said=$(cd / && as_user "$nix" --extra-experimental-features nix-command store ping --store daemon 2>&1); then
  echo "daemon=ok"
else
  # Nix's own message is its `error:` line (`nix store ping` prints the
  # store URL before it).
  reason=$(printf '%s\n' "$said" | grep 'error' | tail -n 1)
  [ -n "$reason" ] || reason=$(printf '%s\n' "$said" | tail -n 1)
  echo "daemon=fail: $(printf '%s' "$reason" | one_line)"
fi

if [ -d "$store" ]; then
  echo "store_free_bytes=$(df -P -B1 "$store" 2>/dev/null | awk 'NR==2 {print $4}')"
else
  echo "store_free_bytes="
fi
# Each build holds one build user (nixbld*) while it runs; the owner of
# /proc/PID is the process's user.
echo "builds_running=$(stat -c %U /proc/[0-9]* 2>/dev/null | sort -u | grep -c '^nixbld')"
