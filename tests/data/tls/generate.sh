#!/bin/sh
# Regenerates the small test PEMs of this directory (unit tests of src/tls: subject CN,
# loading, reload). Not used by the interop tests, which make their own per run.
#   ca.crt/ca.key        test CA (EC P-256)
#   server.crt/.key      server certificate, SAN IP:127.0.0.1, signed by ca
#   cp001.crt/.key       client certificate CN=CP001, signed by ca
#   two-cn.crt           a certificate with two subject CNs (ambiguous)
#   no-cn.crt            a certificate whose subject has no CN
#   other.key            a key that does not belong to server.crt
set -eu
cd "$(dirname "$0")"
days=36500
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -subj "/CN=ocpp809 test CA" -days $days -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
leaf() { # name subject extensions...
    name=$1; subject=$2; shift 2
    key "$name.key"
    openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
    printf '%s\n' "$@" > "$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days $days \
        -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}
leaf server "/CN=127.0.0.1" "subjectAltName=IP:127.0.0.1" "extendedKeyUsage=serverAuth"
leaf cp001 "/O=ocpp809 test/CN=CP001" "extendedKeyUsage=clientAuth"
leaf two-cn "/CN=CP001/CN=CP002" "extendedKeyUsage=clientAuth"
leaf no-cn "/O=ocpp809 test" "extendedKeyUsage=clientAuth"
key other.key
rm -f two-cn.key no-cn.key ca.srl
