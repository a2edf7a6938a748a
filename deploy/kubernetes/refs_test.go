package kubernetes_test

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func volume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// containerPort resolves a probe's or Service's port (a number or a port
// name) against container c.
func containerPort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	if p.Type == intstr.Int {
		return p.IntVal, true
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var cs []*corev1.Container
	for i := range spec.InitContainers {
		cs = append(cs, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		cs = append(cs, &spec.Containers[i])
	}
	return cs
}

func TestSelectors(t *testing.T) {
	o := decodeAll(t)
	for name, d := range o.deployments {
		if d.Spec.Selector == nil || !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("Deployment %s: its selector does not select its own pods", name)
		}
	}
	selected := func(sel map[string]string) []*appsv1.Deployment {
		var ds []*appsv1.Deployment
		for _, name := range sortedKeys(o.deployments) {
			if selects(sel, o.deployments[name].Spec.Template.Labels) {
				ds = append(ds, o.deployments[name])
			}
		}
		return ds
	}
	for name, p := range o.pdbs {
		if p.Spec.Selector == nil || len(selected(p.Spec.Selector.MatchLabels)) != 1 {
			t.Errorf("PodDisruptionBudget %s selects the pods of %d Deployments, want 1", name, len(selected(p.Spec.Selector.MatchLabels)))
		}
	}
	for name, s := range o.services {
		ds := selected(s.Spec.Selector)
		if len(ds) != 1 {
			t.Errorf("Service %s selects the pods of %d Deployments, want 1", name, len(ds))
			continue
		}
		for _, sp := range s.Spec.Ports {
			found := false
			for _, c := range allContainers(&ds[0].Spec.Template.Spec) {
				if _, ok := containerPort(c, sp.TargetPort); ok && (sp.TargetPort.Type == intstr.String || hasPort(c, sp.TargetPort.IntVal)) {
					found = true
				}
			}
			if !found {
				t.Errorf("Service %s port %s: targetPort %s is no container port of Deployment %s", name, sp.Name, sp.TargetPort.String(), ds[0].Name)
			}
		}
	}
}

func hasPort(c *corev1.Container, port int32) bool {
	for _, cp := range c.Ports {
		if cp.ContainerPort == port {
			return true
		}
	}
	return false
}

// TestVolumes checks that every mount has its volume, and every ConfigMap
// and Secret volume names an object of the manifests and keys it has.
func TestVolumes(t *testing.T) {
	o := decodeAll(t)
	for _, name := range sortedKeys(o.deployments) {
		spec := &o.deployments[name].Spec.Template.Spec
		for _, c := range allContainers(spec) {
			for _, m := range c.VolumeMounts {
				if volume(spec, m.Name) == nil {
					t.Errorf("%s/%s mounts volume %q, which the pod does not declare", name, c.Name, m.Name)
				}
			}
		}
		for _, v := range spec.Volumes {
			switch {
			case v.ConfigMap != nil:
				cm, ok := o.configMaps[v.ConfigMap.Name]
				if !ok {
					t.Errorf("%s: volume %s names ConfigMap %q, which is not in the manifests", name, v.Name, v.ConfigMap.Name)
					continue
				}
				for _, it := range v.ConfigMap.Items {
					if _, ok := cm.Data[it.Key]; !ok {
						t.Errorf("%s: volume %s wants key %q of ConfigMap %s, which has keys %v", name, v.Name, it.Key, cm.Name, sortedKeys(cm.Data))
					}
				}
			case v.Secret != nil:
				s, ok := o.secrets[v.Secret.SecretName]
				if !ok {
					t.Errorf("%s: volume %s names Secret %q, which secret.yaml.example does not show", name, v.Name, v.Secret.SecretName)
					continue
				}
				for _, it := range v.Secret.Items {
					_, inData := s.Data[it.Key]
					_, inString := s.StringData[it.Key]
					if !inData && !inString {
						t.Errorf("%s: volume %s wants key %q of Secret %s, which secret.yaml.example does not show", name, v.Name, it.Key, s.Name)
					}
				}
			}
		}
	}
}

// TestEtcdEndpoints checks that an etcd endpoint that names a Service of
// the manifests reaches a container listening on that port.
func TestEtcdEndpoints(t *testing.T) {
	o := decodeAll(t)
	for _, w := range wxtokenContainers(t, o) {
		for _, ep := range w.cfg.Etcd.Endpoints {
			u, err := url.Parse(ep)
			if err != nil || u.Port() == "" {
				t.Errorf("%s: etcd endpoint %q: want scheme://host:port", w.dep.Name, ep)
				continue
			}
			s, ok := o.services[u.Hostname()]
			if !ok {
				continue // an etcd cluster outside these manifests
			}
			port, _ := strconv.Atoi(u.Port())
			found := false
			for _, sp := range s.Spec.Ports {
				if sp.Port != int32(port) {
					continue
				}
				for _, d := range o.deployments {
					if !selects(s.Spec.Selector, d.Spec.Template.Labels) {
						continue
					}
					for _, c := range allContainers(&d.Spec.Template.Spec) {
						if cp, ok := containerPort(c, sp.TargetPort); ok && listensOn(c, cp) {
							found = true
						}
					}
				}
			}
			if !found {
				t.Errorf("%s: etcd endpoint %s: Service %s has no port %d that reaches a container listening there", w.dep.Name, ep, s.Name, port)
			}
		}
	}
}

// listensOn reports whether container c declares port and, if it is the
// etcd gRPC proxy, listens on it.
func listensOn(c *corev1.Container, port int32) bool {
	if !hasPort(c, port) {
		return false
	}
	for _, arg := range c.Command {
		if addr, ok := strings.CutPrefix(arg, "--listen-addr="); ok {
			_, p, err := net.SplitHostPort(addr)
			return err == nil && p == strconv.Itoa(int(port))
		}
	}
	return true
}
