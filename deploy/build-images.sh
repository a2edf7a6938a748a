#!/usr/bin/env bash
# Builds the images of docker-compose.yml FROM scratch, out of static
# binaries compiled here (CGO_ENABLED=0): no base image is pulled, so this
# works on a machine that can reach no container registry.
#
#   deploy/build-images.sh            # both images
#   deploy/build-images.sh wxtoken    # only wxtoken (also: etcd)
#   deploy/build-images.sh prometheus # the monitoring profile's Prometheus
#   deploy/build-images.sh redis      # the Redis the read benchmark compares with
#
# It also makes the CA, certificates and etcd passwords of the compose stack
# in deploy/certs (deploy/gen-certs.sh; what exists is kept, what is
# missing, such as the fleet profile's etcd-proxy certificates, is added).
#
# Tags: $WXTOKEN_IMAGE (default wxtoken:latest), $ETCD_IMAGE (default
# wxtoken/etcd:<the etcd release in go.mod>) and $PROMETHEUS_IMAGE (default
# wxtoken/prometheus:latest, what docker-compose.yml runs) and $REDIS_IMAGE
# (default wxtoken/redis:latest, what go run ./bench runs). Needs go,
# docker, the host's /etc/ssl/certs/ca-certificates.crt and
# /usr/share/zoneinfo. The Prometheus image needs Debian's prometheus
# package on the host (apt-get install prometheus): that binary is linked
# against glibc, so the libraries ldd names go into the image with it. The
# Redis image is built the same way from Debian's redis-server package
# (apt-get install redis-server); for it the script makes no certificates.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$PATH:/usr/local/go/bin"

certs=/etc/ssl/certs/ca-certificates.crt
zoneinfo=/usr/share/zoneinfo
for f in "$certs" "$zoneinfo"; do
  [ -e "$f" ] || { echo "build-images: $f is missing on this host (install ca-certificates and tzdata)" >&2; exit 1; }
done

etcd_version=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
wxtoken_image=${WXTOKEN_IMAGE:-wxtoken:latest}
etcd_image=${ETCD_IMAGE:-wxtoken/etcd:$etcd_version}
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
which=${1:-all}
case "$which" in all|wxtoken|etcd|prometheus|redis) ;; *) echo "usage: $0 [all|wxtoken|etcd|prometheus|redis]" >&2; exit 2 ;; esac

ctx=$(mktemp -d "${TMPDIR:-/tmp}/wxtoken-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT

# copylibs BIN ROOT: every absolute path ldd prints for BIN (the loader,
# libc, ...), dereferenced, at the same path under ROOT.
copylibs() {
  for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
    mkdir -p "$2$(dirname "$lib")"
    cp -L "$lib" "$2$lib"
  done
}

if [ "$which" = redis ]; then
  redis=$(command -v redis-server || true)
  [ -n "$redis" ] || { echo "build-images: redis-server is missing (apt-get install redis-server)" >&2; exit 1; }
  redis_version=$("$redis" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
  redis_image=${REDIS_IMAGE:-wxtoken/redis:latest}
  c=$ctx/redis
  r=$c/rootfs
  mkdir -p "$r/bin" "$r/etc" "$c/data"
  cp -L "$redis" "$r/bin/redis-server" # Debian's is a link to redis-check-rdb; the name picks the server
  copylibs "$redis" "$r"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/data:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  echo "== docker build $redis_image"
  docker build --quiet --build-arg "VERSION=$redis_version" -t "$redis_image" -f deploy/Dockerfile.redis "$c"
  echo "== built $redis_image; go run ./bench -only read runs it"
  exit 0
fi

deploy/gen-certs.sh

gobuild() { # gobuild OUT PACKAGE [LDFLAGS]
  echo "== go build $2"
  CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w ${3:-}" -o "$1" "$2"
}

if [ "$which" = prometheus ]; then
  prom=/usr/bin/prometheus
  [ -x "$prom" ] || { echo "build-images: $prom is missing (apt-get install prometheus)" >&2; exit 1; }
  prometheus_version=$("$prom" --version 2>&1 | awk 'NR==1 {print $3}')
  prometheus_image=${PROMETHEUS_IMAGE:-wxtoken/prometheus:latest}
  c=$ctx/prometheus
  r=$c/rootfs
  mkdir -p "$r/bin" "$r/etc/prometheus" "$r/usr/share/prometheus" "$c/data"
  cp "$prom" "$r/bin/prometheus"
  gobuild "$r/bin/healthcheck" ./deploy/healthcheck
  copylibs "$prom" "$r"
  [ -d /usr/share/prometheus/web ] && cp -a /usr/share/prometheus/web "$r/usr/share/prometheus/web"
  cp deploy/prometheus/prometheus.yml deploy/prometheus/alerts.yml "$r/etc/prometheus/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/prometheus:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  echo "== docker build $prometheus_image"
  docker build --quiet --build-arg "VERSION=$prometheus_version" -t "$prometheus_image" -f deploy/Dockerfile.prometheus "$c"
  echo "== built $prometheus_image; to run it: docker compose --profile monitoring up -d"
  exit 0
fi

if [ "$which" != etcd ]; then
  c=$ctx/wxtoken
  mkdir -p "$c/bin" "$c/etc/ssl/certs" "$c/usr/share" "$c/data"
  gobuild "$c/bin/wxtoken" ./cmd/wxtoken "-X main.version=$version"
  gobuild "$c/bin/healthcheck" ./deploy/healthcheck
  gobuild "$c/bin/wxtoken-etcd-auth" ./deploy/etcdauth
  cp "$certs" "$c/etc/ssl/certs/ca-certificates.crt"
  cp -a "$zoneinfo" "$c/usr/share/zoneinfo"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/lib/wxtoken:/sbin/nologin\n' >"$c/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$c/etc/group"
  echo "== docker build $wxtoken_image"
  docker build --quiet --build-arg "VERSION=$version" -t "$wxtoken_image" -f deploy/Dockerfile.wxtoken "$c"
fi

if [ "$which" != wxtoken ]; then
  c=$ctx/etcd
  mkdir -p "$c/bin" "$c/etc/ssl/certs"
  gobuild "$c/bin/etcd" go.etcd.io/etcd/server/v3
  gobuild "$c/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3
  cp "$certs" "$c/etc/ssl/certs/ca-certificates.crt"
  echo "== docker build $etcd_image"
  docker build --quiet --build-arg "VERSION=$etcd_version" -t "$etcd_image" -f deploy/Dockerfile.etcd "$c"
fi

echo "== built; to use these images with docker-compose.yml:"
[ "$which" != etcd ] && echo "export WXTOKEN_IMAGE=$wxtoken_image"
[ "$which" != wxtoken ] && echo "export ETCD_IMAGE=$etcd_image"
exit 0
