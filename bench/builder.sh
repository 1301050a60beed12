#!/usr/bin/env bash
# Benchmark of `nixbuild_builder` against the two ways people run one command
# per host without this provider, side by side in one run (issue goals R1,
# R3, R4, R5), on the benchmark-only namespace hosts b1..b60 (preinstalled
# multi-user Nix, `install = "none"`, supervised nix-daemon):
#   R1  no-op `terraform plan` over 20 and over 50 builders, next to
#       - plain OpenSSH, one `ssh root@host nix --version` per host, 10 at a
#         time (`xargs -P10`), and
#       - `terraform apply` of as many `terraform_data` whose `remote-exec`
#         provisioner runs `nix --version` (Terraform's own SSH; a changed
#         trigger replaces them every run);
#   R3  bootstrap apply of 10 fresh hosts vs of 1 host (b51..b60; each run is
#       followed by an untimed destroy with on_destroy = "clean");
#   R4  the provider's peak RSS (GNU time's maximum resident set size) during
#       a no-op plan over 100 builders: b1..b50 reached as root and again as
#       the sudo user `deploy` — 100 resources, 100 SSH connections, 50 hosts
#       (the world runs at most 60 hosts, and two resources on one host with
#       the same Nix settings converge to the same files);
#   R5  `terraform apply` changing `nix.max_jobs` on 20 builders (must be 20
#       in-place updates), next to R1's no-op plan over 20.
# Medians over RUNS runs (default 5), interleaved. With BEFORE_PROVIDER=FILE
# (an older build of the provider binary) every provider figure is measured
# with that binary too, in the same run, and printed as "before" (its plans
# and R5 run on copies of the states that it refreshed itself).
# Prints numbers and ratios (the `goal` lines of bench/lib.sh); asserts
# nothing. Starts the bench hosts itself (up.sh with NIXBUILD_BENCH_ONLY: the
# rest of the world is not touched); everything it applied is destroyed with
# on_destroy = "clean" at the end. Run as root, with no acceptance test
# running against the bench hosts.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$repo/bench/lib.sh"
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
runs=${RUNS:-5}
terraform=${TERRAFORM:-$world/bin/terraform-1.15.5}
before=${BEFORE_PROVIDER:-}
json="$world/world.json"
[ -f "$json" ] || { echo "no test world: run 'make world'" >&2; exit 1; }
[ -z "$before" ] || [ -x "$before" ] || { echo "BEFORE_PROVIDER=$before is not an executable" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bench_hosts_up 60
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"

# CLI configs: this build, the "before" build, and this build under GNU time.
dev_overrides_rc "$work/after.rc" "$repo/target/release"
if [ -n "$before" ]; then
  mkdir -p "$work/before-bin"
  cp "$before" "$work/before-bin/terraform-provider-nixbuild"
  dev_overrides_rc "$work/before.rc" "$work/before-bin"
fi
mkdir -p "$work/rss-bin"
cat >"$work/rss-bin/terraform-provider-nixbuild" <<SH
#!/bin/sh
exec /usr/bin/time -a -o "$work/rss.log" -f '%M' "$repo/target/release/terraform-provider-nixbuild" "\$@"
SH
chmod +x "$work/rss-bin/terraform-provider-nixbuild"
dev_overrides_rc "$work/rss.rc" "$work/rss-bin"

# remote_exec_dir NAME N: N terraform_data running `nix --version` over SSH.
remote_exec_dir() {
  local dir="$work/$1"
  mkdir -p "$dir"
  cp "$work/hosts.tf" "$dir/"
  cat >"$dir/main.tf" <<TF
variable "run" {
  type = string
}
resource "terraform_data" "r" {
  count            = $2
  triggers_replace = var.run
  connection {
    type        = "ssh"
    host        = local.hosts[count.index].address
    user        = "root"
    private_key = file("$key")
    host_key    = local.hosts[count.index].host_key
  }
  provisioner "remote-exec" {
    inline = ["nix --version"]
  }
}
TF
}

builder_dir d20 0 20 '["root"]'
builder_dir d50 0 50 '["root"]'
builder_dir d100 0 50 '["root", "deploy"]'
builder_dir d1 50 1 '["root"]'
builder_dir d10 50 10 '["root"]'
remote_exec_dir r20 20
remote_exec_dir r50 50

export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE="$work/after.rc"
unset TF_LOG TF_LOG_PROVIDER SSH_AUTH_SOCK CACHIX_AUTH_TOKEN CACHIX_SIGNING_KEY

cleanup() {
  local d ok=1
  # d100's builders are d50's again plus the same hosts as `deploy`: their
  # destroys would race each other on one host; d50 cleans those hosts.
  if grep -qs '"nixbuild_builder"' "$work/d100/terraform.tfstate"; then
    (cd "$work/d100" && "$terraform" state rm nixbuild_builder.b) >"$work/last.log" 2>&1 || ok=""
  fi
  for d in d50 d20 d10 d1; do
    if grep -qs '"nixbuild_builder"' "$work/$d/terraform.tfstate" && ! tf "$d" destroy -auto-approve; then
      echo "cleanup destroy in $d failed (state kept in $work):" >&2
      tail -n 30 "$work/last.log" >&2
      ok=""
    fi
  done
  [ -z "$ok" ] || rm -rf "$work"
}
trap cleanup EXIT

plain_ssh() { # N: one `nix --version` per host, 10 at a time
  local start
  start=$(now_ms)
  head -n "$1" "$work/addresses" | xargs -P10 -I{} ssh -F /dev/null -i "$key" -o BatchMode=yes \
    -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$work/known_hosts" \
    "root@{}" 'nix --version' >/dev/null 2>"$work/ssh.err" || { cat "$work/ssh.err" >&2; fail "plain ssh"; }
  echo $(($(now_ms) - start))
}

for d in r20 r50; do tf "$d" init || fail "init in $d"; done
tf d20 apply -auto-approve || fail "apply of 20 builders"
tf d50 apply -auto-approve || fail "apply of 50 builders"
tf d100 apply -auto-approve || fail "apply of 100 builders"
# d20, d50 and d100 converge the same hosts: save each state's view of them
# (the Nix fingerprint a Read compares) after the last apply, as a user's
# refresh would; otherwise the earlier states' Reads run `nix` every time.
for d in d20 d50 d100; do
  tf "$d" apply -refresh-only -auto-approve || fail "refresh of $d"
done
# The older build reads states of its own: copies of d20 and d50 refreshed by
# it (a state the newer build wrote holds Nix fingerprints in a format the
# older one may not know, and then every one of its Reads would start nix).
if [ -n "$before" ]; then
  for d in d20 d50; do
    rm -rf "$work/${d}b"
    cp -a "$work/$d" "$work/${d}b"
    TF_CLI_CONFIG_FILE="$work/before.rc" tf "${d}b" apply -refresh-only -auto-approve || fail "refresh of ${d}b (before)"
  done
fi
tf r20 apply -auto-approve -var run=0 || fail "apply of 20 remote-exec"
tf r50 apply -auto-approve -var run=0 || fail "apply of 50 remote-exec"

# add KEY MS: one measurement of a series (a failed one ends the bench; its
# `fail` message is already on stderr).
declare -A t
add() {
  [[ $2 =~ ^[0-9]+$ ]] || { echo "measurement $1 failed" >&2; exit 1; }
  t[$1]="${t[$1]:-} $2"
}
for run in $(seq "$runs"); do
  for n in 20 50; do
    add "ssh$n" "$(plain_ssh "$n")"
    add "rexec$n" "$(apply_expect "$work/after.rc" "r$n" "$n added, 0 changed, $n destroyed" -var "run=$run")"
    add "plan$n" "$(noop_plan "$work/after.rc" "d$n")"
    [ -z "$before" ] || add "plan${n}_before" "$(noop_plan "$work/before.rc" "d${n}b")"
  done
done

# R4: peak RSS of every provider process of a no-op plan (largest of the runs).
: >"$work/rss.log"
for _ in $(seq "$runs"); do
  noop_plan "$work/rss.rc" d100 >/dev/null
done
rss100=$(grep -E '^[0-9]+$' "$work/rss.log" | sort -n | tail -n 1)
: >"$work/rss.log"
noop_plan "$work/rss.rc" d50 >/dev/null
rss50=$(grep -E '^[0-9]+$' "$work/rss.log" | sort -n | tail -n 1)

# R5: change nix.max_jobs on 20 builders (alternating 2 and 3): 20 in-place updates.
max_jobs=2
for _ in $(seq "$runs"); do
  max_jobs=$((5 - max_jobs))
  add r5 "$(apply_expect "$work/after.rc" d20 "0 added, 20 changed, 0 destroyed" -var "max_jobs=$max_jobs")"
  if [ -n "$before" ]; then
    max_jobs=$((5 - max_jobs))
    add r5_before "$(apply_expect "$work/before.rc" d20b "0 added, 20 changed, 0 destroyed" -var "max_jobs=$max_jobs")"
  fi
done
tf d20 apply -auto-approve || fail "apply restoring max_jobs"

# R3: bootstrap 1 vs 10 fresh hosts, each apply followed by an untimed destroy.
boot() { # RC_FILE DIR N KEY
  local cpu_before
  cpu_before=$(cpu_busy_ms)
  add "$4" "$(apply_expect "$1" "$2" "$3 added, 0 changed, 0 destroyed")"
  add "$4_cpu" "$(($(cpu_busy_ms) - cpu_before))"
  TF_CLI_CONFIG_FILE=$1 tf "$2" destroy -auto-approve || fail "destroy in $2"
}
for _ in $(seq "$runs"); do
  boot "$work/after.rc" d1 1 boot1
  boot "$work/after.rc" d10 10 boot10
  if [ -n "$before" ]; then
    boot "$work/before.rc" d1 1 boot1_before
    boot "$work/before.rc" d10 10 boot10_before
  fi
done

# m KEY: the median of a series; runs KEY: its values.
# shellcheck disable=SC2086 # the series is a list of numbers
m() { median ${t[$1]}; }
runs_of() { echo "(runs:${t[$1]})"; }
echo "terraform:                  $terraform"
echo "runs per measurement:       $runs (median)"
for n in 20 50; do
  echo "$n hosts, plain OpenSSH -P10 'nix --version':   $(m "ssh$n") ms $(runs_of "ssh$n")"
  echo "$n hosts, remote-exec apply:                    $(m "rexec$n") ms $(runs_of "rexec$n")"
  echo "$n builders, no-op plan:                        $(m "plan$n") ms $(runs_of "plan$n")"
  [ -z "$before" ] || echo "$n builders, no-op plan (before):               $(m "plan${n}_before") ms $(runs_of "plan${n}_before")"
done
echo "bootstrap apply, 1 host:                        $(m boot1) ms $(runs_of boot1)"
echo "bootstrap apply, 10 hosts:                      $(m boot10) ms $(runs_of boot10)"
echo "  machine CPU busy (both cores), 1 host:        $(m boot1_cpu) ms $(runs_of boot1_cpu)"
echo "  machine CPU busy (both cores), 10 hosts:      $(m boot10_cpu) ms $(runs_of boot10_cpu)"
if [ -n "$before" ]; then
  echo "bootstrap apply, 1 host (before):               $(m boot1_before) ms $(runs_of boot1_before)"
  echo "bootstrap apply, 10 hosts (before):             $(m boot10_before) ms $(runs_of boot10_before)"
fi
echo "max_jobs change on 20 builders, apply:          $(m r5) ms $(runs_of r5)"
[ -z "$before" ] || echo "max_jobs change on 20 builders (before):        $(m r5_before) ms $(runs_of r5_before)"
echo "provider peak RSS, no-op plan, 50 builders:     $((rss50 / 1024)) MB ($rss50 kB)"
echo "provider peak RSS, no-op plan, 100 builders:    $((rss100 / 1024)) MB ($rss100 kB)"
for n in 20 50; do
  goal "R1-$n" "no-op plan, $n builders" "$(m "plan$n")" ms "plain OpenSSH -P10" "$(m "ssh$n")" 0.6
  goal "R1-$n" "no-op plan, $n builders" "$(m "plan$n")" ms "remote-exec apply" "$(m "rexec$n")" 1.0
  if [ -n "$before" ]; then
    goal "R1-$n-before" "no-op plan, $n builders, before" "$(m "plan${n}_before")" ms "plain OpenSSH -P10" "$(m "ssh$n")" 0.6
    goal "R1-$n-before" "no-op plan, $n builders, before" "$(m "plan${n}_before")" ms "remote-exec apply" "$(m "rexec$n")" 1.0
  fi
done
goal R3 "bootstrap apply, 10 hosts" "$(m boot10)" ms "1 host" "$(m boot1)" 1.5
[ -z "$before" ] || goal R3-before "bootstrap apply, 10 hosts, before" "$(m boot10_before)" ms "1 host, before" "$(m boot1_before)" 1.5
goal_max R4 "provider peak RSS, 100 builders" "$(python3 -c "print(round($rss100 / 1024, 1))")" MB 20
goal R5 "max_jobs change on 20 builders (20 in-place updates), apply" "$(m r5)" ms "R1 no-op plan, 20" "$(m plan20)" 2.0
[ -z "$before" ] || goal R5-before "max_jobs change, 20 builders, before" "$(m r5_before)" ms "R1 no-op plan, 20, before" "$(m plan20_before)" 2.0
