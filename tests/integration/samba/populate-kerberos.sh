#!/bin/bash
# Adds the Kerberos constrained-delegation set-up to a provisioned Samba AD DC (tests only).
# Usage: populate-kerberos.sh DIR   (DIR holds etc/smb.conf of the DC; running or not)
# Writes DIR/easproxy.keytab, DIR/easproxy-noany.keytab, DIR/exchange.keytab, DIR/other.keytab,
# DIR/exch1.keytab, DIR/exch2.keytab.
#   easproxy        proxy service account: trusted for delegation to HTTP/exchange only, any protocol
#   easproxy-noany  same delegation list, but "Kerberos only" (no protocol transition): a broken set-up
#   exchange        holds HTTP/exchange.corp.example.test, the delegation target
#   otherweb        holds HTTP/other.corp.example.test, outside every delegation list
#   exch1, exch2    hold HTTP/exch1... and HTTP/exch2.corp.example.test: two Exchange servers, each with its
#                   own key, both delegation targets of easproxy (upstream.servers with a service each)
#   alice, bob      users (UPN user@corp.example.test); disabled: a disabled user
#   krbupn          a user whose UPN (kerberos.upn@corp.example.test) differs from sAMAccountName@domain
# Idempotent: accounts that already exist (e.g. made by samba-dc.sh populate) are kept as they are.
set -euo pipefail
D=${1:?usage: populate-kerberos.sh DIR}
S=(-s "$D/etc/smb.conf")
REALM=CORP.EXAMPLE.TEST

exists() { samba-tool user show "$1" "${S[@]}" >/dev/null 2>&1; }
user() {  # user NAME PASSWORD
  exists "$1" || samba-tool user create "$1" "$2" "${S[@]}" >/dev/null
}
spn() {  # spn SPN ACCOUNT
  samba-tool spn list "$2" "${S[@]}" 2>/dev/null | grep -qi "^\s*$1\$" || samba-tool spn add "$1" "$2" "${S[@]}"
}
set_attribute() {  # set_attribute ATTRIBUTE VALUE ACCOUNT... (directly in sam.ldb: no LDAP bind needed)
  /usr/bin/python3 - "$D/etc/smb.conf" "$@" <<'PY'
import sys, ldb
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB
lp = LoadParm()
lp.load(sys.argv[1])
db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
attribute, value = sys.argv[2], sys.argv[3]
for name in sys.argv[4:]:
    found = db.search(base=db.domain_dn(), expression="(sAMAccountName=%s)" % name, attrs=[])
    msg = ldb.Message(found[0].dn)
    msg[attribute] = ldb.MessageElement(value, ldb.FLAG_MOD_REPLACE, attribute)
    db.modify(msg)
PY
}

user alice 'Al1ce!Passw0rd'
user bob 'B0b!Passw0rd'
user disabled 'D1sabled!Passw0rd'
samba-tool user disable disabled "${S[@]}" >/dev/null
# krbupn's UPN is not sAMAccountName@domain: kcd-check's cross-check for enterprise-name problems.
user krbupn 'Krb!Upn0Passw0rd'
set_attribute userPrincipalName kerberos.upn@corp.example.test krbupn

user easproxy 'Pr0xy!Passw0rd'
user easproxy-noany 'N0any!Passw0rd'
user exchange 'Exch!Passw0rd1'
user otherweb 'Oth3r!Passw0rd'
user exch1 'Exch1!Passw0rd'
user exch2 'Exch2!Passw0rd'
spn HTTP/easproxy.corp.example.test easproxy
spn HTTP/easproxy-noany.corp.example.test easproxy-noany
spn HTTP/exchange.corp.example.test exchange
spn HTTP/other.corp.example.test otherweb
spn HTTP/exch1.corp.example.test exch1
spn HTTP/exch2.corp.example.test exch2
# The KDC issues RC4 tickets for accounts without msDS-SupportedEncryptionTypes=24 (AES).
set_attribute msDS-SupportedEncryptionTypes 24 easproxy easproxy-noany exchange otherweb exch1 exch2

any_protocol() {  # any_protocol ACCOUNT on|off (samba-tool refuses to set a flag that is already set)
  local want=False
  [ "$2" = on ] && want=True
  samba-tool delegation show "$1" "${S[@]}" | grep -q "TRUSTED_TO_AUTHENTICATE_FOR_DELEGATION: $want" ||
    samba-tool delegation for-any-protocol "$1" "$2" "${S[@]}" >/dev/null
}
any_protocol easproxy on
any_protocol easproxy-noany off
for a in easproxy easproxy-noany; do
  samba-tool delegation show "$a" "${S[@]}" | grep -qi 'HTTP/exchange.corp.example.test' ||
    samba-tool delegation add-service "$a" HTTP/exchange.corp.example.test "${S[@]}" >/dev/null
done
for target in HTTP/exch1.corp.example.test HTTP/exch2.corp.example.test; do
  samba-tool delegation show easproxy "${S[@]}" | grep -qi "$target" ||
    samba-tool delegation add-service easproxy "$target" "${S[@]}" >/dev/null
done

keytab() {  # keytab FILE PRINCIPAL
  rm -f "$D/$1"
  samba-tool domain exportkeytab "$D/$1" --principal="$2@$REALM" "${S[@]}" >/dev/null 2>&1
}
keytab easproxy.keytab easproxy
keytab easproxy-noany.keytab easproxy-noany
keytab exchange.keytab HTTP/exchange.corp.example.test
keytab other.keytab HTTP/other.corp.example.test
keytab exch1.keytab HTTP/exch1.corp.example.test
keytab exch2.keytab HTTP/exch2.corp.example.test
