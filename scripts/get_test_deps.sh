#!/usr/bin/env bash
# System programs the tests use for real: Chromium (headless) renders report.html, and
# PostgreSQL's server (Debian's postgresql: initdb, postgres). Under CI=true the tests that need
# them fail rather than skip, so install them here: with apt, as root, only what is missing.
set -u
source "$(dirname "$0")/lib.sh"

have_chromium() { command -v chromium >/dev/null 2>&1; }
have_postgresql() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

missing=()
have_chromium || missing+=(chromium)
have_postgresql || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  for package in "${missing[@]}"; do  # one at a time, so that one failing costs only itself
    echo "installing $package for the tests..."
    apt_install "" "$package" || show_failure "installing $package for the tests"
  done
fi
have_chromium || echo "note: chromium is not installed; the browser tests will skip (fail under CI=true)" >&2
have_postgresql || echo "note: PostgreSQL's server (Debian's postgresql) is not installed; the tests that need it will skip (fail under CI=true)" >&2
exit 0
