#!/usr/bin/env bash
# Deletes leftover CI resources on Hetzner Cloud: servers, firewalls and SSH
# keys labelled cleanup=ci and older than CLEANUP_AFTER_HOURS (default 3),
# i.e. a run whose destroy job never ran. Servers first: a firewall is
# deleted only once nothing uses it. Needs the hcloud CLI and HCLOUD_TOKEN.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

require HCLOUD_TOKEN
cutoff=$(date -u -d "${CLEANUP_AFTER_HOURS:-3} hours ago" +%s)
for kind in server firewall ssh-key; do
  hcloud "$kind" list -l cleanup=ci -o json |
    jq -r '.[] | "\(.id) \(.name) \(.created)"' |
    while read -r id name created; do
      if [ "$(date -u -d "$created" +%s)" -lt "$cutoff" ]; then
        echo "deleting leftover $kind $name (created $created)"
        hcloud "$kind" delete "$id" || echo "::warning::could not delete $kind $name"
      fi
    done
done
