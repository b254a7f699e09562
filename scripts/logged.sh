#!/usr/bin/env bash
# Usage: bash scripts/logged.sh WHAT CMD...
# Run CMD quietly; when it fails, say that WHAT failed, with the command and the end of its
# output (scripts/lib.sh), and exit 1.
set -u
source "$(dirname "$0")/lib.sh"
what=$1
shift
quietly "$@" || { show_failure "$what"; exit 1; }
