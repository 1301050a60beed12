#!/bin/sh
# Push store paths to a Cachix cache with the cachix CLI. Stdin holds the
# credentials first (`CACHIX_AUTH_TOKEN=…` / `CACHIX_SIGNING_KEY=…` lines,
# read as data, never evaluated), then one empty line, then the paths (one
# per line), which go on to `cachix push NAME` on its stdin. The credentials
# never touch the disk (an interrupted push leaves none behind) and are
# placed in the environment of the cachix process only.
# Usage: cachix_push.sh CACHE_NAME   (credentials, an empty line, paths on stdin)
set -eu

# read_credentials: sets auth_token and signing_key from stdin, up to the
# first empty line. `read` takes one byte at a time from a pipe, so the
# paths after it stay on stdin for cachix.
read_credentials() {
  auth_token=
  signing_key=
  while IFS= read -r line; do
    case $line in
      '') break ;;
      CACHIX_AUTH_TOKEN=*) auth_token=${line#CACHIX_AUTH_TOKEN=} ;;
      CACHIX_SIGNING_KEY=*) signing_key=${line#CACHIX_SIGNING_KEY=} ;;
    esac
  done
}

# --- main ---
cache=$1
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM
read_credentials

if command -v cachix >/dev/null 2>&1; then
  cachix=$(command -v cachix)
elif [ -x /nix/var/nix/profiles/default/bin/cachix ]; then
  cachix=/nix/var/nix/profiles/default/bin/cachix
elif [ -x "$HOME/.nix-profile/bin/cachix" ]; then
  cachix=$HOME/.nix-profile/bin/cachix
else
  echo "cachix: not found on this host (set cachix.install on nixbuild_builder, or install it)" >&2
  exit 127
fi

# Like `cachix push` itself (getPushSecretRequired), but saying which
# attribute to set: without a token, a signing key or the CLI's own config
# (`cachix authtoken` writes it) no push can work.
if [ -z "$auth_token" ] && [ -z "$signing_key" ] &&
  [ ! -s "${XDG_CONFIG_HOME:-$HOME/.config}/cachix/cachix.dhall" ]; then
  echo "no Cachix credentials for cache $cache: set cachix.auth_token or cachix.signing_key (on the resource, or in the provider's cachix block, or CACHIX_AUTH_TOKEN / CACHIX_SIGNING_KEY where Terraform runs), or run \`cachix authtoken\` on the builder; cachix refuses to push without one (\"Neither auth token nor signing key are present\")" >&2
  exit 8
fi

unset CACHIX_AUTH_TOKEN CACHIX_SIGNING_KEY
# One exec: the variables live in the cachix process's environment only.
if [ -n "$auth_token" ] && [ -n "$signing_key" ]; then
  CACHIX_AUTH_TOKEN=$auth_token CACHIX_SIGNING_KEY=$signing_key exec "$cachix" push "$cache"
elif [ -n "$auth_token" ]; then
  CACHIX_AUTH_TOKEN=$auth_token exec "$cachix" push "$cache"
elif [ -n "$signing_key" ]; then
  CACHIX_SIGNING_KEY=$signing_key exec "$cachix" push "$cache"
else
  exec "$cachix" push "$cache"
fi
