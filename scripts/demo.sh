#!/usr/bin/env bash
# Runs examples/environments/local against the loopback test world: builds the
# provider, points Terraform at it through dev_overrides, applies, prints the
# outputs, checks that a second plan is empty, then destroys (KEEP=1 keeps it).
# Expects `make world` to have run (the Makefile's `demo` target does that).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
terraform=${TERRAFORM:-$world/bin/terraform-1.15.5}
[ -f "$world/world.json" ] || { echo "no test world at $world: run 'make world'" >&2; exit 1; }

echo "==> building the provider (release)"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$repo"/examples/environments/local/*.tf "$work/"
cat >"$work/terraform.rc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/my-modular-workspace/nixbuild" = "$repo/target/release"
  }
  direct {}
}
RC
hosts=$(python3 -c 'import json,sys; w=json.load(open(sys.argv[1])); print(json.dumps([w["hosts"][n]["address"] for n in ("h1","h2")]))' "$world/world.json")
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["keys"]["ed25519"])' "$world/world.json")
cat >"$work/terraform.tfvars.json" <<VARS
{"hosts": $hosts, "private_key_file": "$key"}
VARS

export TF_CLI_CONFIG_FILE="$work/terraform.rc" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
cd "$work"
echo "==> terraform apply"
"$terraform" apply -auto-approve -no-color >apply.log || { cat apply.log; exit 1; }
echo "==> outputs"
"$terraform" output -no-color
echo "==> terraform plan (must be empty)"
"$terraform" plan -detailed-exitcode -no-color >plan.log || { cat plan.log; echo "plan is not empty" >&2; exit 1; }
echo "no changes"
if [ "${KEEP:-0}" = 1 ]; then
  echo "KEEP=1: leaving state in $work"
  trap - EXIT
else
  echo "==> terraform destroy"
  "$terraform" destroy -auto-approve -no-color >destroy.log || { cat destroy.log; exit 1; }
  echo "destroyed"
fi
