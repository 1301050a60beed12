#!/usr/bin/env bash
# Benchmark of `nixbuild_builder` through Terraform, on namespace hosts with a
# preinstalled multi-user Nix (`install = "none"`, supervised nix-daemon):
#   (a) bootstrap: `terraform apply` of 1 builder vs 5 builders (Terraform runs
#       them in parallel), each followed by an untimed `terraform destroy`
#       (`on_destroy = "clean"`); median over RUNS of each, and 5-host/1-host;
#   (b) a no-op `terraform plan` (after an apply, so nothing changes) over
#       every listed host (20 by default), next to the same number of parallel
#       plain `ssh root@host 'nix --version'`; and the same plan without
#       TCP_NODELAY on the provider's gRPC listener (NIXBUILD_GRPC_NODELAY=off,
#       "before"); median over RUNS of each, and plan/ssh.
# Prints numbers and ratios; asserts nothing. Hosts: h1..h3 plus the
# benchmark-only hosts b1..b7, which this script starts itself (up.sh with
# NIXBUILD_BENCH_HOSTS, in NIXBUILD_BENCH_ONLY mode: nothing else of the world
# is touched). BENCH_HOSTS="b1 ... b20" (at least 5 names) avoids h1..h3,
# which the acceptance tests use: do not run the default while tests run.
# Everything is destroyed with on_destroy = "clean" at the end. Run as root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
runs=${RUNS:-5}
terraform=${TERRAFORM:-$world/bin/terraform-1.15.5}
json="$world/world.json"
read -r -a hosts <<<"${BENCH_HOSTS:-$(echo b{1..20})}"
[ -f "$json" ] || { echo "no test world: run 'make world'" >&2; exit 1; }
[ ${#hosts[@]} -ge 5 ] || { echo "BENCH_HOSTS needs at least 5 hosts" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tf_dir="$work/tf"
mkdir -p "$tf_dir"

# Start the bench hosts b1..bN that the host list names.
nbench=0
for h in "${hosts[@]}"; do
  if [[ $h =~ ^b([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -gt "$nbench" ]; then nbench=${BASH_REMATCH[1]}; fi
done
if [ "$nbench" -gt 0 ]; then
  if ! NIXBUILD_BENCH_ONLY=1 NIXBUILD_BENCH_HOSTS=$nbench bash "$repo/scripts/testworld/up.sh" >"$work/up.log" 2>&1; then
    tail -n 20 "$work/up.log" >&2
    echo "starting the bench hosts b1..b$nbench failed" >&2
    exit 1
  fi
fi

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"

# The hosts' addresses, host keys and daemon pid files, read once (a later
# up.sh without NIXBUILD_BENCH_HOSTS drops the bench hosts from world.json
# and known_hosts; the hosts keep running, so copies are enough).
python3 - "$json" "$work" "${hosts[@]}" <<'EOF'
import json, sys
world, work, names = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3:]
all_hosts = {**world["hosts"], **world.get("bench_hosts", {})}
missing = [n for n in names if n not in all_hosts or not all_hosts[n]["nix"]]
if missing:
    sys.exit(f"not namespace hosts with Nix in world.json: {' '.join(missing)}")
def hcl(s):
    return json.dumps(s).replace("${", "$${").replace("%{", "%%{")
with open(f"{work}/known_hosts", "w") as kh, open(f"{work}/addresses", "w") as addrs, \
        open(f"{work}/tf/hosts.tf", "w") as tf:
    tf.write("locals {\n  hosts = [\n")
    for n in names:
        h = all_hosts[n]
        kh.write(f"{h['address']} {h['host_key']}\n")
        addrs.write(h["address"] + "\n")
        restart = f'kill "$(cat {h["nix_daemon_pid_file"]})"'
        tf.write(f"    {{ address = {hcl(h['address'])}, host_key = {hcl(h['host_key'])}, "
                 f"restart = {hcl(restart)} }}, # {n}\n")
    tf.write("  ]\n}\n")
EOF
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["keys"]["ed25519"])' "$json")
mapfile -t addrs <"$work/addresses"

cat >"$work/terraform.rc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/my-modular-workspace/nixbuild" = "$repo/target/release"
  }
  direct {}
}
RC
cat >"$tf_dir/main.tf" <<TF
terraform {
  required_providers {
    nixbuild = { source = "my-modular-workspace/nixbuild" }
  }
}
provider "nixbuild" {
  ssh {
    private_key_file = "$key"
    connect_timeout  = "20s"
  }
}
variable "n" {
  type = number
}
resource "nixbuild_builder" "b" {
  count      = var.n
  host       = local.hosts[count.index].address
  on_destroy = "clean"
  ssh {
    host_key = local.hosts[count.index].host_key
  }
  nix {
    install                = "none"
    daemon_restart_command = local.hosts[count.index].restart
  }
  build_user {
    authorized_keys = [$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read().strip()))' "$key.pub")]
  }
}
TF
export TF_CLI_CONFIG_FILE="$work/terraform.rc" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
unset TF_LOG TF_LOG_PROVIDER SSH_AUTH_SOCK CACHIX_AUTH_TOKEN CACHIX_SIGNING_KEY

# tf ARGS...: terraform in the config directory; output in $work/last.log.
tf() { (cd "$tf_dir" && "$terraform" "$@" -no-color -input=false) >"$work/last.log" 2>&1; }
fail() { echo "failed: $*" >&2; tail -n 30 "$work/last.log" >&2; exit 1; }
cleanup() {
  # Whatever is still in the state: destroyed with on_destroy = "clean".
  if grep -qs '"nixbuild_builder"' "$tf_dir/terraform.tfstate" && ! tf destroy -auto-approve -var n=0; then
    echo "cleanup destroy failed (state kept in $work):" >&2
    tail -n 30 "$work/last.log" >&2
    return
  fi
  rm -rf "$work"
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }

# (a) bootstrap N hosts: timed apply, untimed destroy; 1 and 5 interleaved.
boot1=() boot5=()
for _ in $(seq "$runs"); do
  for n in 1 5; do
    start=$(now_ms)
    tf apply -auto-approve -var "n=$n" || fail "apply of $n builders"
    ms=$(($(now_ms) - start))
    tf destroy -auto-approve -var "n=$n" || fail "destroy of $n builders"
    if [ "$n" = 1 ]; then boot1+=("$ms"); else boot5+=("$ms"); fi
  done
done
b1=$(median "${boot1[@]}")
b5=$(median "${boot5[@]}")

# (b) no-op plan over every host's builder vs as many parallel plain ssh.
nplan=${#hosts[@]}
tf apply -auto-approve -var "n=$nplan" || fail "apply of $nplan builders"
plans=() plans_before=() sshs=() dirty=0
# timed_plan [VAR=VALUE...]: one no-op plan with those variables exported;
# prints its time in ms; a non-empty plan is counted in $work/dirty.
timed_plan() {
  local start rc=0
  start=$(now_ms)
  (
    [ $# = 0 ] || export "${@?}"
    tf plan -detailed-exitcode -var "n=$nplan"
  ) || rc=$?
  case "$rc" in 0) ;; 2) echo dirty >>"$work/dirty" ;; *) fail "plan over $nplan builders" ;; esac
  echo $(($(now_ms) - start))
}
for _ in $(seq "$runs"); do
  plans+=("$(timed_plan)")
  plans_before+=("$(timed_plan NIXBUILD_GRPC_NODELAY=off)")
  start=$(now_ms)
  pids=()
  for a in "${addrs[@]:0:nplan}"; do
    ssh -F /dev/null -i "$key" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
      -o UserKnownHostsFile="$work/known_hosts" "root@$a" 'nix --version' >/dev/null 2>"$work/ssh-$a.err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { cat "$work"/ssh-*.err >&2; echo "plain ssh failed" >&2; exit 1; }; done
  sshs+=($(($(now_ms) - start)))
done
tf destroy -auto-approve -var "n=$nplan" || fail "destroy of $nplan builders"
pl=$(median "${plans[@]}")
plb=$(median "${plans_before[@]}")
ss=$(median "${sshs[@]}")
dirty=0
[ ! -f "$work/dirty" ] || dirty=$(wc -l <"$work/dirty")

echo "hosts:                                      ${hosts[*]}"
echo "runs per measurement:                       $runs (median)"
echo "bootstrap apply, 1 builder:                 ${b1} ms   (runs: ${boot1[*]})"
echo "bootstrap apply, 5 builders in parallel:    ${b5} ms   (runs: ${boot5[*]})"
echo "ratio 5-host / 1-host bootstrap:            $(ratio "$b5" "$b1")"
echo "no-op plan, $nplan builders:                    ${pl} ms   (runs: ${plans[*]})"
echo "$nplan parallel plain ssh 'nix --version':      ${ss} ms   (runs: ${sshs[*]})"
echo "ratio no-op plan / parallel plain ssh:      $(ratio "$pl" "$ss")"
echo "no-op plan without gRPC TCP_NODELAY (before): ${plb} ms   (runs: ${plans_before[*]})"
echo "ratio no-op plan after / before:            $(ratio "$pl" "$plb")"
[ "$dirty" = 0 ] || echo "note: $dirty of $((2 * runs)) plans were not empty (exit code 2)"
