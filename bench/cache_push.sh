#!/usr/bin/env bash
# Benchmark: a fully cached `nixbuild_cache_push` through Terraform next to
# `nix copy --to` of the same paths run directly on the builder (over plain
# ssh), plus the NAR bytes each push uploaded (sizes of the files nginx
# received as `PUT /nar/…` while it ran). Prints medians over RUNS runs and
# their ratios. Asserts nothing.
#   RUNS=5 PROFILE=release bash bench/cache_push.sh   (PROFILE=debug reuses the
#   test build instead of a release build)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
runs=${RUNS:-5}
profile=${PROFILE:-release}
terraform=${TERRAFORM:-$world/bin/terraform-1.15.5}
json="$world/world.json"
[ -f "$json" ] || { echo "no test world: run 'make world'" >&2; exit 1; }
field() { python3 -c 'import json,sys; w=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"w": w}))' "$json" "$1"; }
host=$(field 'w["hosts"]["h2"]["address"]')
key=$(field 'w["keys"]["ed25519"]')
cache=$(field 'w["cache"]["url"]')
cache_dir=$(field 'w["cache"]["dir"]')
access_log=$(field 'w["cache"]["access_log"]')

if [ "$profile" = release ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
else
  cargo build --quiet --manifest-path "$repo/Cargo.toml"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tf" "$work/flake"
cp "$repo"/tests/fixtures/cache_push/flake/{flake.nix,message.txt} "$work/flake/"
# A salt of its own: the first push uploads everything, later ones nothing.
echo "bench-$$-$(date +%s%N)" >"$work/flake/salt.txt"
cat >"$work/terraform.rc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/my-modular-workspace/nixbuild" = "$repo/target/$profile"
  }
  direct {}
}
RC
resource() {
  printf 'resource "nixbuild_cache_push" "%s" {\n  host = "%s"\n  source = "%s"\n  installables = ["app", "tool"]\n  store {\n    uri = "%s"\n  }\n}\noutput "%s" {\n  value     = nixbuild_cache_push.%s\n  sensitive = true\n}\n' \
    "$1" "$host" "$work/flake" "$cache" "$1" "$1"
}
{
  printf 'terraform {\n  required_providers {\n    nixbuild = { source = "my-modular-workspace/nixbuild" }\n  }\n}\n'
  printf 'provider "nixbuild" {\n  ssh { private_key_file = "%s" }\n}\n' "$key"
  resource first
} >"$work/tf/main.tf"
export TF_CLI_CONFIG_FILE="$work/terraform.rc" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
tf() { (cd "$work/tf" && "$terraform" "$@" -no-color >"$work/last.log" 2>&1) || { echo "terraform $* failed:" >&2; cat "$work/last.log" >&2; exit 1; }; }

# nar_bytes_since OFFSET: bytes of the NAR files PUT to nginx after OFFSET of its log.
nar_bytes_since() {
  tail -c +"$(($1 + 1))" "$access_log" | awk '$6 == "\"PUT" && $7 ~ /^\/nar\// { print $7 }' |
    while read -r url; do stat -c %s "$cache_dir$url"; done | awk '{ s += $1 } END { print s + 0 }'
}
log_size() { stat -c %s "$access_log"; }

# median_ms CMD...: run CMD $runs times, print the median wall time in ms.
median_ms() {
  local times=() start end
  for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1 || { echo "command failed: $*" >&2; exit 1; }
    end=$(date +%s%N)
    times+=($(((end - start) / 1000000)))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p"
}

tf init
offset=$(log_size)
start=$(date +%s%N)
tf apply -auto-approve
first_ms=$((($(date +%s%N) - start) / 1000000))
first_bytes=$(nar_bytes_since "$offset")
outputs=$(cd "$work/tf" && "$terraform" output -json first)
out_paths=$(python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])["out_paths"]))' "$outputs")
closure=$(python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print(len(o["closure_paths"]), o["closure_nar_size"], o["pushed_paths"])' "$outputs")
read -r closure_paths closure_nar pushed <<<"$closure"

# Fully cached: a second resource with the same closure, re-created each run.
resource second >>"$work/tf/main.tf"
tf apply -auto-approve
offset=$(log_size)
cached_ms=$(median_ms tf apply -auto-approve -replace=nixbuild_cache_push.second)
cached_bytes=$(nar_bytes_since "$offset")
plan_ms=$(median_ms tf plan)

ssh_cmd=(ssh -i "$key" -o BatchMode=yes -o UserKnownHostsFile="$world/known_hosts"
  -o StrictHostKeyChecking=yes "root@$host")
offset=$(log_size)
# shellcheck disable=SC2086 # out_paths is a list of store paths
copy_ms=$(median_ms "${ssh_cmd[@]}" nix --extra-experimental-features nix-command copy --to "$cache" $out_paths)
# shellcheck disable=SC2086
copy_fresh_ms=$(median_ms "${ssh_cmd[@]}" nix --extra-experimental-features nix-command copy \
  --option narinfo-cache-positive-ttl 0 --to "$cache" $out_paths)
copy_bytes=$(nar_bytes_since "$offset")
tf destroy -auto-approve

ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }
echo "provider build:                                  $profile"
echo "runs per measurement:                            $runs (median)"
echo "closure:                                         $closure_paths paths, $closure_nar NAR bytes"
echo "first push (terraform apply, builds + uploads):  ${first_ms} ms, pushed_paths=$pushed, ${first_bytes} NAR bytes uploaded"
echo "fully cached push (terraform apply -replace):    ${cached_ms} ms, ${cached_bytes} NAR bytes uploaded in $runs runs"
echo "terraform plan (refresh checks narinfos):        ${plan_ms} ms"
echo "nix copy --to on the builder (over ssh):         ${copy_ms} ms"
echo "nix copy --to, narinfo disk cache off:           ${copy_fresh_ms} ms"
echo "NAR bytes uploaded by the $((2 * runs)) nix copy runs:        ${copy_bytes}"
echo "ratio cached terraform push / nix copy:          $(ratio "$cached_ms" "$copy_ms")"
echo "ratio cached terraform push / nix copy (fresh):  $(ratio "$cached_ms" "$copy_fresh_ms")"
