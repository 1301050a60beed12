#!/usr/bin/env bash
# Benchmark (issue 25, item 4): the provider served by tf-provider's gRPC server
# ("before": GetProviderSchemaOptional false, TCP on loopback) against the
# project's own plugin layer ("after": GetProviderSchemaOptional true, a unix
# socket), in one run, interleaved run by run:
#   (i)  a no-op `terraform plan` over COUNT render-only `nixbuild_machines_file`
#        (no host, no file), before and after, next to COUNT `terraform_data`
#        (built into Terraform: no plugin process at all);
#   (ii) the fully cached `nixbuild_cache_push` apply -replace, before and
#        after, next to the same `nix build && nix copy` as `remote-exec`
#        (bench/cache_push.sh with BEFORE_DIR, its R2 part only).
# Prints medians and ratios; asserts nothing.
#
# "before" is the provider built from git revision BEFORE_REV (the last commit
# served by tf-provider); "after" is the working tree's release build, or the
# one of AFTER_REV. A revision is built once into REV_CACHE/<rev>/, from
# `git archive`, with a target directory of its own (sharing the working
# tree's would leave whichever build came last as target/release's binary:
# cargo does not copy a fresh binary again).
#   RUNS=7 bash bench/schema_optional.sh
#   AFTER_REV=HEAD bash bench/schema_optional.sh   (committed code only)
#   BEFORE_REV=<commit> PUSH=0 bash bench/schema_optional.sh   (plan part only)
#   AFTER_DIR=<dir> bash bench/schema_optional.sh   (a build of your own as "after";
#   the before build's own directory gives an A/A run: the noise of the method)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$repo/bench/lib.sh"
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
runs=${RUNS:-7}
count=${COUNT:-100}
push=${PUSH:-1}
terraform=${TERRAFORM:-$world/bin/terraform-1.15.5}
before_rev=${BEFORE_REV:-5305c6e}
rev_cache=${REV_CACHE:-/var/tmp/nixbuild-revs}
[ -x "$terraform" ] || { echo "no Terraform at $terraform: run 'make world'" >&2; exit 1; }

# rev_build REV: the directory holding REV's release build (built once).
rev_build() {
  local rev dir src
  rev=$(git -C "$repo" rev-parse --short "$1")
  dir="$rev_cache/$rev"
  if [ ! -x "$dir/terraform-provider-nixbuild" ]; then
    echo "building the provider of $rev into $dir (once)" >&2
    src="$rev_cache/$rev-src"
    rm -rf "$src"
    mkdir -p "$src" "$dir"
    git -C "$repo" archive "$rev" | tar -x -C "$src"
    CARGO_TARGET_DIR="$rev_cache/target" cargo build --release --quiet \
      --manifest-path "$src/Cargo.toml" --bin terraform-provider-nixbuild >&2
    cp "$rev_cache/target/release/terraform-provider-nixbuild" "$dir/"
  fi
  echo "$dir"
}
before_dir=$(rev_build "$before_rev")
if [ -n "${AFTER_DIR:-}" ]; then
  after_dir=$AFTER_DIR
  after_name=$after_dir
elif [ -n "${AFTER_REV:-}" ]; then
  after_dir=$(rev_build "$AFTER_REV")
  after_name="$(git -C "$repo" rev-parse --short "$AFTER_REV") (own plugin layer)"
else
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
  after_dir="$repo/target/release"
  after_name="the working tree on $(git -C "$repo" rev-parse --short HEAD) (own plugin layer)"
fi
if cmp -s "$before_dir/terraform-provider-nixbuild" "$after_dir/terraform-provider-nixbuild"; then
  if [ -z "${AFTER_DIR:-}" ]; then
    echo "the after binary ($after_dir) is the before binary: nothing to compare" >&2
    exit 1
  fi
  echo "note: AFTER_DIR holds the before binary: an A/A run (the spread between two identical sides)"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dev_overrides_rc "$work/before.rc" "$before_dir"
dev_overrides_rc "$work/after.rc" "$after_dir"
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
unset TF_LOG TF_LOG_PROVIDER

# (i) One state per build: a state written by one build is never planned by
# the other.
for d in before after; do
  mkdir -p "$work/render_$d"
  cat >"$work/render_$d/main.tf" <<TF
terraform {
  required_providers {
    nixbuild = { source = "my-modular-workspace/nixbuild" }
  }
}
resource "nixbuild_machines_file" "m" {
  count = $count
  machine {
    uri     = "ssh-ng://nixbuild@builder-\${count.index}.example.com"
    systems = ["x86_64-linux"]
  }
}
TF
  TF_CLI_CONFIG_FILE="$work/$d.rc" tf "render_$d" apply -auto-approve \
    || fail "apply of $count render-only machines files ($d)"
done
mkdir -p "$work/floor"
cat >"$work/floor/main.tf" <<TF
resource "terraform_data" "d" {
  count = $count
  input = "builder-\${count.index}"
}
TF
TF_CLI_CONFIG_FILE="$work/after.rc" tf floor init || fail "init (terraform_data)"
TF_CLI_CONFIG_FILE="$work/after.rc" tf floor apply -auto-approve || fail "apply of $count terraform_data"

before=() after=() floor=()
for i in $(seq "$runs"); do
  # The order turns every run, so that no side always follows the same one.
  case $((i % 3)) in
    0) order="before after floor" ;;
    1) order="after floor before" ;;
    *) order="floor before after" ;;
  esac
  for side in $order; do
    case $side in
      before) before+=("$(noop_plan "$work/before.rc" render_before)") ;;
      after) after+=("$(noop_plan "$work/after.rc" render_after)") ;;
      floor) floor+=("$(noop_plan "$work/after.rc" floor)") ;;
    esac
  done
done
b=$(median "${before[@]}") a=$(median "${after[@]}") f=$(median "${floor[@]}")
echo "before: $before_rev (tf-provider's server); after: $after_name"
echo "runs per measurement:                                   $runs (median, interleaved)"
echo "(i) no-op plan, $count render-only machines files, before: ${b} ms   (runs: ${before[*]})"
echo "    no-op plan, $count render-only machines files, after:  ${a} ms   (runs: ${after[*]})"
echo "    no-op plan, $count terraform_data:                     ${f} ms   (runs: ${floor[*]})"
echo "    ratio before / terraform_data:                        $(ratio "$b" "$f")"
echo "    ratio after / terraform_data:                         $(ratio "$a" "$f")"
echo "    ratio after / before:                                 $(ratio "$a" "$b")"

# (ii) The cached push, before and after, against remote-exec.
if [ "$push" = 1 ]; then
  echo "(ii) fully cached nixbuild_cache_push, apply -replace (bench/cache_push.sh):"
  BEFORE_DIR="$before_dir" PROVIDER_DIR="$after_dir" R2_ONLY=1 RUNS=$runs TERRAFORM=$terraform \
    bash "$repo/bench/cache_push.sh"
fi
