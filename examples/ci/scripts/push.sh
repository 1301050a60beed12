#!/usr/bin/env bash
# Pushes the closure of everything build.sh built, from the runner, signed
# with the cache's signing key, and waits until it is uploaded: the builders'
# own uploads (watch-store) are asynchronous, and the destroy job must not
# race them.
#
# Destination, one of:
#   CACHIX_CACHE        a Cachix cache (the ADR's): `cachix push`, with
#                       CACHIX_AUTH_TOKEN and CACHIX_SIGNING_KEY from the
#                       environment (the cachix CLI reads them itself)
#   NIX_CACHE_URI       any `nix copy --to` store (s3://…, https://…), signed
#                       with NIX_CACHE_SECRET_KEY (name:base64, as written by
#                       nix-store --generate-binary-cache-key)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

built="$(scratch_dir)/built-paths"
[ -s "$built" ] || die "$built is empty: run build.sh first"
closure="$(scratch_dir)/push-closure"
xargs nix --extra-experimental-features nix-command path-info --recursive <"$built" >"$closure"
echo "pushing $(wc -l <"$closure") paths"
if [ -n "${CACHIX_CACHE:-}" ]; then
  require CACHIX_SIGNING_KEY
  cachix push "$CACHIX_CACHE" <"$closure"
elif [ -n "${NIX_CACHE_URI:-}" ]; then
  require NIX_CACHE_SECRET_KEY
  # The key goes into a 0600 file, never onto a command line.
  key_file="$(scratch_dir)/cache-signing-key"
  (umask 077 && printf '%s' "$NIX_CACHE_SECRET_KEY" >"$key_file")
  trap 'rm -f "$key_file"' EXIT
  xargs nix --extra-experimental-features nix-command store sign --key-file "$key_file" <"$closure"
  xargs nix --extra-experimental-features nix-command copy --to "$NIX_CACHE_URI" <"$closure"
else
  die "set CACHIX_CACHE or NIX_CACHE_URI"
fi
