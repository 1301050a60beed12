#!/usr/bin/env bash
# Creates and bootstraps the builders, and runs the environment's pushes:
# the heavy packages and activation packages are built on a builder and
# uploaded from there (nixbuild_cache_push, bounded by its `create` timeout).
#
#   INFRA_DIR  the environment
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

tf apply -auto-approve -input=false -no-color -lock-timeout=5m
tf output -no-color -json pushed
