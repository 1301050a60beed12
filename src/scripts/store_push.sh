#!/bin/sh
# Copy store paths (their closures) to a store with `nix copy --to`, signing
# with a secret key file when one is given. The key file was uploaded with
# mode 0600 by the provider; it is removed when this script ends, whatever
# happens. Only its path appears on a command line, never the key.
# Usage: store_push.sh URI KEYFILE PATH...   (KEYFILE may be empty)
set -eu
uri=$1
key=$2
shift 2
if [ -n "$key" ]; then
  case $key in
    /*) ;;
    *) key=$PWD/$key ;;
  esac
  trap 'rm -f -- "$key"' EXIT
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
"$nix" --extra-experimental-features 'nix-command flakes' copy \
  --option narinfo-cache-positive-ttl 0 --to "$uri" "$@"
