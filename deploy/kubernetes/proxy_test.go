package kubernetes_test

import (
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// etcdProxy is a container that runs `etcd grpc-proxy start`, with its
// flags.
type etcdProxy struct {
	dep   *appsv1.Deployment
	c     *corev1.Container
	flags map[string]string
}

// etcdProxies finds every container whose command is `etcd grpc-proxy
// start`; flags must be written --name=value.
func etcdProxies(t *testing.T, o *objects) []etcdProxy {
	t.Helper()
	var out []etcdProxy
	for _, name := range sortedKeys(o.deployments) {
		dep := o.deployments[name]
		for _, c := range allContainers(&dep.Spec.Template.Spec) {
			cmd := append(append([]string{}, c.Command...), c.Args...)
			if len(cmd) < 3 || path.Base(cmd[0]) != "etcd" || cmd[1] != "grpc-proxy" || cmd[2] != "start" {
				continue
			}
			p := etcdProxy{dep: dep, c: c, flags: map[string]string{}}
			for _, arg := range cmd[3:] {
				k, v, ok := strings.Cut(arg, "=")
				if !ok || !strings.HasPrefix(k, "--") {
					t.Fatalf("%s/%s: argument %q: want --flag=value", name, c.Name, arg)
				}
				p.flags[k] = v
			}
			out = append(out, p)
		}
	}
	return out
}

// TestEtcdProxy checks the etcd gRPC proxy of etcd-proxy.yaml against the
// rest: it forwards to the etcd members the candidates use, it advertises
// and is reached through a Service of its own, the sidecars reach etcd
// only through it, and its data directory is writable under a read-only
// root file system.
func TestEtcdProxy(t *testing.T) {
	o := decodeAll(t)
	proxies := etcdProxies(t, o)
	if len(proxies) == 0 {
		t.Fatal("no container runs etcd grpc-proxy start")
	}
	wx := wxtokenContainers(t, o)
	proxied := map[string]bool{} // Service names that reach a proxy
	for _, p := range proxies {
		where := p.dep.Name + "/" + p.c.Name
		// The members it forwards to are the candidates' etcd.
		got := strings.Split(p.flags["--endpoints"], ",")
		slices.Sort(got)
		for _, w := range wx {
			if !w.candidate() {
				continue
			}
			var want []string
			for _, ep := range w.cfg.Etcd.Endpoints {
				if u, err := url.Parse(ep); err == nil {
					want = append(want, u.Host)
				}
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: --endpoints %s, but the candidates (%s) use %s: put the same members in both", where, strings.Join(got, ","), w.dep.Name, strings.Join(want, ","))
			}
		}
		// It advertises a Service that selects it.
		adv := p.flags["--advertise-client-url"]
		host, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(adv, "https://"), "http://"), ":")
		s, ok := o.services[host]
		switch {
		case !ok:
			t.Errorf("%s: --advertise-client-url %q names no Service of the manifests", where, adv)
		case !selects(s.Spec.Selector, p.dep.Spec.Template.Labels):
			t.Errorf("%s: --advertise-client-url names Service %s, which does not select it", where, host)
		default:
			proxied[host] = true
		}
		// --data-dir must be a mounted volume: the root file system is
		// read-only.
		dir := p.flags["--data-dir"]
		mounted := false
		for _, m := range p.c.VolumeMounts {
			if dir == m.MountPath || strings.HasPrefix(dir, m.MountPath+"/") {
				mounted = !m.ReadOnly
			}
		}
		if dir == "" || !mounted {
			t.Errorf("%s: --data-dir %q is not on a writable volume mount", where, dir)
		}
		if sc := p.c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: want readOnlyRootFilesystem: true", where)
		}
		// It pings the members: without it, a connection a partition
		// left half-open stalls every merged watch until TCP gives up.
		if d, err := time.ParseDuration(p.flags["--dial-keepalive-time"]); err != nil || d <= 0 {
			t.Errorf("%s: --dial-keepalive-time %q: want a positive duration (etcd's default 0 never pings the members)", where, p.flags["--dial-keepalive-time"])
		}
		// TLS flags come in pairs.
		for _, pair := range [][2]string{{"--cert", "--key"}, {"--cert-file", "--key-file"}} {
			if (p.flags[pair[0]] == "") != (p.flags[pair[1]] == "") {
				t.Errorf("%s: %s and %s go together", where, pair[0], pair[1])
			}
		}
	}
	// Every sidecar reaches etcd through a proxy only: that is what keeps
	// a fleet's watches off the members.
	for _, w := range wx {
		if !w.sidecar {
			continue
		}
		for _, ep := range w.cfg.Etcd.Endpoints {
			u, err := url.Parse(ep)
			if err != nil || !proxied[u.Hostname()] {
				t.Errorf("%s: sidecar etcd endpoint %q is not the etcd gRPC proxy's Service", w.dep.Name, ep)
			}
		}
	}
}
