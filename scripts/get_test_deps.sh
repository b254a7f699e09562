#!/usr/bin/env bash
# System programs the tests use for real: Chromium (headless) renders report.html.
# Under CI=true the tests that need them fail rather than skip, so install them here.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "installing chromium for the report tests..."
  apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }
fi
command -v chromium >/dev/null 2>&1 || echo "note: chromium is not installed; browser tests will skip (fail under CI=true)" >&2
exit 0
