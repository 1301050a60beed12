#!/usr/bin/env bash
# Benchmark (issue 10, R2 and the 1,000-path refresh): a fully cached
# `nixbuild_cache_push` through `terraform apply`, next to the same
# `nix build && nix copy --to` written as a `remote-exec` provisioner on a
# `terraform_data` (Terraform's own SSH) and run over plain ssh; the NAR bytes
# each uploaded (sizes of the files nginx received as `PUT /nar/…`); and the
# refresh of a push whose closure has 1,000 paths (generated derivations):
# `terraform plan` time, the provider's own refresh time and the requests the
# cache received. Prints medians over RUNS runs and ratios. Asserts nothing.
#   RUNS=5 PROFILE=release bash bench/cache_push.sh   (PROFILE=debug reuses the
#   test build instead of a release build)
# PROVIDER_DIR=<dir> takes the provider from there instead of building it.
# BEFORE_DIR=<dir holding another build of the provider> adds that build's
# cached push to the interleaved runs (its own state; bench/schema_optional.sh
# compares the builds before and after issue 25 so); R2_ONLY=1 skips the
# 1,000-path refresh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$repo/bench/lib.sh"
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
runs=${RUNS:-5}
profile=${PROFILE:-release}
before_dir=${BEFORE_DIR:-}
provider_dir=${PROVIDER_DIR:-$repo/target/$profile}
r2_only=${R2_ONLY:-0}
terraform=${TERRAFORM:-$world/bin/terraform-1.15.5}
json="$world/world.json"
[ -f "$json" ] || { echo "no test world: run 'make world'" >&2; exit 1; }
field() { python3 -c 'import json,sys; w=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"w": w}))' "$json" "$1"; }
host=$(field 'w["hosts"]["h2"]["address"]')
key=$(field 'w["keys"]["ed25519"]')
cache=$(field 'w["cache"]["url"]')
cache_dir=$(field 'w["cache"]["dir"]')
access_log=$(field 'w["cache"]["access_log"]')

if [ -n "${PROVIDER_DIR:-}" ]; then
  : # a build given by the caller
elif [ "$profile" = release ]; then
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
    "registry.terraform.io/my-modular-workspace/nixbuild" = "$provider_dir"
  }
  direct {}
}
RC
resource() {
  printf 'resource "nixbuild_cache_push" "%s" {\n  host = "%s"\n  source = "%s"\n  installables = ["app", "tool"]\n  store {\n    uri = "%s"\n  }\n}\noutput "%s" {\n  value     = nixbuild_cache_push.%s\n  sensitive = true\n}\n' \
    "$1" "$host" "$work/flake" "$cache" "$1" "$1"
}
header() {
  printf 'terraform {\n  required_providers {\n    nixbuild = { source = "my-modular-workspace/nixbuild" }\n  }\n}\n'
  printf 'provider "nixbuild" {\n  ssh { private_key_file = "%s" }\n}\n' "$key"
}
{
  header
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
closure=$(python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print(len(o["closure_paths"]), o["closure_nar_size"], o["pushed_paths"])' "$outputs")
read -r closure_paths closure_nar pushed <<<"$closure"

# Fully cached: a second resource with the same closure, re-created each run,
# alone in its configuration like the remote-exec one (the first one is
# forgotten, not destroyed: destroying a push deletes nothing anyway).
(cd "$work/tf" && "$terraform" state rm nixbuild_cache_push.first >/dev/null)
{
  header
  resource second
} >"$work/tf/main.tf"
tf apply -auto-approve
plan_ms=$(median_ms tf plan)

# The same cached push through the before build, in a state of its own.
if [ -n "$before_dir" ]; then
  mkdir -p "$work/tfb"
  cp "$work/tf/main.tf" "$work/tfb/"
  dev_overrides_rc "$work/before.rc" "$before_dir"
  tfb() { (cd "$work/tfb" && TF_CLI_CONFIG_FILE="$work/before.rc" "$terraform" "$@" -no-color >"$work/last.log" 2>&1) || { echo "terraform $* (before build) failed:" >&2; cat "$work/last.log" >&2; exit 1; }; }
  tfb apply -auto-approve
fi

# The same push by hand: `nix build && nix copy` of the uploaded source tree
# (the provider left it on the builder), over plain ssh and as remote-exec.
source_hash=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["source_hash"])' "$outputs")
dir="/root/.cache/nixbuild/sources/$source_hash"
nixx="nix --extra-experimental-features 'nix-command flakes'"
by_hand="$nixx build --no-link 'path:$dir#app' 'path:$dir#tool' && $nixx copy --to '$cache' 'path:$dir#app' 'path:$dir#tool'"
ssh_cmd=(ssh -i "$key" -o BatchMode=yes -o UserKnownHostsFile="$world/known_hosts"
  -o StrictHostKeyChecking=yes "root@$host")

mkdir -p "$work/re"
python3 - "$work/re/main.tf" "$host" "$key" "$by_hand" <<'PY'
import json, sys
path, host, key, command = sys.argv[1:]
open(path, "w").write(f"""
resource "terraform_data" "by_hand" {{
  provisioner "remote-exec" {{
    connection {{
      type        = "ssh"
      host        = {json.dumps(host)}
      user        = "root"
      private_key = file({json.dumps(key)})
    }}
    inline = [{json.dumps(command)}]
  }}
}}
""")
PY
tfre() { (cd "$work/re" && "$terraform" "$@" -no-color >"$work/last.log" 2>&1) || { echo "terraform $* failed:" >&2; cat "$work/last.log" >&2; exit 1; }; }
tfre init
tfre apply -auto-approve

# What being a plugin costs one resource's `apply -replace`, whatever it does:
# one render-only nixbuild_machines_file (no host, no file; the same provider
# block) next to one terraform_data (built into Terraform: no plugin process).
mkdir -p "$work/floor/ours" "$work/floor/builtin"
{
  header
  printf 'resource "nixbuild_machines_file" "m" {\n  machine {\n    uri     = "ssh-ng://nixbuild@builder.example.com"\n    systems = ["x86_64-linux"]\n  }\n}\n'
} >"$work/floor/ours/main.tf"
printf 'resource "terraform_data" "d" {\n  input = "x"\n}\n' >"$work/floor/builtin/main.tf"
tfin() { (cd "$work/floor/$1" && shift && "$terraform" "$@" -no-color >"$work/last.log" 2>&1) || { echo "terraform $* failed:" >&2; cat "$work/last.log" >&2; exit 1; }; }
for d in ours builtin; do
  tfin "$d" init
  tfin "$d" apply -auto-approve
done

# The five measurements interleaved, run by run (a slow moment of the shared
# machine then hits all of them alike): each run's wall time, and the NAR
# bytes the cache received during it.
declare -A run_ms=() run_bytes=()
measure() { # NAME CMD...: one timed run of CMD, added to NAME's figures
  local name=$1 offset start end
  shift
  offset=$(log_size)
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "command failed: $*" >&2; exit 1; }
  end=$(date +%s%N)
  run_ms[$name]+=" $(((end - start) / 1000000))"
  run_bytes[$name]=$((${run_bytes[$name]:-0} + $(nar_bytes_since "$offset")))
}
for i in $(seq "$runs"); do
  # The before build's push next to this one's, taking turns at going first.
  if [ -n "$before_dir" ] && [ $((i % 2)) = 0 ]; then
    measure cached_before tfb apply -auto-approve -replace=nixbuild_cache_push.second
  fi
  measure cached tf apply -auto-approve -replace=nixbuild_cache_push.second
  if [ -n "$before_dir" ] && [ $((i % 2)) = 1 ]; then
    measure cached_before tfb apply -auto-approve -replace=nixbuild_cache_push.second
  fi
  measure re tfre apply -auto-approve -replace=terraform_data.by_hand
  measure ssh "${ssh_cmd[@]}" "$by_hand"
  measure floor_ours tfin ours apply -auto-approve -replace=nixbuild_machines_file.m
  measure floor_builtin tfin builtin apply -auto-approve -replace=terraform_data.d
done
# shellcheck disable=SC2086 # the figures are a list
{
  cached_ms=$(median ${run_ms[cached]})
  re_ms=$(median ${run_ms[re]})
  ssh_ms=$(median ${run_ms[ssh]})
  floor_ours_ms=$(median ${run_ms[floor_ours]})
  floor_builtin_ms=$(median ${run_ms[floor_builtin]})
}
cached_bytes=${run_bytes[cached]} re_bytes=${run_bytes[re]} ssh_bytes=${run_bytes[ssh]}
tfre destroy -auto-approve
tf destroy -auto-approve
if [ -n "$before_dir" ]; then
  # shellcheck disable=SC2086 # the figures are a list
  cached_before_ms=$(median ${run_ms[cached_before]})
  cached_before_bytes=${run_bytes[cached_before]}
  tfb destroy -auto-approve
fi

if [ "$r2_only" != 1 ]; then
  # Refresh of a push whose closure has 1,000 paths. A fixed salt: the paths are
  # built and uploaded once per world, later runs reuse them.
  mkdir -p "$work/big/tf" "$work/big/flake"
  cp "$repo/bench/fixtures/closure1000/flake.nix" "$work/big/flake/"
  echo "bench-closure-1000" >"$work/big/flake/salt.txt"
  {
    printf 'terraform {\n  required_providers {\n    nixbuild = { source = "my-modular-workspace/nixbuild" }\n  }\n}\n'
    printf 'provider "nixbuild" {\n  ssh { private_key_file = "%s" }\n}\n' "$key"
    printf 'resource "nixbuild_cache_push" "big" {\n  host = "%s"\n  source = "%s"\n  installables = ["top"]\n  build_args = ["--max-jobs", "4"]\n  store {\n    uri = "%s"\n  }\n}\n' \
      "$host" "$work/big/flake" "$cache"
    printf 'output "closure" {\n  value = length(nixbuild_cache_push.big.closure_paths)\n}\n'
  } >"$work/big/tf/main.tf"
  tfbig() { (cd "$work/big/tf" && "$terraform" "$@" -no-color >"$work/last.log" 2>&1) || { echo "terraform $* failed:" >&2; cat "$work/last.log" >&2; exit 1; }; }
  tfbig init
  start=$(date +%s%N)
  tfbig apply -auto-approve
  big_apply_ms=$((($(date +%s%N) - start) / 1000000))
  big_paths=$(cd "$work/big/tf" && "$terraform" output -raw closure)
  offset=$(log_size)
  big_plan_ms=$(median_ms tfbig plan -detailed-exitcode)
  big_requests=$(tail -c +"$((offset + 1))" "$access_log" | grep -c '"HEAD /[0-9a-z]*\.narinfo' || true)
  # The provider's own refresh time, from its log line (median over the runs).
  refresh_ms=$(cd "$work/big/tf" && for _ in $(seq "$runs"); do
    TF_LOG=info TF_LOG_PATH="$work/big/tf.log" "$terraform" plan -no-color >/dev/null 2>&1
    python3 -c 'import re,sys; m=re.findall(r"refresh: checked \d+ closure paths at \d+ destinations in (\d+) ms", open(sys.argv[1]).read()); print(m[-1] if m else -1)' "$work/big/tf.log"
    rm -f "$work/big/tf.log"
  done | sort -n | sed -n "$(((runs + 1) / 2))p")
  tfbig destroy -auto-approve
fi
ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }
echo "provider build:                                    $provider_dir"
echo "runs per measurement:                              $runs (median; the cached push, remote-exec, plain ssh and both floors interleaved)"
echo "closure:                                           $closure_paths paths, $closure_nar NAR bytes"
echo "first push (terraform apply, builds + uploads):    ${first_ms} ms, pushed_paths=$pushed, ${first_bytes} NAR bytes uploaded"
echo "R2 fully cached push (terraform apply -replace):   ${cached_ms} ms, ${cached_bytes} NAR bytes uploaded in $runs runs"
echo "   same nix build && nix copy as remote-exec:      ${re_ms} ms, ${re_bytes} NAR bytes uploaded in $runs runs"
echo "   same over plain ssh (one command):              ${ssh_ms} ms, ${ssh_bytes} NAR bytes uploaded in $runs runs"
echo "   ratio nixbuild / remote-exec (goal <= 1.0):     $(ratio "$cached_ms" "$re_ms")"
echo "   ratio nixbuild / plain ssh:                     $(ratio "$cached_ms" "$ssh_ms")"
echo "terraform plan of that push (refresh):             ${plan_ms} ms"
echo "plugin floor: apply -replace, render-only resource: ${floor_ours_ms} ms (terraform_data: ${floor_builtin_ms} ms)"
echo "   R2 less each side's floor (push / remote-exec):  $((cached_ms - floor_ours_ms)) / $((re_ms - floor_builtin_ms)) ms = $(ratio "$((cached_ms - floor_ours_ms))" "$((re_ms - floor_builtin_ms))")"
if [ -n "$before_dir" ]; then
  echo "   same push, before build ($before_dir):"
  echo "                                                   ${cached_before_ms} ms, ${cached_before_bytes} NAR bytes uploaded in $runs runs"
  echo "   ratio before build / remote-exec:               $(ratio "$cached_before_ms" "$re_ms")"
  echo "   ratio this build / before build:                $(ratio "$cached_ms" "$cached_before_ms")"
fi
if [ "$r2_only" != 1 ]; then
  echo "1,000-path closure: first apply (build + upload):  ${big_apply_ms} ms, closure_paths=$big_paths"
  echo "   terraform plan (refresh of all paths):          ${big_plan_ms} ms"
  echo "   provider refresh alone (goal <= 1500 ms):       ${refresh_ms} ms, $((big_requests / runs)) narinfo HEAD requests per refresh"
fi
goal R2 "fully cached push, terraform apply -replace" "$cached_ms" ms "remote-exec nix build && nix copy" "$re_ms" 1.0
goal_max R2-bytes "NAR bytes the cached pushes uploaded" "$cached_bytes" bytes 0
if [ "$r2_only" != 1 ]; then
  goal_max refresh-1000 "refresh of a 1,000-path closure (provider's own time)" "$refresh_ms" ms 1500
fi
