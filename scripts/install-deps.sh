#!/usr/bin/env bash
# Installs every Debian 12 package easedge needs to build, test, demo and benchmark.
# Idempotent: packages already present are skipped, so repeated runs cost a dpkg query.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-url1.81-dev
  libssl-dev openssl
  libldap-dev ldap-utils
  libkrb5-dev krb5-user
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev
  libgoogle-perftools-dev
  clang-14 libclang-rt-14-dev
  curl python3 python3-yaml procps iproute2
)
# Samba AD DC: the real Active Directory stand-in for LDAP and Kerberos integration tests
# (python3-gssapi: the Negotiate-accepting stand-in Exchange of the Kerberos tests).
SAMBA_PACKAGES=(samba samba-ad-dc samba-ad-provision libsasl2-modules-gssapi-mit python3-gssapi)
# The peers bench/compare measures easedge against, and perf, strace and heaptrack to find where easedge falls short.
BENCH_PACKAGES=(nginx-light haproxy linux-perf strace heaptrack)
# scripts/package.sh and its test: dpkg-deb under fakeroot, chrpath (drops the build tree's RUNPATH), lintian, and
# systemd-analyze verify for the unit (from the systemd package; no running systemd needed).
PACKAGING_PACKAGES=(dpkg-dev fakeroot lintian binutils chrpath systemd)
# Debian's headless Chromium: the operator console's browser tests load its pages and read the rendered DOM.
BROWSER_PACKAGES=(chromium fonts-dejavu-core)
# SOGo 5.8, a real ActiveSync server, with its PostgreSQL, Dovecot IMAP and memcached, for the SOGo tests and
# `scripts/demo.sh sogo` (tests/integration/sogo/sogo-lab.sh runs them on loopback); libwbxml2-utils encodes and
# decodes ActiveSync WBXML for the test client.
SOGO_PACKAGES=(sogo sogo-activesync postgresql-15 postgresql-client-15 dovecot-imapd memcached libwbxml2-utils)

want=("${BUILD_PACKAGES[@]}")
for arg in "$@"; do
  case "$arg" in
    --with-samba) want+=("${SAMBA_PACKAGES[@]}") ;;
    --with-bench) want+=("${BENCH_PACKAGES[@]}") ;;
    --with-packaging) want+=("${PACKAGING_PACKAGES[@]}") ;;
    --with-browser) want+=("${BROWSER_PACKAGES[@]}") ;;
    --with-sogo) want+=("${SOGO_PACKAGES[@]}") ;;
    *) echo "install-deps.sh: unknown option '$arg' (use --with-samba, --with-bench, --with-packaging, --with-browser, --with-sogo)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
# Packages whose own services would start at install (sogo on :20000, dovecot on :143, postgresql on :5432,
# memcached on :11211): the tests and the demo start their own on loopback, so keep the packaged ones from
# starting (policy-rc.d), unless the machine already has a policy.
made_policy=""
if printf '%s\n' "${missing[@]}" | grep -qE '^(sogo|dovecot-imapd|postgresql-15|memcached)$' && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ -n "$made_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
# The Debian samba package starts its daemons at install: the tests start their own DC on loopback.
if printf '%s\n' "${missing[@]}" | grep -qx samba; then
  for svc in samba-ad-dc smbd nmbd winbind; do $SUDO systemctl stop "$svc" 2>/dev/null || true; done
  pkill -x samba 2>/dev/null || true; pkill -x smbd 2>/dev/null || true; pkill -x nmbd 2>/dev/null || true
fi
if printf '%s\n' "${missing[@]}" | grep -qE '^(nginx-light|haproxy)$'; then
  for svc in nginx haproxy; do $SUDO systemctl stop "$svc" 2>/dev/null || true; done
  pkill -x nginx 2>/dev/null || true; pkill -x haproxy 2>/dev/null || true
fi
echo "install-deps: done"
