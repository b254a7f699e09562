# Shared by the set-up scripts (sourced, not run): steps that stay quiet when they work and,
# when they fail, say which command failed and show the end of its output.

# One log per script run, in the temporary folder so that a clone stays clean; it is removed at
# exit unless a failure was shown from it.
CNNLAB_LOG=$(mktemp "${TMPDIR:-/tmp}/cnnlab-setup.XXXXXX")
CNNLAB_KEEP_LOG=false
trap '$CNNLAB_KEEP_LOG || rm -f "$CNNLAB_LOG"' EXIT
FAILED_COMMAND=""
FAILED_STATUS=0
STEP_START=0  # the log's line count where the current step began: show_failure shows from there

# new_step: what show_failure shows next begins here (a step may run several commands).
new_step() {
  STEP_START=$(wc -l <"$CNNLAB_LOG")
}

# quietly CMD...: run CMD with its output appended to the log; on failure remember which
# command it was and its exit status, for show_failure.
quietly() {
  printf '$ %s\n' "$*" >>"$CNNLAB_LOG"
  "$@" >>"$CNNLAB_LOG" 2>&1
  local status=$?
  if [ "$status" -ne 0 ]; then
    FAILED_COMMAND="$*" FAILED_STATUS=$status
    printf '(exit status %d)\n' "$status" >>"$CNNLAB_LOG"
  fi
  return "$status"
}

# show_failure WHAT: on stderr, the failed command of WHAT and the last lines of the step's
# output; the log is then kept for the whole story.
show_failure() {
  CNNLAB_KEEP_LOG=true
  echo "cnnlab: $1 failed: \`$FAILED_COMMAND\` exited with status $FAILED_STATUS; the end of its output (all of it: $CNNLAB_LOG):" >&2
  tail -n +"$((STEP_START + 1))" "$CNNLAB_LOG" | tail -n 15 | sed 's/^/  | /' >&2
  new_step
}

# fail MESSAGE: print the one-line MESSAGE on stderr and exit 1.
fail() {
  echo "$1" >&2
  exit 1
}

# as_root: "" when we are root, "sudo -n" when sudo works without a password, else nothing and
# a non-zero status (apt-get cannot install then).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    echo ""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    echo "sudo -n"
  else
    return 1
  fi
}

# apt_install SUDO PKG...: install Debian packages quietly, refreshing the package lists when the
# first try fails (a fresh machine has none). SUDO is as_root's answer.
apt_install() {
  local sudo=$1; shift
  export DEBIAN_FRONTEND=noninteractive  # no questions from packages' configuration
  quietly $sudo apt-get install -y -qq "$@" && return 0
  quietly $sudo apt-get update -qq && quietly $sudo apt-get install -y -qq "$@"
}
