#!/usr/bin/env bash
# Makes what docker-compose.yml's etcd needs for TLS and auth, with openssl,
# into deploy/certs (or DIR): a CA, etcd's certificate (for clients and for
# its peers), a client certificate for etcd's root (common name "root": with
# --client-cert-auth it logs in as root, with no password), one for the
# replicas, two for the fleet profile's etcd gRPC proxy (one it serves the
# sidecars with, and one it shows etcd, without a common name: etcd
# grpc-proxy insists, since a name would make it an etcd user), and a
# random password for each wxtoken etcd user.
#
#   deploy/gen-certs.sh [DIR]     # makes only what DIR lacks (keeps the CA)
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
mkdir -p "$dir"
chmod 0700 "$dir"
cd "$dir"
umask 077
days=3650
made=()

if [ "$force" = 1 ] || [ ! -e ca.crt ] || [ ! -e ca.key ]; then
  force=1 # a new CA: everything it signed goes too
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=wxtoken compose etcd CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
  made+=(ca)
fi

issue() { # issue NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]; kept when it exists
  local name=$1 subj=$2 eku=$3 san=${4:-}
  if [ "$force" = 0 ] && [ -e "$name.crt" ] && [ -e "$name.key" ]; then return; fi
  made+=("$name")
  openssl ecparam -name prime256v1 -genkey -noout -out "$name.key" 2>/dev/null
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
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
issue etcd-server /CN=etcd-server serverAuth,clientAuth \
  "DNS:etcd-1,DNS:etcd-2,DNS:etcd-3,DNS:localhost,IP:127.0.0.1"
issue root /CN=root clientAuth
issue replica /CN=wxtoken-replica clientAuth
issue etcd-proxy /CN=etcd-proxy serverAuth "DNS:etcd-proxy,DNS:localhost,IP:127.0.0.1"
issue etcd-proxy-client "/O=wxtoken etcd proxy" clientAuth
for user in wxtoken-candidate wxtoken-sidecar; do
  if [ "$force" = 1 ] || [ ! -e "$user.password" ]; then
    openssl rand -hex 24 >"$user.password"
    made+=("$user.password")
  fi
done
rm -f ca.srl
chmod 0644 ./*.crt ./*.key ./*.password
chmod 0600 ca.key
if [ ${#made[@]} = 0 ]; then
  echo "gen-certs: $dir has everything; keeping it (-f makes new ones)"
else
  echo "gen-certs: made ${made[*]} in $dir"
fi
