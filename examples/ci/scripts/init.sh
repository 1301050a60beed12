#!/usr/bin/env bash
# `terraform init` of the environment with this run's remote state. The
# backend is partial (`backend "TYPE" {}` written next to the configuration),
# its settings come from the job, so build and destroy, on different runners,
# share one state per run.
#
#   INFRA_DIR          the environment, e.g. infra/environments/dev
#   TF_BACKEND         backend type (default s3: any S3-compatible bucket)
#   TF_BACKEND_CONFIG  its settings, one KEY=VALUE per line (for s3: bucket,
#                      region, key = one state per run, use_lockfile=true)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

require INFRA_DIR TF_BACKEND_CONFIG
cat >"$INFRA_DIR/backend.tf" <<HCL
terraform {
  backend "${TF_BACKEND:-s3}" {}
}
HCL
args=()
while IFS= read -r setting; do
  [ -n "$setting" ] && args+=("-backend-config=$setting")
done <<<"$TF_BACKEND_CONFIG"
tf init -input=false -no-color "${args[@]}"
