#!/bin/sh
# Run Nix with the experimental features the provider needs (flakes and the
# `nix` command), wherever Nix is installed: PATH, the default profile of a
# multi-user install, or the user's profile.
# Usage: nix.sh ARGS...   (e.g. nix.sh build --json --no-link INSTALLABLE)
set -eu
if command -v nix >/dev/null 2>&1; then
  nix=$(command -v nix)
elif [ -x /nix/var/nix/profiles/default/bin/nix ]; then
  nix=/nix/var/nix/profiles/default/bin/nix
elif [ -x "$HOME/.nix-profile/bin/nix" ]; then
  nix=$HOME/.nix-profile/bin/nix
else
  echo "nix: not found on this host (install it first, e.g. with nixbuild_builder)" >&2
  exit 127
fi
exec "$nix" --extra-experimental-features 'nix-command flakes' "$@"
