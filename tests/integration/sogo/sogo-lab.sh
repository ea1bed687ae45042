#!/bin/bash
# A real ActiveSync backend for tests: SOGo 5.8 (Debian bookworm packages sogo + sogo-activesync)
# with PostgreSQL 15 (users table + SOGo's profile/folder/cache tables), Dovecot IMAP (passwd-file, Maildir)
# and memcached, everything on 127.0.0.1 and under DIR.
# Usage: sogo-lab.sh start DIR PORT     set up DIR (if new), start, wait for sogod (packages: scripts/install-deps.sh --with-sogo)
#        sogo-lab.sh stop DIR           end the processes that start recorded in DIR/pids (by PID only)
#        sogo-lab.sh status DIR
#        sogo-lab.sh deliver DIR USER SUBJECT [BODY]   one more message in USER's INBOX (wakes a Ping)
# Users: alice, bob (mail <name>@corp.example.test). alice's INBOX holds 3 messages, bob's 1.
# ActiveSync URL: http://127.0.0.1:PORT/SOGo/Microsoft-Server-ActiveSync?Cmd=...&User=...&DeviceId=...&DeviceType=...
# sogod runs with SOGoTrustProxyAuthentication = YES: the user is whatever the request header
# `x-webobjects-remote-user` says ("alice" - exact case - or "alice@corp.example.test" - any case; the first of
# several such headers wins; User= in the query is ignored). Without it: 401 (empty body) or 403 (WBXML body).
# NB: SOPE also derives that user from an `Authorization: Basic` header WITHOUT checking the password, so a
# front end must strip client Authorization headers as well as client x-webobjects-remote-user headers.
# Dovecot accepts any password for alice/bob from 127.0.0.1 (nopassword): sogod has no password to give it
# when the front end authenticated the user. Env: SOGO_WORKERS (default 3), SOGO_EAS_DEBUG=1 (log EAS XML).
# Ping waits HeartbeatInterval rounded down to a multiple of 5 s (SOGoInternalSyncInterval), at least 5 s.
set -euo pipefail
PKGS="sogo sogo-activesync dovecot-imapd memcached libwbxml2-utils postgresql-15 postgresql-client-15 curl python3"
PGBIN=/usr/lib/postgresql/15/bin
DOMAIN=corp.example.test
DBPW=sogo-lab-db
USERS="alice bob"
ORDER="sogod dovecot memcached postgres"   # stop order

die() { echo "sogo-lab: $*" >&2; exit 1; }
now() { echo $(( $(date +%s%N) / 1000000 )); }                  # milliseconds
since() { local ms=$(( $(now) - $1 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }  # seconds since $1
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups "$@"; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # first port from $1 upwards that nothing listens on and that is not in $2
  local p=$1; while listening "$p" || [[ " $2 " == *" $p "* ]]; do p=$((p+1)); done; echo "$p"; }
statf() { [ -r "/proc/$1/stat" ] && sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f"$2"; }
starttime() { statf "$1" 20; }
running() { local st; st=$(statf "$1" 1) && [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]; }  # zombies count as ended
alive() { # name: is the recorded PID running and still the very process we started (same start time)?
  local f="$D/pids/$1.pid" p t; [ -s "$f" ] || return 1; read -r p t < "$f"
  [ -n "$t" ] && running "$p" && [ "$(starttime "$p")" = "$t" ]; }
pidof_lab() { cut -d' ' -f1 "$D/pids/$1.pid"; }
waitfor() { # seconds, description, command...
  local t=$1 what=$2; shift 2; local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $end ] || { echo "sogo-lab: timed out after ${t}s waiting for $what" >&2; return 1; }; sleep 0.2; done; }

check_pkgs() { # the packages come from scripts/install-deps.sh --with-sogo (the one place that installs)
  local missing="" p
  for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; done
  [ -z "$missing" ] || die "missing Debian packages:$missing (run scripts/install-deps.sh --with-sogo)"
}

choose_ports() { # PORT is sogod's; the others are kept from DIR/ports.env while ours run or stay free
  local want=$SOGO_PORT; SOGO_PORT="" PG_PORT="" IMAP_PORT="" MC_PORT=""
  if [ -s "$D/ports.env" ]; then . "$D/ports.env"; fi
  if alive sogod && [ "$SOGO_PORT" != "$want" ]; then die "sogod of $D already runs on port $SOGO_PORT (stop it first)"; fi
  SOGO_PORT=$want
  keep() { [ -n "$2" ] && { alive "$1" || ! listening "$2"; }; }
  local taken="$SOGO_PORT"
  keep postgres "$PG_PORT" || PG_PORT=$(free_port $((SOGO_PORT + 100)) "$taken"); taken="$taken $PG_PORT"
  keep dovecot "$IMAP_PORT" || IMAP_PORT=$(free_port $((SOGO_PORT + 110)) "$taken"); taken="$taken $IMAP_PORT"
  keep memcached "$MC_PORT" || MC_PORT=$(free_port $((SOGO_PORT + 120)) "$taken")
  printf 'SOGO_PORT=%s\nPG_PORT=%s\nIMAP_PORT=%s\nMC_PORT=%s\n' "$SOGO_PORT" "$PG_PORT" "$IMAP_PORT" "$MC_PORT" > "$D/ports.env"
}

spawn() { # name, log, command... : start detached, record the PID (setsid and setpriv exec, so $! is the daemon)
  local n=$1 log=$2; shift 2
  setsid "$@" < /dev/null >> "$log" 2>&1 &
  local p=$! t=""; for _ in 1 2 3 4 5 6 7 8 9 10; do t=$(starttime $p) && [ -n "$t" ] && break; sleep 0.05; done
  echo "$p $t" > "$D/pids/$n.pid"
}

pg_ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
start_postgres() {
  if ! alive postgres; then
  if [ ! -s "$D/pg/PG_VERSION" ]; then
    rm -rf "$D/pg"; install -d -o postgres -g postgres -m 700 "$D/pg"
    as postgres "$PGBIN/initdb" -D "$D/pg" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --no-sync -E UTF8 --locale=C.UTF-8 > "$D/log/initdb.log" 2>&1 || { tail -5 "$D/log/initdb.log"; die "initdb failed"; }
  fi
  install -d -o postgres -g postgres -m 700 "$D/run/pg"
  spawn postgres "$D/log/postgres.log" setpriv --reuid=postgres --regid=postgres --init-groups \
    "$PGBIN/postgres" -D "$D/pg" -c listen_addresses=127.0.0.1 -p "$PG_PORT" -c unix_socket_directories="$D/run/pg" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=60
  fi
  waitfor 30 postgres pg_ready || { tail -5 "$D/log/postgres.log"; die "postgres did not start"; }
  local psql="$PGBIN/psql -q -X -v ON_ERROR_STOP=1 -h $D/run/pg -p $PG_PORT"
  if [ -z "$(as postgres $psql -U postgres -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='sogo'")" ]; then
    as postgres $psql -U postgres -d postgres -c "CREATE ROLE sogo LOGIN PASSWORD '$DBPW'" >/dev/null; fi
  if [ -z "$(as postgres $psql -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='sogo'")" ]; then
    as postgres $psql -U postgres -d postgres -c "CREATE DATABASE sogo OWNER sogo" >/dev/null; fi
  as postgres $psql -U sogo -d sogo >/dev/null <<EOF
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS sogo_users (c_uid VARCHAR(128) PRIMARY KEY, c_name VARCHAR(128) NOT NULL,
  c_password VARCHAR(256) NOT NULL, c_cn VARCHAR(256), mail VARCHAR(256));
INSERT INTO sogo_users VALUES
  ('alice', 'alice', 'alice-pw', 'Alice Example', 'alice@$DOMAIN'),
  ('bob',   'bob',   'bob-pw',   'Bob Example',   'bob@$DOMAIN')
  ON CONFLICT (c_uid) DO NOTHING;
EOF
}

start_memcached() {
  alive memcached && return 0
  spawn memcached "$D/log/memcached.log" memcached -u memcache -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 32 -c 256 -t 1
  waitfor 10 memcached listening "$MC_PORT" || { tail -5 "$D/log/memcached.log"; die "memcached did not start"; }
}

msg() { # to, from, subject, body, seconds ago
  printf 'Return-Path: <%s>\nFrom: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <%s.%s@%s>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n%s\n' \
    "$2" "$2" "$1" "$3" "$(date -R -d "@$(( $(date +%s) - $5 ))")" "$(date +%s%N)" "$RANDOM" "$DOMAIN" "$4"; }
deliver() { # user, n, to, from, subject, body, age  (Maildir: write in tmp/, then rename into new/)
  local u=$1 n=$2; shift 2; local f; f="$(( $(date +%s) - $5 )).M${n}P$$R$RANDOM.sogolab"
  msg "$@" > "$D/mail/$u/tmp/$f"; chown nobody:nogroup "$D/mail/$u/tmp/$f"; mv "$D/mail/$u/tmp/$f" "$D/mail/$u/new/$f"; }
setup_dovecot() {
  install -d -m 755 "$D/dovecot" "$D/run/dovecot"
  if [ ! -d "$D/mail" ]; then
    local u; for u in $USERS; do install -d -m 700 "$D/mail/$u" "$D/mail/$u/new" "$D/mail/$u/cur" "$D/mail/$u/tmp"; done
    deliver alice 1 "alice@$DOMAIN" "bob@$DOMAIN" "Lab message one" "First message for alice." 7200
    deliver alice 2 "alice@$DOMAIN" "carol@example.org" "Lab message two" "Second message for alice." 3600
    deliver alice 3 "alice@$DOMAIN" "dave@example.org" "Lab message three" "Third message for alice." 60
    deliver bob 1 "bob@$DOMAIN" "alice@$DOMAIN" "Bob private message" "Only bob should see this." 600
    chown -R nobody:nogroup "$D/mail"
  fi
  # empty password + nopassword: any password (sogod sends an empty one under proxy auth), only from 127.0.0.1
  : > "$D/dovecot/users"
  for u in $USERS; do
    echo "$u::65534:65534::$D/mail/$u::nopassword=y allow_nets=127.0.0.1/32" >> "$D/dovecot/users"; done
  cat > "$D/dovecot/dovecot.conf" <<EOF
# sogo-lab: Dovecot for SOGo, 127.0.0.1:$IMAP_PORT only
instance_name = sogo-lab-$IMAP_PORT
base_dir = $D/run/dovecot
state_dir = $D/run/dovecot-state
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = $D/log/dovecot.log
mail_location = maildir:~
mail_uid = 65534
mail_gid = 65534
first_valid_uid = 1000
first_valid_gid = 1000
mail_privileged_group =
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $D/dovecot/users
}
userdb {
  driver = passwd-file
  args = username_format=%n $D/dovecot/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
  process_min_avail = 0
}
service anvil {
  chroot =
}
service stats {
  inet_listener http {
    port = 0
  }
}
EOF
}
start_dovecot() {
  alive dovecot && return 0
  spawn dovecot "$D/log/dovecot.out" dovecot -F -c "$D/dovecot/dovecot.conf"
  waitfor 20 dovecot listening "$IMAP_PORT" || { tail -5 "$D/log/dovecot.out" "$D/log/dovecot.log" 2>/dev/null; die "dovecot did not start"; }
  # SOGo's mail Sync keys are UIDNEXT-HIGHESTMODSEQ from SELECT, and Dovecot reports HIGHESTMODSEQ only for
  # mailboxes where CONDSTORE was once enabled; SOGo enables it only after that check, so a fresh mailbox
  # never syncs (empty answers, SyncKey stays -1). Enable it once per mailbox, as any IMAP client would.
  timeout 30 python3 - "$IMAP_PORT" $USERS <<'PY' || die "could not enable CONDSTORE in the mailboxes"
import imaplib, re, sys
for user in sys.argv[2:]:
    m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
    m.login(user, "x")
    m._simple_command("ENABLE", "CONDSTORE")
    for line in m.list()[1]:
        name = re.search(rb'(?:"((?:[^"\\]|\\.)*)"|(\S+))$', line)
        m.select('"%s"' % (name.group(1) or name.group(2)).decode(), readonly=True)
    m.logout()
PY
}

setup_sogo() {
  install -d -o sogo -g sogo -m 755 "$D/sogo" "$D/sogo/defaults" "$D/sogo/spool"
  # GNUstep reads sogod's persistent domain from GNUSTEP_USER_DEFAULTS_DIR; point it into DIR. Its values
  # override /etc/sogo/sogo.conf (left untouched); command-line arguments override both.
  sed "s#^GNUSTEP_USER_DEFAULTS_DIR=.*#GNUSTEP_USER_DEFAULTS_DIR=$D/sogo/defaults#" /etc/GNUstep/GNUstep.conf > "$D/sogo/GNUstep.conf"
  local db="postgresql://sogo:$DBPW@127.0.0.1:$PG_PORT/sogo"
  cat > "$D/sogo/defaults/sogod.plist" <<EOF
{
  WOPort = "127.0.0.1:$SOGO_PORT";
  WOWorkersCount = ${SOGO_WORKERS:-3};
  WOListenQueueSize = 128;
  WOPidFile = "$D/sogo/sogod.pid";
  WOLogFile = "$D/log/sogod.log";
  SOGoTrustProxyAuthentication = YES;
  SOGoProfileURL = "$db/sogo_user_profile";
  OCSFolderInfoURL = "$db/sogo_folder_info";
  OCSSessionsFolderURL = "$db/sogo_sessions_folder";
  OCSEMailAlarmsFolderURL = "$db/sogo_alarms_folder";
  OCSCacheFolderURL = "$db/sogo_cache_folder";
  OCSStoreURL = "$db/sogo_store";
  OCSAclURL = "$db/sogo_acl";
  SOGoUserSources = (
    {
      type = sql;
      id = users;
      viewURL = "$db/sogo_users";
      canAuthenticate = YES;
      isAddressBook = NO;
      userPasswordAlgorithm = plain;
    }
  );
  SOGoMailDomain = "$DOMAIN";
  SOGoIMAPServer = "imap://127.0.0.1:$IMAP_PORT";
  SOGoSieveServer = "";
  SOGoSieveScriptsEnabled = NO;
  SOGoVacationEnabled = NO;
  SOGoForwardEnabled = NO;
  SOGoMailingMechanism = smtp;
  SOGoSMTPServer = "smtp://127.0.0.1:25";
  SOGoMemcachedHost = "127.0.0.1:$MC_PORT";
  SOGoTimeZone = UTC;
  SOGoLanguage = English;
  SOGoSentFolderName = Sent;
  SOGoTrashFolderName = Trash;
  SOGoDraftsFolderName = Drafts;
  SOGoMailMessageCheck = manually;
  SOGoAppointmentSendEMailNotifications = NO;
  SOGoEnableEMailAlarms = NO;
  SOGoMaximumPingInterval = 3540;
  SOGoMaximumSyncInterval = 3540;
  SOGoInternalSyncInterval = 5;
  SOGoEASDebugEnabled = $([ "${SOGO_EAS_DEBUG:-0}" = 1 ] && echo YES || echo NO);
}
EOF
  chown -R sogo:sogo "$D/sogo"
}
sogo_ready() { local c; c=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -X OPTIONS -H 'x-webobjects-remote-user: alice' \
  "http://127.0.0.1:$SOGO_PORT/SOGo/Microsoft-Server-ActiveSync?User=alice&DeviceId=LABPROBE0001&DeviceType=probe"); [ "$c" = 200 ]; }
start_sogo() {
  if alive sogod; then waitfor 60 sogod sogo_ready; return; fi
  listening "$SOGO_PORT" && die "something else already listens on 127.0.0.1:$SOGO_PORT"
  rm -f "$D/sogo/sogod.pid"; touch "$D/log/sogod.log"; chown sogo:sogo "$D/log/sogod.log"
  spawn sogod "$D/log/sogod.out" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME="$D/sogo" \
    GNUSTEP_CONFIG_FILE="$D/sogo/GNUstep.conf" setpriv --reuid=sogo --regid=sogo --init-groups \
    /usr/sbin/sogod -WONoDetach YES
  waitfor 90 "sogod on 127.0.0.1:$SOGO_PORT" sogo_ready || { tail -15 "$D/log/sogod.log" "$D/log/sogod.out" 2>/dev/null; die "sogod did not answer"; }
}

start() {
  [ $# -eq 2 ] || die "usage: $0 start DIR PORT"
  D=$(realpath -m "$1"); SOGO_PORT=$2
  local t0; t0=$(now)
  mkdir -p "$D"/{log,pids,run}; chmod 755 "$D" "$D/run" "$D/log"
  [ "$(id -u)" = 0 ] || die "run as root"
  setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$D" || die "$D must be reachable by other users (sogo, postgres, dovecot)"
  check_pkgs
  choose_ports
  start_postgres
  start_memcached
  setup_dovecot; start_dovecot
  setup_sogo; start_sogo
  echo "sogo-lab: up in $(since "$t0")s: sogod http://127.0.0.1:$SOGO_PORT/SOGo/Microsoft-Server-ActiveSync" \
       "(postgres :$PG_PORT, imap :$IMAP_PORT, memcached :$MC_PORT; logs $D/log)"
}

children() { # PIDs whose parent is $1 (pure bash: /proc/N/stat is "pid (comm) state ppid ...")
  local f l r; for f in /proc/[0-9]*/stat; do { read -r l < "$f"; } 2>/dev/null || continue; r=${l##*) }; r=${r#* }
    [ "${r%% *}" = "$1" ] && { f=${f#/proc/}; echo "${f%/stat}"; }; done; true; }
ours() { running "${1%%:*}" && [ "$(starttime "${1%%:*}")" = "${1#*:}" ]; }   # PID:STARTTIME still that process?
stop_one() { # name, signal, seconds: signal the recorded PID, wait that long at most, then KILL it and its children
  local n=$1 sig=$2 f="$D/pids/$1.pid" p kids k
  [ -s "$f" ] || return 0
  p=$(pidof_lab "$n")
  if alive "$n"; then
    kids=$(for k in $(children "$p"); do echo "$k:$(starttime "$k")"; done)   # e.g. sogod's workers
    kill -"$sig" "$p" 2>/dev/null || true
    local end=$((SECONDS + $3)) gone=""
    while running "$p" && [ $SECONDS -lt $end ]; do
      sleep 0.1
      # sogod's watchdog lingers ~10 s after its workers have exited ("all children exited. We now
      # terminate."): once they are all gone for a second, it has nothing left to clean up
      if [ "$n" = sogod ]; then
        for k in $kids; do ours "$k" && { gone=""; continue 2; }; done
        if [ -z "$gone" ]; then gone=$SECONDS; elif [ $((SECONDS - gone)) -ge 1 ]; then break; fi
      fi
    done
    if running "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
    for k in $kids; do if ours "$k"; then kill -KILL "${k%%:*}" 2>/dev/null || true; fi; done
  fi
  rm -f "$f"
}

stop() {
  [ $# -eq 1 ] || die "usage: $0 stop DIR"
  D=$(realpath -m "$1"); [ -d "$D/pids" ] || return 0
  local t0 n; t0=$(now); for n in sogod:TERM:10 dovecot:TERM:10 memcached:TERM:5 postgres:INT:20; do
    IFS=: read -r a b c <<< "$n"; stop_one "$a" "$b" "$c"; done
  echo "sogo-lab: stopped ($D) in $(since "$t0")s"
}
status() {
  [ $# -eq 1 ] || die "usage: $0 status DIR"
  D=$(realpath -m "$1"); local n rc=0
  for n in $ORDER; do if alive "$n"; then echo "$n: running (pid $(pidof_lab "$n"))"; else echo "$n: stopped"; rc=1; fi; done
  return $rc
}

deliver_cmd() { # DIR USER SUBJECT [BODY]: drop one more message into USER's INBOX (e.g. to wake a Ping)
  [ $# -ge 3 ] || die "usage: $0 deliver DIR USER SUBJECT [BODY]"
  D=$(realpath -m "$1"); [ -d "$D/mail/$2/new" ] || die "no mailbox for $2 in $D"
  deliver "$2" 9 "$2@$DOMAIN" "lab@$DOMAIN" "$3" "${4:-Delivered by sogo-lab.sh deliver.}" 0
}

cmd=${1:-}; shift || true
case "$cmd" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) status "$@" ;;
  deliver) deliver_cmd "$@" ;;
  *) die "usage: $0 start DIR PORT | stop DIR | status DIR | deliver DIR USER SUBJECT [BODY]" ;;
esac
