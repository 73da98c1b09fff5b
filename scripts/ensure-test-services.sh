#!/usr/bin/env bash
# What the test suite needs besides Python packages: Debian's Chromium (browser tests) and the
# local PostgreSQL server (dialect tests). Installs/starts them when it can, says so when it cannot.
set -u

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests..."
    (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }) \
      || echo "warning: could not install chromium; browser tests will fail" >&2
  else
    echo "warning: /usr/bin/chromium is missing; install Debian's chromium package (browser tests need it)" >&2
  fi
fi

if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start \
      || echo "warning: could not start PostgreSQL; PostgreSQL tests will be skipped (or fail under CI=true)" >&2
  fi
fi
exit 0
