#!/usr/bin/env bash
# The README's demo: runs examples/environments/local end to end against the
# loopback test world (`make world`; `make demo` starts it first).
#
#  1. builds the provider (release) and points Terraform at it (dev_overrides);
#  2. makes a throwaway client SSH key and a binary-cache signing key, and fills
#     terraform.tfvars.json from world.json (hosts h1 and h2, the nginx cache);
#  3. terraform apply: 2 builders bootstrapped, a machines file written, the
#     example flake built on a builder and pushed, signed, to the cache;
#  4. prints the outputs and checks that a second plan is empty;
#  5. a distributed build on this machine through the written machines file
#     (no local build slots), and on which builder each derivation ran;
#  6. terraform destroy, unless KEEP=1.
#
# State and keys live in $DEMO_DIR (default /var/tmp/nixbuild-demo): a run that
# fails, or one with KEEP=1, is resumed (or destroyed) by the next run.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
demo=${DEMO_DIR:-/var/tmp/nixbuild-demo}
terraform=${TERRAFORM:-$world/bin/terraform-1.15.5}
env_dir=$demo/examples/environments/local
keys=$demo/keys

# One line per step on the terminal (what, how long); everything else
# (Terraform, nix-build, key generation) goes to $demo_log, whose tail is shown when
# a step fails.
demo_log=${DEMO_LOG:-$demo.log}
mkdir -p "$(dirname "$demo_log")"
: >"$demo_log"
exec 3>&1 >>"$demo_log" 2>&1
step=0 title="" started=$SECONDS home="" results=""
finish_step() {
  [ -n "$title" ] && printf '%2d. %-52s %4ds\n%s' "$step" "$title" $((SECONDS - started)) "$results" >&3
  title="" results=""
}
section() {
  finish_step
  step=$((step + 1)) title=$* started=$SECONDS
  printf '\n==== %d. %s ====\n' "$step" "$*"
}
# A result worth seeing: in the log, and on the terminal under its step.
say() {
  echo "$*"
  results+=$(printf '      %s' "$*")$'\n'
}
on_exit() {
  local rc=$?
  [ -n "$home" ] && rm -rf "$home"
  if [ "$rc" != 0 ]; then
    {
      printf '%2d. %-52s FAILED\n' "$step" "$title"
      tail -n 40 "$demo_log"
      echo "demo: failed at step $step; full log: $demo_log"
    } >&3
  fi
}
trap on_exit EXIT
die() {
  echo "demo: $*" >&2
  exit 1
}
# Run Terraform in the environment; on failure show its log and stop.
tf() {
  local log=$demo/last-terraform.log
  if ! "$terraform" "$@" >"$log" 2>&1; then
    cat "$log" >&2
    die "terraform $* failed (log: $log)"
  fi
}

[ -f "$world/world.json" ] || die "no test world at $world: run 'make world' (or 'make demo')"
[ -x "$terraform" ] || die "no Terraform at $terraform: run 'make world'"
for tool in cargo python3 ssh-keygen nix-store nix-build; do
  command -v "$tool" >/dev/null || die "$tool is not installed: run 'make world'"
done

section "Building the provider (release)"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
provider_dir=$repo/target/release
echo "$provider_dir/terraform-provider-nixbuild"

section "Preparing $demo"
mkdir -p "$demo" "$keys"
# A fresh copy of the examples (the environment uses ../../modules/fleet);
# the state and keys of an earlier run stay.
find "$demo" -path "$demo/examples/*" -name '*.tf' -delete 2>/dev/null || true
mkdir -p "$demo/examples"
cp -a "$repo/examples/." "$demo/examples/"
cat >"$demo/terraform.rc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/my-modular-workspace/nixbuild" = "$provider_dir"
  }
  direct {}
}
RC
export TF_CLI_CONFIG_FILE=$demo/terraform.rc TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
unset TF_LOG TF_DATA_DIR

if [ ! -f "$keys/client_ed25519" ]; then
  ssh-keygen -q -t ed25519 -N '' -C nixbuild-demo-client -f "$keys/client_ed25519"
  echo "generated the client key $keys/client_ed25519"
fi
if [ ! -f "$keys/cache.sec" ]; then
  nix-store --generate-binary-cache-key nixbuild-demo-1 "$keys/cache.sec" "$keys/cache.pub"
  chmod 600 "$keys/cache.sec"
  echo "generated the cache signing key $keys/cache.sec ($(cat "$keys/cache.pub"))"
fi

python3 - "$world/world.json" "$keys" "$demo" "$env_dir/terraform.tfvars.json" <<'PY'
import json, sys
world_file, keys, demo, out = sys.argv[1:]
world = json.load(open(world_file))

def read(path):
    return open(path).read().strip()

builders = {}
for name in ("h1", "h2"):
    host = world["hosts"][name]
    builders[name] = {
        "address": host["address"],
        "host_key": host["host_key"],
        # The test hosts have no systemd: their nix-daemon runs under a
        # supervisor that restarts it when killed.
        "daemon_restart_command": 'pid=$(cat %s) && { kill "$pid" 2>/dev/null || true; }' % host["nix_daemon_pid_file"],
    }
tfvars = {
    "builders": builders,
    "admin_private_key_file": world["keys"]["ed25519"],
    "client_public_key": read(keys + "/client_ed25519.pub"),
    "client_private_key_file": keys + "/client_ed25519",
    "machines_file_path": demo + "/machines",
    "cache_url": world["cache"]["url"],
    "cache_secret_key": read(keys + "/cache.sec"),
    "cache_public_key": read(keys + "/cache.pub"),
}
with open(out, "w") as f:
    json.dump(tfvars, f, indent=2)
PY
chmod 600 "$env_dir/terraform.tfvars.json"
echo "wrote $env_dir/terraform.tfvars.json (builders h1, h2; cache $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cache"]["url"])' "$world/world.json"))"
cd "$env_dir"
tf get -no-color

section "terraform apply"
tf apply -auto-approve -no-color
grep -E '(Creation|Modifications|Destruction) complete|Apply complete' "$demo/last-terraform.log" | sed 's/^/  /'

section "Outputs"
"$terraform" output -no-color

section "Second plan (must be empty)"
set +e
"$terraform" plan -detailed-exitcode -no-color >"$demo/last-terraform.log" 2>&1
code=$?
set -e
case $code in
  0) say "no changes: the infrastructure matches the configuration" ;;
  2) cat "$demo/last-terraform.log"; die "the second plan is not empty" ;;
  *) cat "$demo/last-terraform.log"; die "terraform plan failed" ;;
esac

section "Distributed build through the machines file"
machines=$demo/machines
echo "machines file $machines:"
sed 's/^/  /' "$machines"
# Four fresh derivations (a nonce makes them new on every run): base, two that
# use it and run in parallel, and one that uses both. Builds see no PATH, so
# they keep busy with a shell loop; with one job per builder in the machines
# file, the two parallel ones go to different builders.
nonce=$(date +%s%N)
cat >"$demo/build.nix" <<NIX
let
  mk = name: deps: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "i=0; while [ \$i -lt 400000 ]; do i=\$((i + 1)); done; echo '$nonce \${name} uses \${toString deps}' > \$out" ];
  };
  base = mk "demo-base" [ ];
  left = mk "demo-left" [ base ];
  right = mk "demo-right" [ base ];
  top = mk "demo-top" [ left right ];
in [ base left right top ]
NIX
home=$(mktemp -d)
echo "nix-build --max-jobs 0 --builders @$machines (HOME empty, no substituters):"
build() {
  HOME=$home env -u NIX_SSHOPTS -u NIX_REMOTE nix-build "$demo/build.nix" --no-out-link \
    --max-jobs 0 --builders "@$machines" --option substituters '' \
    >"$demo/build.out" 2>"$demo/build.log"
}
if ! build; then
  # The test hosts share one kernel; see tests/machines_file.rs. Once more.
  if grep -qE 'signal 9 \(Killed\)|cannot kill processes for uid' "$demo/build.log"; then
    echo "a build was killed by another host's Nix (shared test kernel); retrying once"
    build || { cat "$demo/build.log"; die "the distributed build failed"; }
  else
    cat "$demo/build.log"
    die "the distributed build failed"
  fi
fi
[ ! -e "$home/.ssh" ] || die "ssh wrote into HOME: the host keys did not come from the machines file"
# "building '/nix/store/…-demo-left.drv' on 'ssh-ng://nixbuild@127.0.0.12'"
sed -n "s|^building '/nix/store/[a-z0-9]*-\(.*\)\.drv' on '\(.*\)'.*|  \1 -> \2|p" "$demo/build.log"
remote=$(grep -c "^building '.*' on '" "$demo/build.log" || true)
[ "$remote" -eq 4 ] || { cat "$demo/build.log"; die "expected 4 remote builds, saw $remote"; }
used=$(sed -n "s|^building '.*' on '\(.*\)'.*|\1|p" "$demo/build.log" | sort -u | wc -l)
say "4 derivations built remotely, on $used builder(s)"
echo "results (copied back to this machine):"
while read -r path; do
  printf '  %s: %s\n' "$path" "$(cat "$path")"
done <"$demo/build.out"

if [ "${KEEP:-0}" = 1 ]; then
  section "Keeping it (KEEP=1)"
  finish_step
  cat >&3 <<EOF
State, keys and machines file: $demo
Destroy later with:
  cd $env_dir && TF_CLI_CONFIG_FILE=$demo/terraform.rc $terraform destroy
or run the demo again without KEEP=1.
EOF
else
  section "terraform destroy"
  tf destroy -auto-approve -no-color
  grep -E 'Destruction complete|Destroy complete' "$demo/last-terraform.log" | sed 's/^/  /'
  [ ! -e "$machines" ] || die "destroy left $machines"
  cd /
  rm -rf "$demo"
fi
finish_step
say_done="demo: OK (details: $demo_log)"
echo "$say_done"
echo "$say_done" >&3
