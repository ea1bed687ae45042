#!/bin/bash
# A Samba AD domain controller on loopback, the Active Directory stand-in for integration tests.
#
# Usage: samba-dc.sh start DIR      provision DIR on first use (realm CORP.EXAMPLE.TEST), start the DC,
#                                   wait until LDAP and the KDC answer
#        samba-dc.sh stop DIR       stop the DC started from DIR (its own process group only)
#        samba-dc.sh populate DIR   users and groups for the tests (idempotent, DC running)
#        samba-dc.sh session DIR CMD...   start + populate, run CMD with the lock held, stop (always)
#
# The DC uses fixed ports on 127.0.0.1 (88, 389, 636, 464, 3268, 3269), so only one can run per machine.
# It runs no DCE/RPC service: samba-tool works on the local database, and RPC's endpoints would take ports
# from 49152 up, inside Linux's ephemeral range, where any concurrent test's socket can already hold one.
# Hold /tmp/easedge-samba.lock (flock) from start to stop: `session` does; a caller that already holds it
# sets EASEDGE_SAMBA_LOCKED=1 so the subcommands do not wait for it again. Without that, each subcommand
# takes the lock for its own duration only.
#
# After populate, DIR holds: tls/ca.pem (the DC's CA, for ldaps:// and StartTLS), easproxy.password, and
# samba.env (shell assignments: SAMBA_LDAP_URL, SAMBA_BASE, SAMBA_BIND_DN, SAMBA_ADMIN_DN, SAMBA_ADMIN_PASSWORD).
#   alice, bob, carol   enabled users, UPN <name>@corp.example.test, members of "EAS Users" (alice through
#                       the nested group "Phone Users")
#   frank               enabled, in no group
#   disabled            disabled user (userAccountControl has ACCOUNTDISABLE)
#   easproxy            the proxy's service account, used for the LDAP simple bind
# Samba needs root (it provisions and binds privileged ports).
set -euo pipefail

LOCK=/tmp/easedge-samba.lock
REALM=CORP.EXAMPLE.TEST
DOMAIN=CORP
BASE=DC=corp,DC=example,DC=test
ADMIN_PASSWORD='Passw0rd!Adm1n'
GROUPS_OU="OU=Groups,$BASE"
PORTS=(88 389 636)
# Passwords shared with populate-kerberos.sh (same accounts).
declare -A PASSWORDS=([alice]='Al1ce!Passw0rd' [bob]='B0b!Passw0rd' [carol]='C4rol!Passw0rd'
                      [frank]='Fr4nk!Passw0rd' [disabled]='D1sabled!Passw0rd' [easproxy]='Pr0xy!Passw0rd')

usage() {
  sed -n '3,8p' "$0" >&2
  exit 2
}

die() {
  echo "samba-dc.sh: $*" >&2
  exit 1
}

# Runs "$@" holding the lock, unless the caller already holds it. --close keeps the lock's descriptor out of
# the command, so a DC started under it does not inherit the lock and hold it until it is stopped.
locked() {
  if [ "${EASEDGE_SAMBA_LOCKED:-}" = 1 ]; then
    "$0" "$@"
  else
    EASEDGE_SAMBA_LOCKED=1 flock --close "$LOCK" "$0" "$@"
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

provision() {
  local d=$1
  rm -rf "$d/etc" "$d/private" "$d/state" "$d/cache" "$d/tls" "$d/run" "$d/log"
  mkdir -p "$d/tls" "$d/run" "$d/log"
  # The DC's own certificate with an IP SAN (else Samba spends ~30 s on a 4096-bit key matching no name).
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/tls/ca.key" -out "$d/tls/ca.pem" -days 30 \
    -subj "/CN=Samba Test AD CA" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$d/tls/key.pem" -out "$d/tls/dc.csr" -subj "/CN=dc1.corp.example.test" 2>/dev/null
  openssl x509 -req -in "$d/tls/dc.csr" -CA "$d/tls/ca.pem" -CAkey "$d/tls/ca.key" -CAcreateserial \
    -out "$d/tls/cert.pem" -days 30 2>/dev/null \
    -extfile <(printf 'subjectAltName=DNS:dc1.corp.example.test,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  chmod 600 "$d/tls/key.pem"
  samba-tool domain provision --realm=$REALM --domain=$DOMAIN --server-role=dc --dns-backend=NONE \
    --adminpass="$ADMIN_PASSWORD" --use-rfc2307 --host-name=dc1 --host-ip=127.0.0.1 --targetdir="$d" \
    --option="interfaces=lo" --option="bind interfaces only=yes" \
    --option="server services=ldap cldap kdc" \
    --option="log file=$d/log/log.%m" --option="pid directory=$d/run" \
    --option="ncalrpc dir=$d/run/ncalrpc" --option="winbindd socket directory=$d/run/winbindd" \
    --option="ntp signd socket directory=$d/run/ntp_signd" \
    --option="tls enabled=yes" --option="tls keyfile=$d/tls/key.pem" --option="tls certfile=$d/tls/cert.pem" \
    --option="tls cafile=$d/tls/ca.pem" \
    --option="dns update command=/bin/true" --option="spn update command=/bin/true" \
    --option="kdc default domain supported enctypes=aes256-cts-hmac-sha1-96 aes256-cts-hmac-sha1-96-sk" \
    >"$d/provision.log" 2>&1 || { tail -20 "$d/provision.log" >&2; die "provisioning failed (see $d/provision.log)"; }
  # provision drops this option: simple binds on plain 389 (the tests also cover StartTLS and LDAPS).
  sed -i 's/^\[global\]$/[global]\n\tldap server require strong auth = no/' "$d/etc/smb.conf"
}

do_start() {
  local d=$1
  mkdir -p "$d"
  d=$(cd "$d" && pwd)
  if [ -f "$d/samba.pid" ] && kill -0 "$(cat "$d/samba.pid")" 2>/dev/null; then
    echo "samba-dc.sh: already running from $d (pid $(cat "$d/samba.pid"))"
    return 0
  fi
  for p in "${PORTS[@]}"; do
    port_open "$p" && die "127.0.0.1:$p is already in use: another DC is running (is $LOCK held by its owner?)"
  done
  [ -f "$d/etc/smb.conf" ] || provision "$d"
  setsid samba -i -s "$d/etc/smb.conf" --debug-stdout >"$d/samba.out" 2>&1 </dev/null &
  echo $! >"$d/samba.pid"
  for _ in $(seq 1 600); do
    if ldapsearch -LLL -x -H ldap://127.0.0.1 -s base -b '' dnsHostName >/dev/null 2>&1 && port_open 88; then
      echo "samba-dc.sh: DC running from $d (pid $(cat "$d/samba.pid"))"
      return 0
    fi
    kill -0 "$(cat "$d/samba.pid")" 2>/dev/null || { tail -20 "$d/samba.out" >&2; die "samba exited during start"; }
    sleep 0.05
  done
  do_stop "$d"
  die "samba did not answer within 30 s"
}

do_stop() {
  local d=$1
  [ -f "$d/samba.pid" ] || return 0
  local pid
  pid=$(cat "$d/samba.pid")
  # setsid made samba a process-group leader: its group is exactly the DC's processes.
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$d/samba.pid"
  for p in "${PORTS[@]}"; do
    for _ in $(seq 1 100); do
      port_open "$p" || break
      sleep 0.05
    done
  done
  echo "samba-dc.sh: DC from $d stopped"
}

do_populate() {
  local d
  d=$(cd "$1" && pwd)
  local s=(-s "$d/etc/smb.conf")
  exists() { samba-tool user show "$1" "${s[@]}" >/dev/null 2>&1; }
  for user in alice bob carol frank disabled easproxy; do
    exists "$user" || samba-tool user create "$user" "${PASSWORDS[$user]}" "${s[@]}" >/dev/null
  done
  # samba-tool sets no userPrincipalName: the lab form is <login>@corp.example.test.
  local ldif=""
  for user in alice bob carol frank disabled; do
    ldif+="dn: CN=$user,CN=Users,$BASE
changetype: modify
replace: userPrincipalName
userPrincipalName: $user@corp.example.test

"
  done
  printf '%s' "$ldif" | ldapmodify -x -H ldap://127.0.0.1 -D "Administrator@corp.example.test" -w "$ADMIN_PASSWORD" >/dev/null
  samba-tool user disable disabled "${s[@]}" >/dev/null
  # Listings are read whole before grep: with pipefail, `grep -q` closing the pipe early fails the pipeline.
  local listing
  listing=$(samba-tool ou list "${s[@]}" 2>/dev/null || true)
  grep -qix 'OU=Groups' <<<"$listing" || samba-tool ou create "$GROUPS_OU" "${s[@]}" >/dev/null
  for group in "EAS Users" "Phone Users"; do
    samba-tool group show "$group" "${s[@]}" >/dev/null 2>&1 ||
      samba-tool group add "$group" --groupou=OU=Groups "${s[@]}" >/dev/null
  done
  member() {  # member GROUP MEMBER
    listing=$(samba-tool group listmembers "$1" "${s[@]}" 2>/dev/null || true)
    grep -qx "$2" <<<"$listing" || samba-tool group addmembers "$1" "$2" "${s[@]}" >/dev/null
  }
  member "EAS Users" "Phone Users"
  member "Phone Users" alice
  member "EAS Users" bob
  member "EAS Users" carol
  member "EAS Users" disabled
  printf '%s' "${PASSWORDS[easproxy]}" >"$d/easproxy.password"  # no newline: ldapsearch -y reads it all
  chmod 600 "$d/easproxy.password"
  cat >"$d/samba.env" <<ENV
SAMBA_LDAP_URL=ldap://127.0.0.1:389
SAMBA_BASE='$BASE'
SAMBA_BIND_DN='CN=easproxy,CN=Users,$BASE'
SAMBA_ADMIN_DN='Administrator@corp.example.test'
SAMBA_ADMIN_PASSWORD='$ADMIN_PASSWORD'
ENV
  echo "samba-dc.sh: populated $d"
}

do_session() {
  local d=$1
  shift
  (($# > 0)) || usage
  local rc=0
  do_start "$d"
  # shellcheck disable=SC2064  # expand $d now: the trap runs after this function's locals are gone
  trap "do_stop '$d' >/dev/null" EXIT
  do_populate "$d"
  "$@" || rc=$?
  return $rc
}

(($# >= 2)) || usage
command=$1
dir=$2
shift 2
case "$command" in
  start) locked _start "$dir" ;;
  stop) locked _stop "$dir" ;;
  populate) locked _populate "$dir" ;;
  session) locked _session "$dir" "$@" ;;
  # Internal entry points, re-entered by `locked` under flock.
  _start) do_start "$dir" ;;
  _stop) do_stop "$dir" ;;
  _populate) do_populate "$dir" ;;
  _session) do_session "$dir" "$@" ;;
  *) usage ;;
esac
