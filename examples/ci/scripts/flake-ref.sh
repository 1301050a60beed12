#!/usr/bin/env bash
# The flake reference of the commit this run builds, pinned to its revision,
# as TF_VAR_flake_ref (the pushes on the builders and build.sh use it).
#
# A pull request's head commit is on no branch of the base repository's
# default history, and Nix looks for a bare `rev=` in HEAD only: the
# reference must name where the commit is.
#   FLAKE_FORGE=github  github:OWNER/REPO/REV: GitHub's tarball of that exact
#                       commit, PR heads included; a private repository works
#                       with Nix's access-tokens (github.com=TOKEN), which
#                       apply to github:/gitlab: references only
#   FLAKE_FORGE=git     git+URL?ref=REF&rev=REV: any git server; REF is where
#                       the commit is (a branch, or refs/pull/N/head)
#
#   FLAKE_REPOSITORY    OWNER/REPO (github) or the clone URL (git)
#   FLAKE_GIT_REF       the branch or ref holding the commit (git only)
#   FLAKE_REV           the commit (40 hex digits)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

require FLAKE_REPOSITORY FLAKE_REV
[[ "$FLAKE_REV" =~ ^[0-9a-f]{40}$ ]] || die "FLAKE_REV is not a full commit hash: $FLAKE_REV"
case "${FLAKE_FORGE:-github}" in
  github)
    ref="github:$FLAKE_REPOSITORY/$FLAKE_REV"
    ;;
  git)
    require FLAKE_GIT_REF
    case "$FLAKE_REPOSITORY" in
      https://* | http://* | ssh://* | file://*) ;;
      *) die "FLAKE_REPOSITORY is not a clone URL: $FLAKE_REPOSITORY" ;;
    esac
    ref="git+$FLAKE_REPOSITORY?ref=$FLAKE_GIT_REF&rev=$FLAKE_REV"
    ;;
  *) die "FLAKE_FORGE must be github or git" ;;
esac
ci_env TF_VAR_flake_ref "$ref"
echo "building $ref"
