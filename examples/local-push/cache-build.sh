# shellcheck shell=bash
# cache_build: build with Nix and stream what the build adds to a Cachix cache
# (ADR-018's `hmfast-cache`). Source this file from ~/.bashrc or ~/.zshrc:
#
#   . ~/infra/examples/local-push/cache-build.sh
#   cache_build my-team '.#homeConfigurations."me@laptop".activationPackage'
#   cache_build my-team .#codex .#onnxruntime -L
#
# Quote an installable with quoted attribute names in single quotes, as above:
# the shell then hands `.#homeConfigurations."me@laptop".activationPackage` to
# Nix with its double quotes. The function passes every argument on as one
# word, unchanged ("$@"), so they survive it too.
#
# 1. `cachix watch-exec CACHE -- nix build ARGS…` pushes every store path that
#    appears while the build runs, as it appears.
# 2. Outputs that were already in the local store appear nowhere, so their
#    closures are pushed afterwards (`nix path-info --recursive ARGS…` into
#    `cachix push`; the cache skips what it has).
# Needs CACHIX_AUTH_TOKEN (or CACHIX_SIGNING_KEY) in the environment, e.g. from
# KeePassXC: docs/guides/local-push.md.
cache_build() {
  if [ "$#" -lt 2 ]; then
    echo "usage: cache_build CACHE INSTALLABLE… [nix build options]" >&2
    return 2
  fi
  local cache=$1
  shift
  cachix watch-exec "$cache" -- nix build "$@" || return
  local closure
  closure=$(nix path-info --recursive "$@") || return
  printf '%s\n' "$closure" | cachix push "$cache"
}
