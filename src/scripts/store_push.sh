#!/bin/sh
# Copy exactly the given store paths (not their closures: the provider lists
# every path the store must get) to a store with `nix copy --to`, signing
# with a secret key when one is given. The key arrives on stdin and is written
# here, mode 0600, once the EXIT trap is set; it is removed when this script ends, whatever
# ends it: success, failure, a signal, or a dropped connection. Only its path
# appears on a command line, never the key.
# Usage: store_push.sh URI KEYFILE PATH...   (KEYFILE may be empty)
set -eu
uri=$1
key=$2
shift 2
child=
watchdog=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  if [ -n "$key" ]; then rm -f -- "$key"; fi
  if [ -n "$watchdog" ]; then kill "$watchdog" 2>/dev/null || true; fi
  if [ -n "$child" ]; then kill "$child" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM
if [ -n "$key" ]; then
  case $key in
    /*) ;;
    *) key=$PWD/$key ;;
  esac
  (umask 077 && mkdir -p -- "$(dirname -- "$key")")
  (umask 077 && cat >"$key")
  # Credential files left behind by a push that was killed outright (Nix reads
  # a key when it starts, and cachix_push.sh removes its file at once, so
  # nothing an hour old is still needed).
  find "$(dirname -- "$key")" -maxdepth 1 -type f \( -name 'signing-key-*' -o -name 'cachix-*' \) \
    -mmin +60 -exec rm -f -- {} + 2>/dev/null || true
  case $uri in
    *\?*) uri="$uri&secret-key=$key" ;;
    *) uri="$uri?secret-key=$key" ;;
  esac
fi
if command -v nix >/dev/null 2>&1; then
  nix=$(command -v nix)
elif [ -x /nix/var/nix/profiles/default/bin/nix ]; then
  nix=/nix/var/nix/profiles/default/bin/nix
else
  nix=$HOME/.nix-profile/bin/nix
fi
# Nix remembers narinfos it has seen (~/.cache/nix/binary-cache-*.sqlite) and
# would skip a path the cache has since lost: ask the cache afresh.
"$nix" --extra-experimental-features 'nix-command flakes' copy --no-recursive \
  --option narinfo-cache-positive-ttl 0 --to "$uri" "$@" &
child=$!
# sshd sends no signal to a command without a terminal when the connection
# drops: notice it by writing to stdout (a carriage return, which the
# provider's log ignores), which fails once nobody reads it.
(
  # sleep must not hold stdout: the channel closes only when all its writers end.
  while sleep 2 >/dev/null 2>&1; do
    if ! (printf '\r') 2>/dev/null; then
      kill -TERM $$
      exit 0
    fi
  done
) &
watchdog=$!
status=0
wait "$child" || status=$?
child=
exit "$status"
