#!/usr/bin/env bash
# Benchmark (issue 27, item 5): `terraform plan` of a `nixbuild_cache_push`
# whose `source` changed by a comment only, with plan-time evaluation (the
# plan uploads the new tree and evaluates the installables on the builder,
# finds the out paths unchanged, plans no push) and without it
# (`evaluate_at_plan = false`: the plan connects nowhere and plans a push),
# for 1 and for 20 installables, next to what a user would otherwise run:
# `nix build --dry-run` of the same installables over plain ssh (the tree
# already on the builder, so less work than the plan does). Runs interleave
# (one of each per round) on the world's builder h2. Prints every run,
# medians and ratios. Asserts nothing.
#   RUNS=5 PROFILE=release bash bench/plan_eval.sh
# PROVIDER_DIR=<dir> takes the provider from there instead of building it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$repo/bench/lib.sh"
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
runs=${RUNS:-5}
profile=${PROFILE:-release}
provider_dir=${PROVIDER_DIR:-$repo/target/$profile}
terraform=${TERRAFORM:-$world/bin/terraform-1.15.5}
json="$world/world.json"
[ -f "$json" ] || { echo "no test world: run 'make world'" >&2; exit 1; }
field() { python3 -c 'import json,sys; w=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"w": w}))' "$json" "$1"; }
host=$(field 'w["hosts"]["h2"]["address"]')
host_key=$(field 'w["hosts"]["h2"]["host_key"]')
key=$(field 'w["keys"]["ed25519"]')
cache=$(field 'w["cache"]["url"]')

if [ -n "${PROVIDER_DIR:-}" ]; then
  : # a build given by the caller
elif [ "$profile" = release ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
else
  cargo build --quiet --manifest-path "$repo/Cargo.toml"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dev_overrides_rc "$work/terraform.rc" "$provider_dir"
export TF_CLI_CONFIG_FILE="$work/terraform.rc" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
salt="bench-plan-eval-$$-$(date +%s%N)"
ssh_cmd=(ssh -F /dev/null -i "$key" -o BatchMode=yes -o IdentitiesOnly=yes
  -o UserKnownHostsFile="$world/known_hosts" -o StrictHostKeyChecking=yes "root@$host")

# flake DIR: a flake of 20 independent derivations p0..p19 (no inputs).
flake() {
  mkdir -p "$1"
  cat >"$1/flake.nix" <<'NIX'
{
  outputs = { self }:
    let
      salt = builtins.readFile ./salt.txt;
      mk = i: derivation {
        name = "nbt-bench-p${toString i}";
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" "echo ${toString i} ${salt} > $out" ];
      };
    in {
      packages.x86_64-linux = builtins.listToAttrs
        (map (i: { name = "p${toString i}"; value = mk i; }) (builtins.genList (i: i) 20));
    };
}
NIX
  echo "$salt" >"$1/salt.txt"
}

# setup NAME N EVALUATE: a state NAME with one push of N installables, applied.
setup() {
  local name=$1 n=$2 evaluate=$3 list i
  list=$(for i in $(seq 0 $((n - 1))); do printf '"p%s", ' "$i"; done)
  mkdir -p "$work/$name"
  flake "$work/$name/flake"
  cat >"$work/$name/main.tf" <<TF
terraform {
  required_providers {
    nixbuild = { source = "my-modular-workspace/nixbuild" }
  }
}
provider "nixbuild" {
  ssh { private_key_file = "$key" }
}
resource "nixbuild_cache_push" "p" {
  host             = "$host"
  source           = "$work/$name/flake"
  installables     = [${list%, }]
  evaluate_at_plan = $evaluate
  ssh {
    host_key = "$host_key"
  }
  store {
    uri = "$cache"
  }
}
TF
  tf "$name" init
  tf "$name" apply -auto-approve
}

tf() {
  local dir=$1
  shift
  (cd "$work/$dir" && "$terraform" "$@" -no-color >"$work/last.log" 2>&1) || {
    echo "terraform $* in $dir failed:" >&2
    cat "$work/last.log" >&2
    exit 1
  }
}

# plan_ms NAME: a comment-only change of NAME's flake, then `terraform plan`.
plan_ms() {
  local start
  echo "# run $RANDOM$RANDOM" >>"$work/$1/flake/flake.nix"
  start=$(now_ms)
  tf "$1" plan
  echo $(($(now_ms) - start))
}

# dry_ms N: `nix build --dry-run` of N installables of the flake copied to
# the builder, over plain ssh.
dry_ms() {
  local n=$1 args=() i start
  for i in $(seq 0 $((n - 1))); do args+=("path:/tmp/$salt#p$i"); done
  start=$(now_ms)
  "${ssh_cmd[@]}" nix --extra-experimental-features "'nix-command flakes'" build --dry-run --json \
    --no-link --option substitute false "${args[@]}" >/dev/null 2>&1
  echo $(($(now_ms) - start))
}

for n in 1 20; do
  setup "eval$n" "$n" true
  setup "off$n" "$n" false
done
# The plain-ssh comparison evaluates the same flake, copied once.
"${ssh_cmd[@]}" "rm -rf /tmp/$salt && mkdir -p /tmp/$salt"
tar -C "$work/eval1/flake" -cf - flake.nix salt.txt | "${ssh_cmd[@]}" "tar -C /tmp/$salt -xf -"

echo "plan of a comment-only change ($runs runs each, interleaved; Terraform $("$terraform" version | head -n1 | cut -d' ' -f2))"
for n in 1 20; do
  evals=() offs=() drys=()
  for _ in $(seq "$runs"); do
    evals+=("$(plan_ms "eval$n")")
    offs+=("$(plan_ms "off$n")")
    drys+=("$(dry_ms "$n")")
  done
  echo "  $n installable(s): with evaluation ${evals[*]} ms; without ${offs[*]} ms; nix build --dry-run over ssh ${drys[*]} ms"
  e=$(median "${evals[@]}")
  o=$(median "${offs[@]}")
  d=$(median "${drys[@]}")
  echo "  $n installable(s) medians: with evaluation $e ms, without $o ms ($(ratio "$e" "$o")x), plain ssh dry-run $d ms (evaluation costs $((e - o)) ms over a plan without it: $(ratio "$((e - o))" "$d")x the dry-run alone)"
done
"${ssh_cmd[@]}" "rm -rf /tmp/$salt"
