package kubernetes_test

import (
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// healthcheck is the probe binary in the wxtoken image (deploy/healthcheck).
const healthcheck = "/usr/local/bin/healthcheck"

// Defaults of the wxtoken config that the checks depend on.
const (
	defaultFetchTimeout = 30 * time.Second
	// resignSpare is what a stopping leader needs beyond fetch_timeout to
	// publish and resign.
	resignSpare = 10 * time.Second
)

// wxConfig is the part of a wxtoken config the cross-references need; the
// whole config is validated by the main module (deploy/kubernetes_test.go).
type wxConfig struct {
	Listen string `json:"listen"`
	Etcd   struct {
		Endpoints []string `json:"endpoints"`
	} `json:"etcd"`
	Election struct {
		Candidate *bool `json:"candidate"`
	} `json:"election"`
	Refresh struct {
		FetchTimeout string `json:"fetch_timeout"`
	} `json:"refresh"`
	Apps []struct {
		Name       string `json:"name"`
		SecretFile string `json:"secret_file"`
	} `json:"apps"`
}

// wxContainer is a wxtoken container in a Deployment, with its config.
type wxContainer struct {
	dep     *appsv1.Deployment
	c       *corev1.Container
	sidecar bool // a native sidecar (init container, restartPolicy Always)
	cfg     wxConfig
}

func (w wxContainer) candidate() bool {
	return w.cfg.Election.Candidate == nil || *w.cfg.Election.Candidate
}

// wxtokenContainers finds every container that runs `wxtoken serve` and
// reads its config out of the ConfigMap its --config file is mounted from.
func wxtokenContainers(t *testing.T, o *objects) []wxContainer {
	t.Helper()
	var out []wxContainer
	for _, name := range sortedKeys(o.deployments) {
		dep := o.deployments[name]
		spec := &dep.Spec.Template.Spec
		add := func(c *corev1.Container, init bool) {
			if !strings.Contains(c.Image, "wxtoken") || strings.Contains(c.Image, "etcd") {
				return
			}
			where := name + "/" + c.Name
			if len(c.Args) != 3 || c.Args[0] != "serve" || c.Args[1] != "--config" {
				t.Fatalf("%s: args %q, want [serve --config FILE]", where, c.Args)
			}
			text := mountedConfigMapFile(t, o, spec, c, c.Args[2], where)
			var cfg wxConfig
			if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
				t.Fatalf("%s: config %s: %v", where, c.Args[2], err)
			}
			sidecar := init && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
			if init && !sidecar {
				t.Fatalf("%s: an init container without restartPolicy: Always would block the pod", where)
			}
			out = append(out, wxContainer{dep: dep, c: c, sidecar: sidecar, cfg: cfg})
		}
		for i := range spec.InitContainers {
			add(&spec.InitContainers[i], true)
		}
		for i := range spec.Containers {
			add(&spec.Containers[i], false)
		}
	}
	if len(out) == 0 {
		t.Fatal("no container runs wxtoken serve")
	}
	return out
}

// mountedConfigMapFile returns the text of file as container c sees it:
// the ConfigMap key mounted there.
func mountedConfigMapFile(t *testing.T, o *objects, spec *corev1.PodSpec, c *corev1.Container, file, where string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		var itemPath string
		switch {
		case m.SubPath != "" && m.MountPath == file:
			itemPath = m.SubPath
		case m.SubPath == "" && path.Dir(file) == path.Clean(m.MountPath):
			itemPath = path.Base(file)
		default:
			continue
		}
		v := volume(spec, m.Name)
		if v == nil || v.ConfigMap == nil {
			t.Fatalf("%s: %s is mounted from volume %q, which is not a ConfigMap volume", where, file, m.Name)
		}
		cm, ok := o.configMaps[v.ConfigMap.Name]
		if !ok {
			t.Fatalf("%s: volume %q names ConfigMap %q, which the manifests do not define", where, m.Name, v.ConfigMap.Name)
		}
		key := itemPath
		for _, it := range v.ConfigMap.Items {
			if it.Path == itemPath {
				key = it.Key
			}
		}
		text, ok := cm.Data[key]
		if !ok {
			t.Fatalf("%s: %s is key %q of ConfigMap %s, which has no such key (keys %v)", where, file, key, cm.Name, sortedKeys(cm.Data))
		}
		return text
	}
	t.Fatalf("%s: no volume mount provides its config file %s", where, file)
	return ""
}

// TestWxtokenContainers checks each wxtoken container against its config:
// ports, probes, secret files, and for candidates the HA rules.
func TestWxtokenContainers(t *testing.T) {
	o := decodeAll(t)
	roles := map[bool]int{}
	for _, w := range wxtokenContainers(t, o) {
		where := w.dep.Name + "/" + w.c.Name
		roles[w.candidate()]++
		t.Run(where, func(t *testing.T) {
			host, port, err := net.SplitHostPort(w.cfg.Listen)
			if err != nil {
				t.Fatalf("listen %q: %v", w.cfg.Listen, err)
			}
			listenPort, _ := strconv.Atoi(port)
			loopback := host == "127.0.0.1" || host == "::1" || host == "localhost"
			probes := map[string]*corev1.Probe{"liveness": w.c.LivenessProbe, "readiness": w.c.ReadinessProbe, "startup": w.c.StartupProbe}
			paths := map[string]string{}
			for kind, p := range probes {
				if p == nil {
					continue
				}
				u, ok := probeURL(t, w.c, p, kind)
				if !ok {
					continue
				}
				paths[kind] = u.Path
				if u.Port() != strconv.Itoa(listenPort) {
					t.Errorf("%s probe goes to port %s, but the config listens on %s", kind, u.Port(), w.cfg.Listen)
				}
				if loopback && u.Hostname() != host {
					t.Errorf("%s probe: the config listens on loopback (%s); a probe from the kubelet to the pod IP cannot reach it: probe with %s http://%s/...",
						kind, w.cfg.Listen, healthcheck, w.cfg.Listen)
				}
			}
			if paths["liveness"] != "/healthz" {
				t.Errorf("liveness probe path %q, want /healthz (the process answers; /readyz would restart a replica that etcd cut off)", paths["liveness"])
			}
			if paths["readiness"] != "/readyz" && paths["startup"] != "/readyz" {
				t.Errorf("neither the readiness nor the startup probe checks /readyz (following etcd)")
			}
			if !loopback && !hasPort(w.c, int32(listenPort)) {
				t.Errorf("the config listens on %s, but the container declares no port %d", w.cfg.Listen, listenPort)
			}
			checkSecretFiles(t, o, w)
			if w.candidate() {
				checkCandidate(t, o, w)
			} else if !w.sidecar {
				t.Errorf("a non-candidate here is an app's sidecar: make it a native sidecar (init container, restartPolicy: Always) so it outlives the app's shutdown")
			}
		})
	}
	if roles[true] == 0 || roles[false] == 0 {
		t.Errorf("want both candidates and sidecars; got %d candidate and %d non-candidate containers", roles[true], roles[false])
	}
}

// probeURL returns the URL a probe GETs: an httpGet probe, or an exec of
// the image's healthcheck binary.
func probeURL(t *testing.T, c *corev1.Container, p *corev1.Probe, kind string) (*url.URL, bool) {
	t.Helper()
	switch {
	case p.HTTPGet != nil:
		port, ok := containerPort(c, p.HTTPGet.Port)
		if !ok {
			t.Errorf("%s probe port %s is no port of the container", kind, p.HTTPGet.Port.String())
			return nil, false
		}
		return &url.URL{Scheme: "http", Host: net.JoinHostPort("pod-ip", strconv.Itoa(int(port))), Path: p.HTTPGet.Path}, true
	case p.Exec != nil:
		cmd := p.Exec.Command
		if len(cmd) != 2 || cmd[0] != healthcheck {
			t.Errorf("%s probe runs %q, want [%s URL]", kind, cmd, healthcheck)
			return nil, false
		}
		u, err := url.Parse(cmd[1])
		if err != nil || u.Scheme != "http" {
			t.Errorf("%s probe URL %q: want http://host:port/path (%v)", kind, cmd[1], err)
			return nil, false
		}
		return u, true
	}
	t.Errorf("%s probe is neither httpGet nor an exec of %s", kind, healthcheck)
	return nil, false
}

// checkSecretFiles checks that every secret_file is a key of a mounted
// Secret volume.
func checkSecretFiles(t *testing.T, o *objects, w wxContainer) {
	t.Helper()
	spec := &w.dep.Spec.Template.Spec
	for _, app := range w.cfg.Apps {
		if app.SecretFile == "" {
			t.Errorf("app %s: no secret_file; secrets come from the Secret volume, not the ConfigMap", app.Name)
			continue
		}
		found := false
		for _, m := range w.c.VolumeMounts {
			rel, ok := strings.CutPrefix(app.SecretFile, path.Clean(m.MountPath)+"/")
			v := volume(spec, m.Name)
			if !ok || v == nil || v.Secret == nil {
				continue
			}
			key := rel
			for _, it := range v.Secret.Items {
				if it.Path == rel {
					key = it.Key
				}
			}
			s := o.secrets[v.Secret.SecretName]
			if s == nil {
				continue // TestVolumes reports it
			}
			if _, ok := s.StringData[key]; ok {
				found = true
			} else if _, ok := s.Data[key]; ok {
				found = true
			}
		}
		if !found {
			t.Errorf("app %s: secret_file %s is no key of a Secret mounted in the container", app.Name, app.SecretFile)
		}
	}
}

// checkCandidate checks the HA rules of a candidate: replicas, a
// disruption budget, a Service, and a stop that lets a leader resign.
func checkCandidate(t *testing.T, o *objects, w wxContainer) {
	t.Helper()
	spec := &w.dep.Spec.Template.Spec
	if r := w.dep.Spec.Replicas; r == nil || *r < 3 {
		n := int32(1) // Kubernetes' default
		if r != nil {
			n = *r
		}
		t.Errorf("candidates: replicas %d, want at least 3 (a leader and two to take over)", n)
	}
	budget := false
	for _, p := range o.pdbs {
		if p.Spec.Selector != nil && selects(p.Spec.Selector.MatchLabels, w.dep.Spec.Template.Labels) {
			budget = p.Spec.MaxUnavailable != nil && p.Spec.MaxUnavailable.Type == intstr.Int && p.Spec.MaxUnavailable.IntVal == 1
		}
	}
	if !budget {
		t.Errorf("candidates: want a PodDisruptionBudget with maxUnavailable: 1 selecting them")
	}
	served := false
	for _, s := range o.services {
		served = served || selects(s.Spec.Selector, w.dep.Spec.Template.Labels)
	}
	if !served {
		t.Errorf("candidates: no Service selects them")
	}
	fetch := defaultFetchTimeout
	if w.cfg.Refresh.FetchTimeout != "" {
		var err error
		if fetch, err = time.ParseDuration(w.cfg.Refresh.FetchTimeout); err != nil {
			t.Fatalf("refresh.fetch_timeout: %v", err)
		}
	}
	var preStop time.Duration
	if l := w.c.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Sleep == nil {
		t.Errorf("candidates: want a preStop sleep, so that the Service stops routing to a pod before it stops")
	} else {
		preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	grace := 30 * time.Second // Kubernetes' default
	if spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	}
	if want := preStop + fetch + resignSpare; grace < want {
		t.Errorf("candidates: terminationGracePeriodSeconds %v, want at least preStop %v + fetch_timeout %v + %v for a leader to finish its calls and resign",
			grace, preStop, fetch, resignSpare)
	}
}
