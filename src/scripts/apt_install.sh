#!/bin/sh
# Prepended to the scripts that install a Debian package for a service they
# run themselves (monitoring.sh, cache_proxy.sh): defines nb_apt_install.
#
# `nb_apt_install PACKAGE SERVICE`: apt-get install PACKAGE without letting
# its maintainer scripts start SERVICE (which would, e.g., open nginx's
# default site on port 80), then leave SERVICE disabled. Service starts are
# refused by a temporary /usr/sbin/policy-rc.d (exit 101, Debian's
# invoke-rc.d interface), written only where the host has none of its own and
# marked as ours. It is removed on every exit a shell can trap (the guard's
# SIGTERM at a stop included); a run killed outright (SIGKILL) leaves it, so
# every run first removes a marked leftover: never a policy-rc.d of the host's.
nb_policy_rc=/usr/sbin/policy-rc.d
nb_policy_rc_marker='# nixbuild: temporary, refuses service starts during a package install'

nb_remove_stale_policy_rc() {
  if [ -f "$nb_policy_rc" ] && grep -qxF "$nb_policy_rc_marker" "$nb_policy_rc"; then
    rm -f -- "$nb_policy_rc"
    echo "removed $nb_policy_rc left by an interrupted install" >&2
  fi
}

nb_apt_install() {
  nb_remove_stale_policy_rc
  nb_own_policy_rc=
  if [ ! -e "$nb_policy_rc" ]; then
    nb_own_policy_rc=yes
    trap 'rm -f -- "$nb_policy_rc" "$nb_policy_rc.nixbuild-new"' EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    { printf '#!/bin/sh\n%s\nexit 101\n' "$nb_policy_rc_marker" >"$nb_policy_rc.nixbuild-new" &&
      chmod 755 "$nb_policy_rc.nixbuild-new" &&
      mv -f -- "$nb_policy_rc.nixbuild-new" "$nb_policy_rc"; } || {
      echo "cannot write $nb_policy_rc (to keep the package from starting $2)" >&2
      return 6
    }
  fi
  nb_apt_status=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" ||
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1"; } ||
    nb_apt_status=$?
  if [ -n "$nb_own_policy_rc" ]; then
    rm -f -- "$nb_policy_rc"
    trap - EXIT HUP INT TERM
  fi
  [ "$nb_apt_status" = 0 ] || return "$nb_apt_status"
  systemctl disable --now "$2" >/dev/null 2>&1 || true
}
