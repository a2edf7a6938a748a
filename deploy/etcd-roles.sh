#!/bin/sh
# The least-privilege etcd roles of wxtoken, with etcdctl, for an etcd you
# run yourself (docker-compose.yml does the same with its init step,
# deploy/etcdauth). Run it as etcd's root, with etcdctl's usual settings in
# the environment (ETCDCTL_ENDPOINTS, ETCDCTL_CACERT, ETCDCTL_CERT,
# ETCDCTL_KEY, ETCDCTL_USER):
#
#   deploy/etcd-roles.sh [PREFIX]        # PREFIX: wxtoken's etcd.prefix, default /wxtoken
#
#   wxtoken-candidate  read and write PREFIX/            replicas with election.candidate: true
#   wxtoken-sidecar    read PREFIX/, and read and write   serve-only replicas (candidate: false)
#                      PREFIX/report/, PREFIX/replica/
#                      and PREFIX/platform-events/
#
# A sidecar reads records to serve them, and states, budgets, intents,
# presences and election keys for /v1/status; it writes only reports (a
# caller says a token is dead), its presence, and what WeChat pushes to a
# platform's event URL (tickets, authorization codes, authorizer states:
# WeChat reaches whichever replica its URL leads to). It cannot write a
# record, an intent, a budget or any other day-scoped key (PREFIX/day/), a
# state or an election key. A candidate also grants the lease of each day's
# keys and may revoke it (etcd allows a revoke to whoever may write every
# key on the lease: all are under PREFIX/). The same set is
# tokenstore.Roles, tested against a real etcd in replica/roles_test.go.
#
# Then, once per user, and to turn auth on (the first time):
#
#   etcdctl user add wxtoken-candidate           # asks for the password
#   etcdctl user grant-role wxtoken-candidate wxtoken-candidate
#   etcdctl user add wxtoken-sidecar
#   etcdctl user grant-role wxtoken-sidecar wxtoken-sidecar
#   etcdctl user add root && etcdctl user grant-role root root
#   etcdctl auth enable
set -eu
p=${1:-/wxtoken}
case "$p" in /*[!/]) ;; *) echo "etcd-roles: prefix must start with / and not end with one: $p" >&2; exit 2 ;; esac

role() { # role NAME: add it unless it exists
  etcdctl role get "$1" >/dev/null 2>&1 || etcdctl role add "$1"
}
role wxtoken-candidate
etcdctl role grant-permission --prefix=true wxtoken-candidate readwrite "$p/"
role wxtoken-sidecar
etcdctl role grant-permission --prefix=true wxtoken-sidecar read "$p/"
etcdctl role grant-permission --prefix=true wxtoken-sidecar readwrite "$p/report/"
etcdctl role grant-permission --prefix=true wxtoken-sidecar readwrite "$p/replica/"
etcdctl role grant-permission --prefix=true wxtoken-sidecar readwrite "$p/platform-events/"
