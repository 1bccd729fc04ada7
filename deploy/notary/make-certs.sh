#!/bin/sh
# make-certs.sh DIR [HOST]: a CA and TLS certificates for notary-server (HTTPS, as docker
# requires) and notary-signer (gRPC, mutual TLS with notary-server), all signed by the CA.
# HOST is the address clients reach notary-server at (default 127.0.0.1).
set -eu
dir=${1:?usage: make-certs.sh DIR [HOST]}
host=${2:-127.0.0.1}
mkdir -p "$dir"
cd "$dir"
case "$host" in
  *[!0-9.]*) san="DNS:$host,IP:127.0.0.1" ;;
  *) san="IP:$host,DNS:localhost" ;;
esac
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=Notary CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
issue() { # NAME SAN EXTENDED_KEY_USAGE
  openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
    "$3" "$2" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -sha256 \
    -extfile "$1.ext" -out "$1.crt"
  rm -f "$1.csr" "$1.ext"
}
issue notary-server "$san" serverAuth,clientAuth
issue notary-signer "DNS:notary-signer,IP:127.0.0.1,DNS:localhost" serverAuth
chmod 600 ./*.key
echo "made ca.crt, notary-server.{crt,key}, notary-signer.{crt,key} in $dir"
