#!/usr/bin/env bash
# Benchmark of the provider's gRPC round trips with Terraform, no SSH involved:
# a no-op `terraform plan` over 100 render-only `nixbuild_machines_file`
# resources (no file, no host), with TCP_NODELAY on the provider's gRPC
# listener ("after", the default) and without it (NIXBUILD_GRPC_NODELAY=off,
# "before"), next to 100 `terraform_data` (Terraform's floor: no provider
# process at all). Median over RUNS runs each, interleaved; prints numbers and
# ratios, asserts nothing.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
runs=${RUNS:-5}
count=${COUNT:-100}
terraform=${TERRAFORM:-$world/bin/terraform-1.15.5}
[ -x "$terraform" ] || { echo "no Terraform at $terraform: run 'make world'" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"

cat >"$work/terraform.rc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/my-modular-workspace/nixbuild" = "$repo/target/release"
  }
  direct {}
}
RC
mkdir -p "$work/render" "$work/floor"
cat >"$work/render/main.tf" <<TF
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
cat >"$work/floor/main.tf" <<TF
resource "terraform_data" "d" {
  count = $count
  input = "builder-\${count.index}"
}
TF
export TF_CLI_CONFIG_FILE="$work/terraform.rc" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
unset TF_LOG TF_LOG_PROVIDER

tf() { (cd "$work/$1" && shift && "$terraform" "$@" -no-color -input=false) >"$work/last.log" 2>&1; }
fail() { echo "failed: $*" >&2; tail -n 30 "$work/last.log" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }

tf floor init || fail "init (terraform_data)"
tf floor apply -auto-approve || fail "apply of $count terraform_data"
tf render apply -auto-approve || fail "apply of $count render-only machines files"

# plan_ms DIR [ENV...]: one no-op plan, in ms; a non-empty plan fails.
plan_ms() {
  local dir=$1 start rc=0
  shift
  start=$(now_ms)
  (cd "$work/$dir" && env "$@" "$terraform" plan -detailed-exitcode -no-color -input=false) \
    >"$work/last.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || fail "no-op plan in $dir (exit $rc)"
  echo $(($(now_ms) - start))
}
after=() before=() floor=()
for _ in $(seq "$runs"); do
  after+=("$(plan_ms render)")
  before+=("$(plan_ms render NIXBUILD_GRPC_NODELAY=off)")
  floor+=("$(plan_ms floor)")
done
a=$(median "${after[@]}") b=$(median "${before[@]}") f=$(median "${floor[@]}")
echo "runs per measurement:                                  $runs (median)"
echo "no-op plan, $count render-only machines files, before:   ${b} ms   (runs: ${before[*]})"
echo "no-op plan, $count render-only machines files, after:    ${a} ms   (runs: ${after[*]})"
echo "no-op plan, $count terraform_data (Terraform's floor):   ${f} ms   (runs: ${floor[*]})"
echo "ratio after / before:                                  $(ratio "$a" "$b")"
echo "ratio after / floor:                                   $(ratio "$a" "$f")"
