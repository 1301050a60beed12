#!/usr/bin/env bash
# Lists every shell script git tracks, for `make lint`'s shellcheck: files named
# *.sh and files whose first line is a sh/bash shebang (e.g. .ci/run, the
# cachix stand-in). From git, so a new script cannot be left out of the lint.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  git ls-files -- '*.sh'
  git ls-files -z | xargs -0 awk 'FNR == 1 && /^#!.*[\/ ](ba)?sh([ \t]|$)/ { print FILENAME } { nextfile }'
} | sort -u
