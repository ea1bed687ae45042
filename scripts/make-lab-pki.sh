#!/usr/bin/env bash
# Generates a lab PKI shaped like the deployment guide's (AD CS root -> issuing CA -> server and
# Workspace ONE device certificates), the CRLs and an AD-style users.ldif, into OUTDIR.
# Usage: make-lab-pki.sh OUTDIR [--key-type p256|rsa2048]
# The file names are a contract (docs/deployment.md, tests/integration/harness.py, the demo rely on them).
# Idempotent: OUTDIR is regenerated from scratch on every run. The CA databases stay in OUTDIR/ca/ so a
# test can revoke more certificates later with `openssl ca -config OUTDIR/ca/openssl.cnf -name issuing ...`.
set -euo pipefail

usage() {
  echo "usage: $0 OUTDIR [--key-type p256|rsa2048]" >&2
  exit 2
}

out=""
key_type="p256"
while (($#)); do
  case "$1" in
    --key-type) [ $# -ge 2 ] || usage; key_type="$2"; shift 2 ;;
    --key-type=*) key_type="${1#*=}"; shift ;;
    -h|--help) usage ;;
    -*) echo "$0: unknown option '$1'" >&2; usage ;;
    *) [ -z "$out" ] || usage; out="$1"; shift ;;
  esac
done
[ -n "$out" ] || usage
case "$key_type" in
  p256) keygen=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) ;;
  rsa2048) keygen=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048) ;;
  *) echo "$0: --key-type must be p256 or rsa2048, got '$key_type'" >&2; exit 2 ;;
esac

# The lab domain; users.ldif and the SID extension use these (contract in docs and tests).
readonly DOMAIN_DN="DC=corp,DC=example,DC=test"
readonly REALM_SUFFIX="corp.example.test"
readonly DOMAIN_SID="S-1-5-21-1004336348-1177238915-682003330"
readonly GROUP_DN="CN=EAS Users,OU=Groups,${DOMAIN_DN}"
readonly ISSUING_SUBJECT="/DC=test/DC=example/DC=corp/CN=EASEdge Lab Issuing CA"
readonly ROOT_SUBJECT="/DC=test/DC=example/DC=corp/CN=EASEdge Lab Root CA"
readonly ROGUE_SUBJECT="/O=Rogue/CN=Rogue CA"

# Only ever wipe a folder this script made (never a typo like $HOME).
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -f "$out/ca/openssl.cnf" ]; then
  echo "$0: '$out' exists, is not empty and is not a lab PKI folder; refusing to overwrite it" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out/devices" "$out/ca"
out="$(cd "$out" && pwd)"
ca="$out/ca"
umask 077

# Dates for `openssl ca -startdate/-enddate` (GeneralizedTime, UTC).
when() { date -u -d "$1" +%Y%m%d%H%M%SZ; }
readonly NOW_MINUS_1H="$(when '-1 hour')"

new_key() { openssl genpkey "${keygen[@]}" -out "$1" 2>/dev/null; }

# The openssl ca configuration: one section per CA, extension sections per certificate kind.
# One `openssl ca` section per CA: NAME CERTIFICATE KEY.
ca_section() {
  cat <<EOF
[ $1 ]
dir = $ca/$1
database = \$dir/index.txt
new_certs_dir = \$dir/certs
certificate = $2
private_key = $3
crlnumber = \$dir/crlnumber
serial = \$dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
default_crl_days = 30

EOF
}

{
printf '[ ca ]\ndefault_ca = issuing\n\n'
ca_section root "$out/root-ca.pem" "$out/root-ca.key"
ca_section issuing "$out/issuing-ca.pem" "$out/issuing-ca.key"
ca_section rogue "$ca/rogue-ca.pem" "$ca/rogue-ca.key"
cat <<EOF
[ policy_any ]
commonName = supplied
organizationName = optional
domainComponent = optional

[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused

[ root_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ issuing_ext ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, DNS:exchange.${REALM_SUFFIX}
EOF
} >"$ca/openssl.cnf"

for name in root issuing rogue; do
  mkdir -p "$ca/$name/certs"
  : >"$ca/$name/index.txt"
  echo 1000 >"$ca/$name/crlnumber"
  openssl rand -hex 16 >"$ca/$name/serial"
done

# sign CA_NAME CSR OUT EXTFILE SECTION START END
sign() {
  openssl ca -batch -notext -preserveDN -rand_serial -config "$ca/openssl.cnf" -name "$1" \
    -in "$2" -out "$3" -extfile "$4" -extensions "$5" -startdate "$6" -enddate "$7" 2>"$ca/last-sign.log" ||
    { cat "$ca/last-sign.log" >&2; exit 1; }
}

# self_signed_ca NAME KEY PEM SUBJECT
self_signed_ca() {
  new_key "$2"
  openssl req -new -config "$ca/openssl.cnf" -key "$2" -subj "$4" -out "$ca/$1.csr"
  openssl ca -batch -notext -preserveDN -rand_serial -selfsign -config "$ca/openssl.cnf" -name "$1" \
    -keyfile "$2" -in "$ca/$1.csr" -out "$3" -extfile "$ca/openssl.cnf" -extensions root_ext \
    -startdate "$NOW_MINUS_1H" -enddate "$(when '+10 years')" 2>"$ca/last-sign.log" ||
    { cat "$ca/last-sign.log" >&2; exit 1; }
}

# --- CAs -------------------------------------------------------------------------------------------
self_signed_ca root "$out/root-ca.key" "$out/root-ca.pem" "$ROOT_SUBJECT"
self_signed_ca rogue "$ca/rogue-ca.key" "$ca/rogue-ca.pem" "$ROGUE_SUBJECT"

new_key "$out/issuing-ca.key"
openssl req -new -config "$ca/openssl.cnf" -key "$out/issuing-ca.key" -subj "$ISSUING_SUBJECT" -out "$ca/issuing.csr"
sign root "$ca/issuing.csr" "$out/issuing-ca.pem" "$ca/openssl.cnf" issuing_ext "$NOW_MINUS_1H" "$(when '+5 years')"
cat "$out/issuing-ca.pem" "$out/root-ca.pem" >"$out/ca-bundle.pem"
cp "$ca/rogue-ca.pem" "$out/rogue-ca.pem"

# --- server certificate -----------------------------------------------------------------------------
new_key "$out/server.key"
openssl req -new -config "$ca/openssl.cnf" -key "$out/server.key" -subj "/CN=exchange.${REALM_SUFFIX}" -out "$ca/server.csr"
sign issuing "$ca/server.csr" "$out/server.pem" "$ca/openssl.cnf" server_ext "$NOW_MINUS_1H" "$(when '+1 year')"
cat "$out/server.pem" "$out/issuing-ca.pem" >"$out/server-chain.pem"

# --- device certificates ----------------------------------------------------------------------------
# user_sid RID -> the account's SID string.
user_sid() { echo "${DOMAIN_SID}-$1"; }

# device NAME CA UPN EMAIL EKU START END [SID]
# UPN or EMAIL may be empty (left out of the SAN). SID adds the KB5014754 SID extension.
device() {
  local name="$1" ca_name="$2" upn="$3" email="$4" eku="$5" start="$6" end="$7" sid="${8:-}"
  local user="${upn%%@*}"
  [ -n "$user" ] || user="${email%%@*}"
  local ext="$ca/$name.ext" san=()
  [ -z "$upn" ] || san+=("otherName:1.3.6.1.4.1.311.20.2.3;UTF8:${upn}")
  [ -z "$email" ] || san+=("email:${email}")
  {
    echo "[ device_ext ]"
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature, keyEncipherment"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    (IFS=,; echo "subjectAltName = ${san[*]}")
    if [ -n "$sid" ]; then
      # szOID_NTDS_CA_SECURITY_EXT: SEQUENCE { [0] { OID ...25.2.1, [0] EXPLICIT OCTET STRING "S-1-5-..." } }
      echo "1.3.6.1.4.1.311.25.2 = ASN1:SEQUENCE:sid_ext"
      echo "[ sid_ext ]"
      echo "sid = IMPLICIT:0,SEQUENCE:sid_other_name"
      echo "[ sid_other_name ]"
      echo "type = OID:1.3.6.1.4.1.311.25.2.1"
      echo "value = EXPLICIT:0,OCTETSTRING:${sid}"
    fi
  } >"$ext"
  new_key "$out/devices/$name.key"
  openssl req -new -config "$ca/openssl.cnf" -key "$out/devices/$name.key" \
    -subj "/CN=WorkspaceONEUEM.${user}" -out "$ca/$name.csr"
  sign "$ca_name" "$ca/$name.csr" "$out/devices/$name.pem" "$ext" device_ext "$start" "$end"
  local chain="$out/issuing-ca.pem"
  [ "$ca_name" != rogue ] || chain="$ca/rogue-ca.pem"
  openssl pkcs12 -export -passout pass: -in "$out/devices/$name.pem" -inkey "$out/devices/$name.key" \
    -certfile "$chain" -name "$name" -out "$out/devices/$name.p12"
}

valid_end="$(when '+1 year')"
device alice issuing "alice@${REALM_SUFFIX}" "alice@${REALM_SUFFIX}" clientAuth "$NOW_MINUS_1H" "$valid_end" \
  "$(user_sid 1104)"
device bob issuing "bob@${REALM_SUFFIX}" "bob@${REALM_SUFFIX}" clientAuth "$NOW_MINUS_1H" "$valid_end"
device revoked issuing "carol@${REALM_SUFFIX}" "carol@${REALM_SUFFIX}" clientAuth "$NOW_MINUS_1H" "$valid_end"
device expired issuing "dave@${REALM_SUFFIX}" "dave@${REALM_SUFFIX}" clientAuth "$(when '-2 years')" "$(when '-1 day')"
device notyet issuing "erin@${REALM_SUFFIX}" "erin@${REALM_SUFFIX}" clientAuth "$(when '+1 year')" "$(when '+2 years')"
device noupn issuing "" "noupn@${REALM_SUFFIX}" clientAuth "$NOW_MINUS_1H" "$valid_end"
device serverauth issuing "frank@${REALM_SUFFIX}" "frank@${REALM_SUFFIX}" serverAuth "$NOW_MINUS_1H" "$valid_end"
device untrusted rogue "alice@${REALM_SUFFIX}" "alice@${REALM_SUFFIX}" clientAuth "$NOW_MINUS_1H" "$valid_end"

# --- CRLs -------------------------------------------------------------------------------------------
openssl ca -batch -config "$ca/openssl.cnf" -name issuing -revoke "$out/devices/revoked.pem" \
  -crl_reason keyCompromise 2>"$ca/last-sign.log" || { cat "$ca/last-sign.log" >&2; exit 1; }
openssl ca -batch -config "$ca/openssl.cnf" -name issuing -gencrl -out "$out/issuing.crl" 2>"$ca/last-sign.log" ||
  { cat "$ca/last-sign.log" >&2; exit 1; }
openssl ca -batch -config "$ca/openssl.cnf" -name root -gencrl -out "$out/root.crl" 2>"$ca/last-sign.log" ||
  { cat "$ca/last-sign.log" >&2; exit 1; }

# --- users.ldif --------------------------------------------------------------------------------------
# objectSid binary: revision 1, 5 sub-authorities, authority 5 (big-endian, 6 bytes), then each
# sub-authority as 4 bytes little-endian: 21, the three domain parts, the RID.
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
object_sid_base64() {
  local rid="$1" IFS=-
  # shellcheck disable=SC2086
  set -- ${DOMAIN_SID#S-1-5-}
  printf "\\x01\\x05\\x00\\x00\\x00\\x00\\x00\\x05$(le32 "$1")$(le32 "$2")$(le32 "$3")$(le32 "$4")$(le32 "$rid")" | base64 -w0
}

# altSecurityIdentities issuer+serial for bob (the strong explicit binding a Workspace ONE certificate
# without the SID extension needs under full enforcement): issuer RDNs in encoded order, serial bytes reversed.
issuer_dn_ad() {
  openssl x509 -in "$1" -noout -issuer -nameopt sep_comma_plus,space_eq | sed -e 's/^issuer=//' -e 's/ = /=/g'
}
reversed_serial() {
  local hex
  hex="$(openssl x509 -in "$1" -noout -serial | sed 's/^serial=//')"
  ((${#hex} % 2 == 0)) || hex="0$hex"
  local out="" i
  for ((i = ${#hex} - 2; i >= 0; i -= 2)); do out+="${hex:i:2}"; done
  echo "${out,,}"
}

# user LOGIN RID UAC [GROUP] [ALTSEC]
user_entry() {
  local login="$1" rid="$2" uac="$3" group="${4:-}" altsec="${5:-}"
  cat <<EOF
dn: CN=${login},CN=Users,${DOMAIN_DN}
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
cn: ${login}
sAMAccountName: ${login}
userPrincipalName: ${login}@${REALM_SUFFIX}
objectSid:: $(object_sid_base64 "$rid")
userAccountControl: ${uac}
whenCreated: 20200101000000.0Z
mail: ${login}@${REALM_SUFFIX}
EOF
  [ -z "$group" ] || echo "memberOf: ${group}"
  [ -z "$altsec" ] || echo "altSecurityIdentities: ${altsec}"
  echo
}

{
  echo "version: 1"
  echo
  echo "# Lab directory for easedge (generated by scripts/make-lab-pki.sh). Domain SID ${DOMAIN_SID}."
  echo "# frank is not in the EAS Users group; disabled has userAccountControl 514 (ACCOUNTDISABLE)."
  echo
  user_entry alice 1104 512 "$GROUP_DN"
  user_entry bob 1105 512 "$GROUP_DN" \
    "X509:<I>$(issuer_dn_ad "$out/devices/bob.pem")<SR>$(reversed_serial "$out/devices/bob.pem")"
  user_entry carol 1106 512 "$GROUP_DN"
  user_entry dave 1107 512 "$GROUP_DN"
  user_entry erin 1108 512 "$GROUP_DN"
  user_entry frank 1109 512
  user_entry disabled 1110 514 "$GROUP_DN"
  cat <<EOF
dn: ${GROUP_DN}
objectClass: top
objectClass: group
cn: EAS Users
sAMAccountName: EAS Users
member: CN=alice,CN=Users,${DOMAIN_DN}
member: CN=bob,CN=Users,${DOMAIN_DN}
member: CN=carol,CN=Users,${DOMAIN_DN}
member: CN=dave,CN=Users,${DOMAIN_DN}
member: CN=erin,CN=Users,${DOMAIN_DN}
member: CN=disabled,CN=Users,${DOMAIN_DN}
EOF
} >"$out/users.ldif"

# Certificates and CRLs are public; only keys stay 0600.
chmod 644 "$out"/*.pem "$out"/*.crl "$out/users.ldif" "$out"/devices/*.pem
chmod 755 "$out" "$out/devices"
rm -f "$ca"/*.csr "$ca/last-sign.log"
echo "make-lab-pki: wrote $out ($key_type)" >&2
