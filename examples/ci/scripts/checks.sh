#!/usr/bin/env bash
# What every pull request gets, forks included, with no secrets: fmt of all
# the HCL, and `terraform validate` of the environment without its backend
# (the provider comes from install-provider.sh).
#
#   INFRA_DIR  the environment, e.g. infra/environments/dev
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

require INFRA_DIR
terraform fmt -check -recursive -diff "$(dirname "$(dirname "$INFRA_DIR")")"
tf init -backend=false -input=false -no-color
tf validate -no-color
