#!/usr/bin/env bash
# Load (issue 28, item 4): ONE `terraform apply` bootstraps N fresh builders
# from nothing (no Nix on any of them: each gets Nix through the installer
# stand-in tests/standins/nix-installer.sh, served over TLS as the "fresh"
# tests serve it), then `terraform plan -detailed-exitcode` (must be 0), then
# `terraform destroy` (on_destroy = "clean").
#
# The N throwaway hosts are copies of the world's host "fresh" (its pristine
# snapshot: /etc, /root, /home; its /usr/bin without nix), each with its own
# empty /nix and an sshd in a private mount namespace on 127.0.2.I. They live
# in a scratch directory and are torn down on exit (trap): the shared test
# world is left as it was. Run by bench/all.sh (`make bench`), never by tests.
#
#   LOAD_BUILDERS=N      builders/hosts (default 100)
#   LOAD_PARALLELISM=P   terraform -parallelism (default 10, Terraform's own)
#
# Prints wall times of apply/plan/destroy, apply seconds per builder, the
# provider's peak RSS (GNU time around the real binary, via dev_overrides),
# the error count and the machine's core count.
set -euo pipefail
bench=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$bench/.." && pwd)
# shellcheck source=bench/lib.sh
source "$bench/lib.sh"
# shellcheck source=scripts/testworld/lib.sh
source "$repo/scripts/testworld/lib.sh"

n=${LOAD_BUILDERS:-100}
parallelism=${LOAD_PARALLELISM:-10}
if ! [[ $n =~ ^[1-9][0-9]*$ ]] || [ "$n" -gt 250 ]; then die "LOAD_BUILDERS must be 1..250 (one 127.0.2.x address each)"; fi
json="$WORLD/world.json"
fresh_root=$(host_root fresh)
pristine=$(fresh_pristine)
[ -e "$pristine/.stamp" ] || die "the test world's host fresh has no pristine snapshot (run scripts/testworld/up.sh)"
terraform=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["terraform"]["1.15.5"])' "$json" 2>/dev/null || command -v terraform)
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["keys"]["ed25519"])' "$json")
pubkey=$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read().strip()))' "$key.pub")

work=$(mktemp -d --suffix=.load)
https_pid=""
load_address() { echo "127.0.2.$1"; }
load_root() { echo "$work/hosts/l$1/root"; }

# stop_load_host I: every process in the host's mount namespace, then sshd.
stop_load_host() {
  local dir="$work/hosts/l$1" pid ns p
  pid=$(read_pid "$dir/sshd.pid")
  pid_alive "$pid" || return 0
  ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null || true)
  if [ -n "$ns" ] && [ "$ns" != "$(readlink /proc/self/ns/mnt)" ]; then
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$p" = "$pid" ] && continue
      [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$ns" ] && kill -9 "$p" 2>/dev/null
    done
  fi
  kill_pidfile "$dir/sshd.pid"
}
cleanup() {
  local i
  for ((i = 1; i <= n; i++)); do stop_load_host "$i" || true; done
  [ -z "$https_pid" ] || kill "$https_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The installer stand-ins over TLS (installer_url must be https), as
# tests/common's HttpsFiles serves them; each host trusts the certificate.
mkdir -p "$work/www"
cp "$WORLD/www/installers/official.sh" "$work/www/"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$work/tls.key" -out "$work/tls.pem" 2>/dev/null
https_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$work/www" && exec openssl s_server -quiet -WWW -accept "127.0.0.1:$https_port" \
  -cert "$work/tls.pem" -key "$work/tls.key" </dev/null >/dev/null 2>&1) &
https_pid=$!

# make_load_host I: a copy of fresh, listening on its own address.
make_load_host() {
  local i=$1 root dir
  dir="$work/hosts/l$i"
  root=$(load_root "$i")
  mkdir -p "$root/nix" "$root/usr-local-bin"
  cp -a "$pristine/etc" "$pristine/root" "$pristine/home" "$root/"
  cp -al "$fresh_root/usr-bin" "$root/usr-bin"
  sed -i "s/^ListenAddress .*/ListenAddress $(load_address "$i"):22/" "$root/etc/ssh/sshd_config"
  sed -i "s|^log=.*|log=$dir/commands.log|" "$root/etc/testworld/record-command"
  touch "$dir/commands.log" "$dir/installer-calls.log"
  chmod 666 "$dir/commands.log" "$dir/installer-calls.log"
  echo "$dir/installer-calls.log" >"$root/etc/testworld/installer-log-path"
  cat "$work/tls.pem" >>"$root/etc/ssl/certs/ca-certificates.crt"
  # As up.sh's __ns-sshd: the host's own directories over the machine's.
  # shellcheck disable=SC2016 # expanded by the namespace's bash
  setsid env -i PATH="$CLEAN_PATH" HOME=/root unshare --mount --propagation private -- bash -c '
    root=$1 dir=$2
    for d in etc home root nix; do mount --bind "$root/$d" "/$d"; done
    mount --bind "$root/usr-bin" /usr/bin
    mount --bind "$root/usr-local-bin" /usr/local/bin
    mkdir -p /run/sshd
    echo $$ >"$dir/sshd.pid"
    exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config' _ "$root" "$dir" </dev/null >>"$dir/sshd.log" 2>&1 &
}

start=$(now_ms)
for ((i = 1; i <= n; i++)); do make_load_host "$i"; done
for ((i = 1; i <= n; i++)); do
  for _ in $(seq 1 100); do
    ssh_port_ok "$(load_address "$i")" 22 && break
    sleep 0.1
  done
  ssh_port_ok "$(load_address "$i")" 22 || { tail "$work/hosts/l$i/sshd.log" >&2; die "load host $i: sshd not up"; }
done
echo "hosts: $n fresh hosts up in $(($(now_ms) - start)) ms"
host_key=$(awk '{print $1" "$2}' "$pristine/etc/ssh/ssh_host_ed25519_key.pub")

# The real provider (release build, as bench/builder.sh) under GNU time: every
# provider process Terraform starts appends its peak RSS (kB) to rss.log.
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
mkdir -p "$work/rss-bin" "$work/cfg"
cat >"$work/rss-bin/terraform-provider-nixbuild" <<WRAP
#!/bin/sh
exec /usr/bin/time -a -o "$work/rss.log" -f '%M' "$repo/target/release/terraform-provider-nixbuild" "\$@"
WRAP
chmod +x "$work/rss-bin/terraform-provider-nixbuild"
dev_overrides_rc "$work/rss.rc" "$work/rss-bin"

cat >"$work/cfg/main.tf" <<TF
terraform {
  required_providers {
    nixbuild = { source = "my-modular-workspace/nixbuild" }
  }
}
provider "nixbuild" {
  ssh {
    private_key_file = "$key"
    connect_timeout  = "30s"
  }
}
resource "nixbuild_builder" "fresh" {
  count      = $n
  host       = "127.0.2.\${count.index + 1}"
  on_destroy = "clean"
  ssh {
    host_key = "$host_key"
  }
  nix {
    install                = "official"
    installer_url          = "https://127.0.0.1:$https_port/official.sh"
    daemon_restart_command = "/etc/testworld/restart-nix-daemon"
  }
  build_user {
    authorized_keys = [$pubkey]
  }
}
TF

errors() { grep -c '^Error: ' "$work/last.log" || true; }
cores=$(nproc)
busy0=$(cpu_busy_ms)
apply_ms=$(timed "$work/rss.rc" cfg apply -auto-approve -parallelism="$parallelism") || true
apply_errors=$(errors)
grep -qF "Resources: $n added, 0 changed, 0 destroyed." "$work/last.log" || { tail -n 40 "$work/last.log" >&2; apply_ms=${apply_ms:-0}; }
cp "$work/last.log" "$work/apply.log"
busy1=$(cpu_busy_ms)
plan_rc=0
plan_ms=$(timed "$work/rss.rc" cfg plan -detailed-exitcode -parallelism="$parallelism") || plan_rc=$?
plan_errors=$(errors)
destroy_ms=$(timed "$work/rss.rc" cfg destroy -auto-approve -parallelism="$parallelism") || true
destroy_errors=$(errors)
grep -qF "Destroy complete! Resources: $n destroyed." "$work/last.log" || tail -n 40 "$work/last.log" >&2
rss_kb=$(sort -n "$work/rss.log" | tail -n 1)

echo "load: $n fresh builders in one apply (terraform $("$terraform" version | head -n 1 | awk '{print $2}'), -parallelism=$parallelism, $cores cores, $(date -u +%F))"
echo "apply:   ${apply_ms:-failed} ms ($(python3 -c "print(f'{${apply_ms:-0} / 1000 / $n:.2f}')") s per builder; CPU busy $(((busy1 - busy0) * 100 / (cores * ${apply_ms:-1})))% of $cores cores), errors $apply_errors"
echo "plan:    ${plan_ms:-failed} ms, -detailed-exitcode $plan_rc, errors $plan_errors"
echo "destroy: ${destroy_ms:-failed} ms, errors $destroy_errors"
echo "provider peak RSS: $((rss_kb / 1024)) MB ($rss_kb kB, largest of $(wc -l <"$work/rss.log") provider processes)"
total_errors=$((apply_errors + plan_errors + destroy_errors))
echo "errors: $total_errors"
[ "$total_errors" = 0 ] && [ "$plan_rc" = 0 ] && [ -n "${apply_ms:-}" ] && [ -n "${destroy_ms:-}" ]
