#!/usr/bin/env bash
# Where the time of a builder Read goes (the tables in docs/performance.md):
#   1. `TF_LOG=trace` of a no-op `terraform plan` over 1 builder and over 20
#      builders, broken down per gRPC call and per SSH round trip by
#      bench/breakdown.py (Terraform's trace lines plus the provider's own
#      debug timings);
#   2. the same for `terraform apply` changing `nix.max_jobs` on 1 builder
#      and on 20 (R5):
#      plan and apply run in separate provider processes, so the apply
#      connects to the host a second time (what a per-process pool costs);
#   3. CPU by process name during a bootstrap of 10 fresh hosts and during a
#      max_jobs change on 20 builders (perf);
#   4. the remote side of the check, timed on the host itself (`date +%s%N`
#      around each command, over plain ssh): the full check, the check with a
#      matching Nix fingerprint, `nix --version`, `nix show-config`, `true`.
# PROVIDER_DIR=DIR breaks down the build in DIR instead of this tree's.
# Prints Markdown tables; asserts nothing. Uses bench hosts b1..b20 and b51
# (started with up.sh in NIXBUILD_BENCH_ONLY mode), destroys what it applied.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$repo/bench/lib.sh"
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
runs=${RUNS:-5}
terraform=${TERRAFORM:-$world/bin/terraform-1.15.5}
json="$world/world.json"
[ -f "$json" ] || { echo "no test world: run 'make world'" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bench_hosts_up 60
# PROVIDER_DIR: a directory with another build (e.g. an older one) to break down.
if [ -z "${PROVIDER_DIR:-}" ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
fi
dev_overrides_rc "$work/after.rc" "${PROVIDER_DIR:-$repo/target/release}"
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE="$work/after.rc"
unset TF_LOG TF_LOG_PROVIDER SSH_AUTH_SOCK CACHIX_AUTH_TOKEN CACHIX_SIGNING_KEY
builder_dir d1 50 1 '["root"]'
builder_dir d20 0 20 '["root"]'
cleanup() {
  local d
  for d in d1 d20 boot1 boot10 cpu10; do
    if grep -qs '"nixbuild_builder"' "$work/$d/terraform.tfstate"; then
      tf "$d" destroy -auto-approve || echo "destroy in $d failed" >&2
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
tf d1 apply -auto-approve || fail "apply of 1 builder"
tf d20 apply -auto-approve || fail "apply of 20 builders"
# A plan first, untraced (warm caches on both sides).
tf d1 plan || fail "plan of 1 builder"

traced() { # NAME DIR ARGS...: terraform with TF_LOG=trace into $work/NAME.log
  local name=$1
  shift
  TF_LOG=trace TF_LOG_PATH="$work/$name.log" tf "$@" || fail "traced $name"
}
traced plan1 d1 plan -detailed-exitcode
traced plan20 d20 plan -detailed-exitcode
traced apply1 d1 apply -auto-approve -var max_jobs=2
traced apply20 d20 apply -auto-approve -var max_jobs=2
python3 "$repo/bench/breakdown.py" "No-op \`terraform plan\`, 1 builder (ms)" "$work/plan1.log"
python3 "$repo/bench/breakdown.py" "No-op \`terraform plan\`, 20 builders (ms; medians per resource)" "$work/plan20.log"
python3 "$repo/bench/breakdown.py" "\`terraform apply\` of a max_jobs change, 1 builder: plan and apply walks, separate provider processes (ms)" "$work/apply1.log"
python3 "$repo/bench/breakdown.py" "\`terraform apply\` of a max_jobs change, 20 builders (R5; ms, medians per resource)" "$work/apply20.log"
# Bootstrap of fresh hosts (b51..b60, as R3 of bench/builder.sh): 1, then 10.
for n in 1 10; do
  builder_dir "boot$n" 50 "$n" '["root"]'
  traced "boot$n" "boot$n" apply -auto-approve
  tf "boot$n" destroy -auto-approve || fail "destroy of boot$n"
  python3 "$repo/bench/breakdown.py" "Bootstrap apply of $n fresh host(s), \`install = \"none\"\` (ms)" "$work/boot$n.log"
done

# CPU by process name during an untraced run: perf's cpu-clock samples over
# the whole machine at 1 kHz per core (one sample is a millisecond of CPU;
# short-lived processes count too, unlike process accounting). Shows what
# keeps both cores busy: a bootstrap of 10 fresh hosts (R3 is CPU-bound)
# and a max_jobs change on 20 builders (R5).
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
cpu_by_process() { # TITLE DIR ARGS...: terraform ARGS in DIR under perf
  local title=$1 dir=$2 perf_pid
  shift 2
  perf record -q -e cpu-clock -F 1000 -a -o "$work/$dir.perf" 2>/dev/null &
  perf_pid=$!
  sleep 0.5
  tf "$dir" "$@" || fail "$title"
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  echo
  echo "CPU by process name, $title (perf cpu-clock samples, ms; idle left out)"
  echo
  perf report -i "$work/$dir.perf" --sort comm --stdio -q -F sample,comm 2>/dev/null |
    python3 "$repo/bench/perf_by_comm.py"
}
builder_dir cpu10 50 10 '["root"]'
cpu_by_process "bootstrap apply of 10 fresh hosts" cpu10 apply -auto-approve
tf cpu10 destroy -auto-approve || fail "destroy of cpu10"
cpu_by_process "apply of a max_jobs change on 20 builders" d20 apply -auto-approve -var max_jobs=3

# The remote side: each command timed on the host, median of $runs.
address=$(sed -n 51p "$work/addresses")
remote_ms() { # COMMAND [STDIN_FILE]: median ms of COMMAND as timed on the host
  local times=()
  for _ in $(seq "$runs"); do
    times+=("$(ssh -F /dev/null -i "$key" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
      -o UserKnownHostsFile="$work/known_hosts" "root@$address" \
      "s=\$(date +%s%N); $1 >/dev/null 2>&1; e=\$(date +%s%N); echo \$(((e - s) / 1000000))" <"${2:-/dev/null}")")
  done
  median "${times[@]}"
}
cat "$repo/src/scripts/nix_fingerprint.sh" "$repo/src/scripts/probe.sh" "$repo/src/scripts/account.sh" \
  "$repo/src/scripts/builder_check.sh" >"$work/check.sh"
args="nixbuild /etc/nix/nixbuild.conf /etc/nix/nix.conf 'include /etc/nix/nixbuild.conf' nixbuild-cachix-watch-store.service no /etc/nixbuild/users /etc/nixbuild/cachix.env"
fingerprint=$(ssh -F /dev/null -i "$key" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
  -o UserKnownHostsFile="$work/known_hosts" "root@$address" "sh -s '' $args" <"$work/check.sh" | sed -n 's/^nix_fingerprint=//p')
q=$(python3 -c 'import shlex,sys; print(shlex.quote(sys.argv[1]))' "$fingerprint")
echo
echo "Remote side of one check, timed on the host (median ms of $runs)"
echo
echo "| command | ms |"
echo "|---|---|"
echo "| \`true\` | $(remote_ms true) |"
echo "| \`nix --version\` | $(remote_ms 'nix --version') |"
echo "| \`nix show-config\` | $(remote_ms 'nix show-config') |"
echo "| the check, no fingerprint known (runs nix twice) | $(remote_ms "sh -s '' $args" "$work/check.sh") |"
echo "| the check, fingerprint matches (no nix) | $(remote_ms "sh -s $q $args" "$work/check.sh") |"
