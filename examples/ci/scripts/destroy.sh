#!/usr/bin/env bash
# Destroys this run's builders from the run's remote state. No refresh: this
# runner's address is not in the builders' firewall, and on_destroy = "keep"
# needs no connection (the servers just go).
#
#   INFRA_DIR  the environment, initialised by init.sh with the run's state
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

tf destroy -auto-approve -input=false -no-color -refresh=false -lock-timeout=5m
