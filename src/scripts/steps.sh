#!/bin/sh
# Several of the provider's scripts as one remote command (src/ssh/steps.rs).
# After this file come one function per script, `nb_fN() ( SCRIPT )` (a
# subshell: the script's `exit`, `set` and traps stay its own), and one
# `nb_step` line per step. Stdout frames each step's output:
#   BOUNDARY begin N NAME
#   ...what step N printed on stdout...
#   (newline) BOUNDARY end N STATUS
# or `BOUNDARY skip N`, then `BOUNDARY stop N` when step N ended the batch.
# The first step that fails ends the batch with its exit status.
# Stdin holds one base64 line per step that takes input, in step order: the
# input is decoded into the step's stdin by printf (a builtin), never onto a
# command line.
# Usage: sh -c 'steps.sh, functions, nb_step lines' nixbuild BOUNDARY
nb_boundary=$1
nb_changed=no

# The step's input on stdout (an empty one starts no base64).
nb_decoded() {
  [ -z "$nb_input" ] || printf '%s' "$nb_input" | base64 -d
}

# nb_step N NAME FLAGS STOP FUNCTION ARGS...
#   NAME   the step's name, for the log
#   FLAGS  i: reads its input line; c: a `changed=yes` line in its stdout
#          marks a change; a: runs only after a change
#   STOP   a line that, printed by the step, ends the batch (empty: none)
# The step's stdout is captured (then printed) only when the runner needs to
# read it (c, STOP): other steps print straight to the channel, so a child
# they leave in the background cannot hold the batch up.
nb_step() {
  nb_n=$1 nb_name=$2 nb_flags=$3 nb_stop=$4 nb_fn=$5
  shift 5
  nb_input=
  case $nb_flags in *i*) IFS= read -r nb_input || true ;; esac
  case $nb_flags in
    *a*)
      if [ "$nb_changed" != yes ]; then
        printf '%s skip %s\n' "$nb_boundary" "$nb_n"
        return 0
      fi
      ;;
  esac
  printf '%s begin %s %s\n' "$nb_boundary" "$nb_n" "$nb_name"
  nb_capture=no
  case $nb_flags in *c*) nb_capture=yes ;; esac
  [ -z "$nb_stop" ] || nb_capture=yes
  nb_out=
  case $nb_capture$nb_flags in
    yes*i*) nb_out=$(nb_decoded | "$nb_fn" "$@") ;;
    yes*) nb_out=$("$nb_fn" "$@" </dev/null) ;;
    *i*) nb_decoded | "$nb_fn" "$@" ;;
    *) "$nb_fn" "$@" </dev/null ;;
  esac
  nb_rc=$?
  [ -z "$nb_out" ] || printf '%s\n' "$nb_out"
  printf '\n%s end %s %s\n' "$nb_boundary" "$nb_n" "$nb_rc"
  [ "$nb_rc" -eq 0 ] || exit "$nb_rc"
  case $nb_out in *changed=yes*) case $nb_flags in *c*) nb_changed=yes ;; esac ;; esac
  if [ -n "$nb_stop" ]; then
    case "
$nb_out
" in
      *"
$nb_stop
"*)
        printf '%s stop %s\n' "$nb_boundary" "$nb_n"
        exit 0
        ;;
    esac
  fi
}
