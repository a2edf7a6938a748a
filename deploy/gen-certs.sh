#!/usr/bin/env bash
# Makes what docker-compose.yml's etcd needs for TLS and auth, with openssl,
# into deploy/certs (or DIR): a CA, etcd's certificate (for clients and for
# its peers), a client certificate for etcd's root (common name "root": with
# --client-cert-auth it logs in as root, with no password), one for the
# replicas, and a random password for each wxtoken etcd user.
#
#   deploy/gen-certs.sh [DIR]     # does nothing when DIR/ca.crt exists
#   deploy/gen-certs.sh -f [DIR]  # makes everything anew
#
# deploy/build-images.sh runs it. This is a CA for one Compose stack on one
# host; in production use your own PKI and secret store.
#
# Modes: DIR is 0700, so no other user of the host reaches anything in it.
# The CA's key is 0600 and mounted nowhere. The files the containers mount
# are 0644: Docker bind-mounts them one by one with the host's owner and
# mode, and the replicas run as uid 65532, which must read its key and
# password; the 0700 directory keeps them from the host's other users.
set -euo pipefail
force=0
if [ "${1:-}" = "-f" ]; then force=1; shift; fi
dir=${1:-$(cd "$(dirname "$0")" && pwd)/certs}
command -v openssl >/dev/null || { echo "gen-certs: openssl is missing (apt-get install openssl)" >&2; exit 1; }
if [ -e "$dir/ca.crt" ] && [ "$force" = 0 ]; then
  echo "gen-certs: $dir/ca.crt exists; keeping it (-f makes new ones)"
  exit 0
fi
mkdir -p "$dir"
chmod 0700 "$dir"
cd "$dir"
umask 077
days=3650

openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=wxtoken compose etcd CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt

issue() { # issue NAME CN EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
  local name=$1 cn=$2 eku=$3 san=${4:-}
  openssl ecparam -name prime256v1 -genkey -noout -out "$name.key" 2>/dev/null
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
# etcd serves clients and peers with one certificate, and presents it to
# its peers as a client too.
issue etcd-server etcd-server serverAuth,clientAuth \
  "DNS:etcd-1,DNS:etcd-2,DNS:etcd-3,DNS:localhost,IP:127.0.0.1"
issue root root clientAuth
issue replica wxtoken-replica clientAuth
for user in wxtoken-candidate wxtoken-sidecar; do
  openssl rand -hex 24 >"$user.password"
done
rm -f ca.srl
chmod 0600 ca.key
chmod 0644 ca.crt etcd-server.crt etcd-server.key root.crt root.key replica.crt replica.key ./*.password
echo "gen-certs: made a CA, certificates and etcd passwords in $dir"
