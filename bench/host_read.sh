#!/usr/bin/env bash
# Benchmark: one `nixbuild_host` read through Terraform (`terraform plan` of a
# config with one data source) next to a plain `ssh host nix --version`, and
# next to a plan of a config with no data source (Terraform's own overhead).
# Prints medians over RUNS runs and their ratios. Asserts nothing.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
runs=${RUNS:-7}
terraform=${TERRAFORM:-$world/bin/terraform-1.15.5}
json="$world/world.json"
[ -f "$json" ] || { echo "no test world: run 'make world'" >&2; exit 1; }
field() { python3 -c 'import json,sys; w=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"w": w}))' "$json" "$1"; }
host=$(field 'w["hosts"]["h1"]["address"]')
key=$(field 'w["keys"]["ed25519"]')

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/read" "$work/empty"
cat >"$work/terraform.rc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/my-modular-workspace/nixbuild" = "$repo/target/release"
  }
  direct {}
}
RC
provider="terraform {
  required_providers {
    nixbuild = { source = \"my-modular-workspace/nixbuild\" }
  }
}
provider \"nixbuild\" {
  ssh { private_key_file = \"$key\" }
}"
printf '%s\ndata "nixbuild_host" "h" { host = "%s" }\n' "$provider" "$host" >"$work/read/main.tf"
printf '%s\n' "$provider" >"$work/empty/main.tf"
export TF_CLI_CONFIG_FILE="$work/terraform.rc" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1

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

ssh_ms=$(median_ms ssh -i "$key" -o BatchMode=yes -o UserKnownHostsFile="$world/known_hosts" \
  -o StrictHostKeyChecking=yes "root@$host" nix --version)
read_ms=$(median_ms sh -c "cd '$work/read' && '$terraform' plan -no-color")
empty_ms=$(median_ms sh -c "cd '$work/empty' && '$terraform' plan -no-color")

ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }
echo "runs per measurement:                 $runs (median)"
echo "plain ssh host nix --version:         ${ssh_ms} ms"
echo "terraform plan, no data source:       ${empty_ms} ms"
echo "terraform plan, one nixbuild_host:    ${read_ms} ms"
echo "ratio plan-with-read / plain ssh:     $(ratio "$read_ms" "$ssh_ms")"
echo "provider's share (read - empty plan): $((read_ms - empty_ms)) ms, $(ratio "$((read_ms - empty_ms))" "$ssh_ms") x plain ssh"
