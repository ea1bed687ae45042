#!/usr/bin/env bash
# The embedded-default demo on a fresh Debian 12 machine: installs packages, builds (Release), generates a
# lab PKI shaped like the deployment guide's, starts a stand-in Exchange and easedge in front of it, and
# prints curl lines to try. `sogo` puts a real ActiveSync server with real mail behind easedge instead: SOGo
# with PostgreSQL, Dovecot and memcached on loopback (tests/integration/sogo/sogo-lab.sh; needs root).
# Usage: scripts/demo.sh [start|sogo|stop]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=$ROOT/demo
BUILD=$ROOT/build
PROXY_PORT=${EASEDGE_DEMO_PORT:-8443}
STANDIN_PORT=${EASEDGE_DEMO_UPSTREAM_PORT:-8080}
ADMIN_PORT=${EASEDGE_DEMO_ADMIN_PORT:-9901}
SOGO_LAB=$ROOT/tests/integration/sogo/sogo-lab.sh
# SOGo's daemons run as their own users: their folder must be reachable by them, which a checkout under /root
# is not.
SOGO_DIR=${EASEDGE_DEMO_SOGO_DIR:-/var/tmp/easedge-demo-sogo}
MODE=${1:-start}

stop() {
  for name in easedge standin; do
    if [ -f "$DEMO/$name.pid" ]; then
      kill "$(cat "$DEMO/$name.pid")" 2>/dev/null || true
      rm -f "$DEMO/$name.pid"
    fi
  done
  if [ -d "$SOGO_DIR/pids" ]; then bash "$SOGO_LAB" stop "$SOGO_DIR"; fi
}

wait_for() {  # wait_for LOGFILE PATTERN NAME
  for _ in $(seq 1 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: $3 did not start; its log ($1) says:" >&2
  tail -n 20 "$1" >&2
  exit 1
}

case "$MODE" in
  stop) stop; echo "demo: stopped"; exit 0 ;;
  start | sogo) ;;
  *) echo "usage: scripts/demo.sh [start|sogo|stop]" >&2; exit 2 ;;
esac

if [ "$MODE" = sogo ]; then bash scripts/install-deps.sh --with-sogo; else bash scripts/install-deps.sh; fi
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEASEDGE_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" --target easedge standin-exchange -j"$(nproc)"

stop
mkdir -p "$DEMO"
bash scripts/make-lab-pki.sh "$DEMO/pki" >/dev/null

start_easedge() {
  "$BUILD/proxy/easedge" --config "$DEMO/easedge.yaml" >"$DEMO/easedge.log" 2>&1 &
  echo $! >"$DEMO/easedge.pid"
  wait_for "$DEMO/easedge.log" "proxy listening on" "easedge"
}

if [ "$MODE" = sogo ]; then
  # A fresh mailbox each time: alice's INBOX holds 3 messages, bob's 1.
  rm -rf "$SOGO_DIR"; mkdir -p "$SOGO_DIR"; chmod 755 "$SOGO_DIR"
  bash "$SOGO_LAB" start "$SOGO_DIR" "$STANDIN_PORT"
  cat > "$DEMO/easedge.yaml" <<YAML
# easedge demo with real mail: SOGo's ActiveSync behind easedge (docs/backends.md).
listen: ["127.0.0.1:$PROXY_PORT"]
tls:
  certificate: pki/server-chain.pem
  private_key: pki/server.key
  client_ca: pki/ca-bundle.pem
  client_certificate: required
  crl: [pki/issuing.crl]
upstream:
  url: http://127.0.0.1:$STANDIN_PORT/SOGo
  identity_header: x-webobjects-remote-user
  identity_format: sam_account_name
  client_cert_header: ""
  keepalive: false
mapping:
  directory:
    ldif: pki/users.ldif
  strong_binding: full
  ntauth: [pki/issuing-ca.pem]
log:
  access: access.log
  format: w3c
YAML
  start_easedge
  EAS="python3 tests/integration/sogo/sogo_eas.py --cacert demo/pki/ca-bundle.pem"
  URL="https://localhost:$PROXY_PORT/Microsoft-Server-ActiveSync"
  INBOX="$EAS --cert demo/pki/devices/alice.pem --key demo/pki/devices/alice.key --device-id DEMO0001 $URL sync"
  REFUSED="$EAS --cert demo/pki/devices/revoked.pem --key demo/pki/devices/revoked.key --device-id DEMO0002 -v $URL foldersync"
  echo
  sed -n '1,40p' "$DEMO/easedge.log"
  echo
  echo "easedge is running on https://localhost:$PROXY_PORT in front of SOGo on 127.0.0.1:$STANDIN_PORT/SOGo"
  echo "(its PostgreSQL, Dovecot and memcached in $SOGO_DIR). Logs: demo/easedge.log, demo/access.log,"
  echo "$SOGO_DIR/log/sogod.log. A new message for alice: bash $SOGO_LAB deliver $SOGO_DIR alice 'Hello'"
  echo "Stop with: scripts/demo.sh stop"
  echo
  echo "List alice's INBOX through easedge (FolderSync, then Sync; alice's certificate maps to SOGo's alice):"
  echo "  $INBOX"
  echo
  echo "A revoked device (refused by easedge with 403.13, never reaches SOGo):"
  echo "  $REFUSED"
  echo
  echo "--- trying them now ---"
  $INBOX || true
  $REFUSED || true
  exit 0
fi
cat > "$DEMO/easedge.yaml" <<YAML
# easedge demo: the guide's IIS settings (SSL Required, AD client certificate mapping, 10 MB read-ahead).
listen: ["127.0.0.1:$PROXY_PORT"]
tls:
  certificate: pki/server-chain.pem
  private_key: pki/server.key
  client_ca: pki/ca-bundle.pem
  client_certificate: required
  crl: [pki/issuing.crl]
upstream:
  url: http://127.0.0.1:$STANDIN_PORT
limits:
  upload_read_ahead_bytes: 10485760
mapping:
  directory:
    ldif: pki/users.ldif
  strong_binding: full
  ntauth: [pki/issuing-ca.pem]
log:
  access: access.log
  format: w3c
admin:
  listen: 127.0.0.1:$ADMIN_PORT
YAML

"$BUILD/bench/standin-exchange" --listen "127.0.0.1:$STANDIN_PORT" >"$DEMO/standin.log" 2>&1 &
echo $! >"$DEMO/standin.pid"
wait_for "$DEMO/standin.log" "standin listening on" "the stand-in Exchange"
start_easedge

URL="https://localhost:$PROXY_PORT/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=DEMO0001&DeviceType=iPhone"
SYNC="curl -sS --cacert demo/pki/ca-bundle.pem --cert demo/pki/devices/alice.pem --key demo/pki/devices/alice.key -H 'Content-Type: application/vnd.ms-sync.wbxml' --data-binary 'wbxml' '$URL'"
REFUSED="curl -sS --cacert demo/pki/ca-bundle.pem --cert demo/pki/devices/revoked.pem --key demo/pki/devices/revoked.key --data-binary 'wbxml' '${URL/alice/carol}'"

echo
sed -n '1,40p' "$DEMO/easedge.log"
echo
echo "easedge is running on https://localhost:$PROXY_PORT in front of a stand-in Exchange on 127.0.0.1:$STANDIN_PORT."
echo "Logs: demo/easedge.log, access log demo/access.log. Stop with: scripts/demo.sh stop"
echo
echo "Operator console (overview, refused devices, CRLs, directory, explain a certificate):"
echo "  http://127.0.0.1:$ADMIN_PORT/      (loopback only; the refusals below show under /devices)"
echo
echo "Sync as alice's device (mapped through demo/pki/users.ldif, forwarded with X-Forwarded-User):"
echo "  $SYNC"
echo
echo "A revoked device (refused with 403.13):"
echo "  $REFUSED"
echo
echo "--- trying them now ---"
eval "$SYNC"; echo
eval "$REFUSED"
