#!/usr/bin/env bash
# Builds this commit's installables on the runner, with every build sent to
# the builders (`nix_build_command`: --max-jobs 0 and the builders line), and
# records the out paths in $RUNNER_TEMP/built-paths for push.sh.
#
#   INFRA_DIR           the environment (its nix_build_command output)
#   TF_VAR_flake_ref    the commit's flake reference (flake-ref.sh)
#   BUILD_INSTALLABLES  attributes of that flake, one per line, as in Nix:
#                       homeConfigurations."dev@workstation".activationPackage
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

require TF_VAR_flake_ref BUILD_INSTALLABLES
command=$(tf output -raw nix_build_command)
built="$(scratch_dir)/built-paths"
: >"$built"
while IFS= read -r installable; do
  [ -n "$installable" ] || continue
  # The command holds the builders line quoted as one word: eval it, with
  # the installable passed as one argument (its quotes are Nix's, not the
  # shell's).
  echo "building $installable through the builders"
  eval "$command -L --no-link --json \"\$TF_VAR_flake_ref#\$installable\"" |
    jq -r '.[].outputs[]' >>"$built"
done <<<"$BUILD_INSTALLABLES"
[ -s "$built" ] || die "nothing was built"
cat "$built"
