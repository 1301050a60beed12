#!/usr/bin/env bash
# SSH keys of this run, and who may reach the builders.
#
# The admin key (root on the new servers) is generated for this run: its
# fingerprint is new, so two runs at once never collide on the cloud's SSH
# keys (Hetzner refuses a second key with a fingerprint it already has,
# `uniqueness_error`), and nothing that logs in outlives the run. The client
# key is the one Nix on this runner builds through the builders with.
#
#   TF_VAR_name_prefix   this run's name (key comments)
#   RUNNER_EGRESS_CIDR   optional: the address the builders see this runner
#                        from; default: asked from ipv4.icanhazip.com
# Sets environments/dev's TF_VAR_admin_ssh_private_key_file,
# TF_VAR_admin_ssh_public_key, TF_VAR_client_ssh_key_path,
# TF_VAR_client_public_keys and TF_VAR_ssh_allowed_cidrs.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

require TF_VAR_name_prefix
name=${TF_VAR_name_prefix:?}
dir="$(scratch_dir)/ssh"
mkdir -p "$dir"
chmod 0700 "$dir"
for key in admin client; do
  rm -f "$dir/$key" "$dir/$key.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$name-$key" -f "$dir/$key"
done
egress=${RUNNER_EGRESS_CIDR:-$(curl -fsS --retry 3 https://ipv4.icanhazip.com)/32}

ci_env TF_VAR_admin_ssh_private_key_file "$dir/admin"
ci_env TF_VAR_admin_ssh_public_key "$(cat "$dir/admin.pub")"
ci_env TF_VAR_client_ssh_key_path "$dir/client"
ci_env TF_VAR_client_public_keys "$(jq -cn --arg key "$(cat "$dir/client.pub")" '[$key]')"
ci_env TF_VAR_ssh_allowed_cidrs "$(jq -cn --arg cidr "$egress" '[$cidr]')"
