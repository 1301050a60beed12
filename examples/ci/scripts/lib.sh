# shellcheck shell=bash
# Shared by the CI scripts in this directory (sourced, not run): strict mode,
# errors, and handing values to later steps of the job. GitHub Actions and
# Forgejo Actions both read later steps' environment from the file named by
# $GITHUB_ENV, so the scripts run unchanged on either (and in
# tests/ci_example.rs, which points GITHUB_ENV at a file of its own).
set -euo pipefail

die() {
  echo "error: $*" >&2
  exit 1
}

# require NAME...: every named variable is set and not empty.
require() {
  local name
  for name in "$@"; do
    [ -n "${!name:-}" ] || die "$name is not set (see the comment on top of ${0##*/})"
  done
}

# ci_env NAME VALUE: NAME=VALUE for this script and every later step of the job.
ci_env() {
  require GITHUB_ENV
  case "$2" in
    *$'\n'*) die "$1: a value for GITHUB_ENV must be one line" ;;
  esac
  printf '%s=%s\n' "$1" "$2" >>"$GITHUB_ENV"
  export "$1=$2"
}

# The job's scratch directory (runner-provided; removed after the job).
scratch_dir() {
  require RUNNER_TEMP
  printf '%s' "$RUNNER_TEMP"
}

# Terraform in the environment directory the workflow applies.
tf() {
  require INFRA_DIR
  terraform -chdir="$INFRA_DIR" "$@"
}
