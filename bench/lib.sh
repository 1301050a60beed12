#!/usr/bin/env bash
# Shared by the bench scripts (sourced): timing, medians, ratios and the
# `goal` lines that `bench/all.sh` collects into its summary. A goal line is
#   goal ID | WHAT | ours … | vs COMPARISON … = RATIO× (target ≤ LIMIT×: met|NOT met)
# so every script reports its figures the same way.
# shellcheck disable=SC2154 # work, world, json, terraform, repo: the caller's

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# cpu_busy_ms: CPU time the whole machine has spent busy since boot (all
# cores; /proc/stat minus idle and iowait), in ms. The difference around a
# run shows how much of its wall time the cores were working: a run that
# keeps both cores busy cannot get faster by waiting less.
cpu_busy_ms() {
  awk '/^cpu / { busy = 0; for (i = 2; i <= NF; i++) if (i != 5 && i != 6) busy += $i; print busy * 10; exit }' /proc/stat
}

# median N...: the middle value (the upper one of an even count).
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }

# ratio A B: A/B with two decimals.
ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }

# goal ID WHAT OURS OURS_UNIT COMPARISON THEIRS LIMIT: one ratio goal.
goal() {
  local id=$1 what=$2 ours=$3 unit=$4 cmp=$5 theirs=$6 limit=$7 r verdict
  r=$(ratio "$ours" "$theirs")
  verdict=$(python3 -c "print('met' if $r <= $limit else 'NOT met')")
  echo "goal $id | $what | ours $ours $unit | vs $cmp $theirs $unit = ${r}x (target <= ${limit}x: $verdict)"
}

# goal_max ID WHAT VALUE UNIT LIMIT: one absolute goal (VALUE ≤ LIMIT).
goal_max() {
  local id=$1 what=$2 value=$3 unit=$4 limit=$5 verdict
  verdict=$(python3 -c "print('met' if $value <= $limit else 'NOT met')")
  echo "goal $id | $what | ours $value $unit (target <= $limit $unit: $verdict)"
}

# dev_overrides_rc FILE DIR: a Terraform CLI config that takes the provider from DIR.
dev_overrides_rc() {
  cat >"$1" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/my-modular-workspace/nixbuild" = "$2"
  }
  direct {}
}
RC
}

# The bench functions below use $work (a scratch directory), $world, $json
# (world.json), $terraform and $repo from the calling script.

# bench_hosts_up N: start the benchmark-only hosts b1..bN (up.sh in
# NIXBUILD_BENCH_ONLY mode: nothing else of the world is touched) and write
# $work/hosts.tf (HCL `local.hosts`: address, host_key, daemon restart
# command), $work/known_hosts and $work/addresses; sets $key and $pubkey.
bench_hosts_up() {
  local nhosts=$1
  if ! NIXBUILD_BENCH_ONLY=1 NIXBUILD_BENCH_HOSTS=$nhosts bash "$repo/scripts/testworld/up.sh" >"$work/up.log" 2>&1; then
    tail -n 20 "$work/up.log" >&2
    echo "starting the bench hosts b1..b$nhosts failed" >&2
    exit 1
  fi
  python3 - "$json" "$work" "$nhosts" <<'EOF'
import json, sys
world, work, n = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3])
bench = world.get("bench_hosts", {})
names = [f"b{i}" for i in range(1, n + 1)]
missing = [b for b in names if b not in bench or not bench[b]["nix"]]
if missing:
    sys.exit(f"bench hosts missing from world.json: {' '.join(missing)}")
def hcl(s):
    return json.dumps(s).replace("${", "$${").replace("%{", "%%{")
with open(f"{work}/known_hosts", "w") as kh, open(f"{work}/addresses", "w") as addrs, \
        open(f"{work}/hosts.tf", "w") as tf:
    tf.write("locals {\n  hosts = [\n")
    for b in names:
        h = bench[b]
        kh.write(f"{h['address']} {h['host_key']}\n")
        addrs.write(h["address"] + "\n")
        # As tests/common's daemon_restart_command: a daemon already gone
        # is being restarted by the host's supervisor.
        restart = f'pid=$(cat {h["nix_daemon_pid_file"]}) && {{ kill "$pid" 2>/dev/null || true; }}'
        tf.write(f"    {{ address = {hcl(h['address'])}, host_key = {hcl(h['host_key'])}, "
                 f"restart = {hcl(restart)} }}, # {b}\n")
    tf.write("  ]\n}\n")
EOF
  key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["keys"]["ed25519"])' "$json")
  pubkey=$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read().strip()))' "$key.pub")
}

# builder_dir NAME FIRST N USERS: a config of N builders from host FIRST on,
# once per ssh user in USERS (an HCL list).
builder_dir() {
  local dir="$work/$1"
  mkdir -p "$dir"
  cp "$work/hosts.tf" "$dir/"
  cat >"$dir/main.tf" <<TF
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
variable "max_jobs" {
  type    = number
  default = null
}
locals {
  first = $2
  n     = $3
  users = $4
}
resource "nixbuild_builder" "b" {
  count      = local.n * length(local.users)
  host       = local.hosts[local.first + count.index % local.n].address
  on_destroy = "clean"
  ssh {
    user     = local.users[floor(count.index / local.n)]
    host_key = local.hosts[local.first + count.index % local.n].host_key
  }
  nix {
    install                = "none"
    max_jobs               = var.max_jobs
    daemon_restart_command = local.hosts[local.first + count.index % local.n].restart
  }
  build_user {
    authorized_keys = [$pubkey]
  }
}
TF
}

# tf DIR ARGS...: terraform in $work/DIR (CLI config from TF_CLI_CONFIG_FILE);
# output in $work/last.log.
tf() {
  local dir=$1
  shift
  (cd "$work/$dir" && "$terraform" "$@" -no-color -input=false) >"$work/last.log" 2>&1
}
fail() { echo "failed: $*" >&2; tail -n 30 "$work/last.log" >&2; exit 1; }
# timed RC_FILE DIR ARGS...: one terraform run with that CLI config, in ms.
timed() {
  local rc_file=$1 start
  shift
  start=$(now_ms)
  TF_CLI_CONFIG_FILE=$rc_file tf "$@" || return $?
  echo $(($(now_ms) - start))
}
# noop_plan RC_FILE DIR: a timed plan that must be empty.
noop_plan() {
  local ms rc=0
  ms=$(timed "$1" "$2" plan -detailed-exitcode) || rc=$?
  [ "$rc" = 0 ] || fail "no-op plan in $2 (exit $rc: not empty or failed)"
  echo "$ms"
}
# apply_expect RC_FILE DIR SUMMARY ARGS...: a timed apply whose summary
# ("Resources: 0 added, 20 changed, 0 destroyed") must be SUMMARY.
apply_expect() {
  local rc_file=$1 dir=$2 summary=$3 ms
  shift 3
  ms=$(timed "$rc_file" "$dir" apply -auto-approve "$@") || fail "apply in $dir"
  grep -qF "Resources: $summary." "$work/last.log" || fail "apply in $dir: expected '$summary'"
  echo "$ms"
}
