#!/bin/sh
# Stop the cachix watch-store service so that it uploads what it has queued,
# and wait until it has exited, at most SECONDS (destroy, within its
# timeout). On SIGTERM the real `cachix watch-store` stops watching, uploads
# its queue, logs "Waiting to finish: P pushing, Q in queue" every second
# meanwhile, and exits; an upload that keeps failing ends it with an error
# (cachix 1.11.1, src/Cachix/Client/PushQueue.hs).
# Usage: watch_store_stop.sh UNIT SECONDS RESTART
#   RESTART: yes (on_destroy = "keep": start the service again after) | no.
# Prints one line: state=stopped|failed|stopping|absent [queued=N], N being
# P+Q of the last count watch-store logged during this stop (none: unknown).
set -eu
unit=$1
seconds=$2
restart=$3

if [ ! -d /run/systemd/system ]; then
  echo "state=absent"
  exit 0
fi
state=$(systemctl is-active "$unit" 2>/dev/null || true)
case "$state" in
  active | activating | reloading) ;;
  # A stop an earlier destroy began (and gave up waiting for) goes on.
  deactivating) ;;
  *)
    echo "state=absent"
    exit 0
    ;;
esac
since=$(date '+%Y-%m-%d %H:%M:%S')
if [ "$state" != deactivating ]; then
  systemctl stop --no-block "$unit"
fi
waited=0
while :; do
  state=$(systemctl is-active "$unit" 2>/dev/null || true)
  case "$state" in
    active | activating | deactivating | reloading) ;;
    *) break ;;
  esac
  if [ "$waited" -ge "$seconds" ]; then break; fi
  sleep 1
  waited=$((waited + 1))
done

# The last count watch-store logged since the stop began.
queued=$(journalctl -u "$unit" --since "$since" -o cat --no-pager 2>/dev/null |
  sed -n 's/.*Waiting to finish: \([0-9][0-9]*\) pushing, \([0-9][0-9]*\) in queue.*/\1 \2/p' |
  tail -n 1 | awk 'NF == 2 { print "queued=" $1 + $2 }')

case "$state" in
  active | activating | deactivating | reloading)
    echo "state=stopping $queued"
    exit 0
    ;;
esac
result=$(systemctl show -p Result --value "$unit" 2>/dev/null || true)
if [ "$result" = success ]; then
  outcome=stopped
else
  outcome=failed
fi
if [ "$restart" = yes ]; then
  systemctl reset-failed "$unit" 2>/dev/null || true
  systemctl start "$unit"
fi
echo "state=$outcome $queued"
