// Package kubernetes_test checks the manifests in deploy/kubernetes: every
// document decodes strictly into its k8s.io/api type (an unknown or
// misspelt field is an error), and the cross-references hold (selectors,
// ConfigMap and Secret keys, ports, probe paths the wxtoken binary serves,
// the grace period a leader needs). It lives in a module of its own so that
// the main module does not depend on k8s.io/api.
package kubernetes_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// manifestFiles are the files `kubectl apply -f deploy/kubernetes/` applies,
// plus the Secret example the README tells users to fill in.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no *.yaml manifests in deploy/kubernetes")
	}
	return append(files, "secret.yaml.example")
}

// objects are the decoded manifests by kind and name.
type objects struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	pdbs        map[string]*policyv1.PodDisruptionBudget
}

// typeMeta is what a document says it is.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// splitDocuments splits a multi-document YAML file at its "---" lines and
// drops documents that hold only comments.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		for _, line := range strings.Split(cur.String(), "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				docs = append(docs, append([]byte(nil), cur.Bytes()...))
				break
			}
		}
		cur.Reset()
	}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.TrimRight(line, "\r\n") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return docs
}

// decodeAll decodes every manifest strictly, failing on an unknown kind, an
// unknown field, a duplicate field or a duplicate name.
func decodeAll(t *testing.T) *objects {
	t.Helper()
	o := &objects{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
		secrets:     map[string]*corev1.Secret{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
	}
	for _, file := range manifestFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocuments(data) {
			where := fmt.Sprintf("%s, document %d", file, i+1)
			var tm typeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var name string
			var err error
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				name, err = decodeInto(doc, o.deployments)
			case "v1 Service":
				name, err = decodeInto(doc, o.services)
			case "v1 ConfigMap":
				name, err = decodeInto(doc, o.configMaps)
			case "v1 Secret":
				name, err = decodeInto(doc, o.secrets)
			case "policy/v1 PodDisruptionBudget":
				name, err = decodeInto(doc, o.pdbs)
			default:
				t.Fatalf("%s: kind %q of apiVersion %q is not one this test knows: add it", where, tm.Kind, tm.APIVersion)
			}
			if err != nil {
				t.Fatalf("%s (%s %s): %v", where, tm.Kind, name, err)
			}
		}
	}
	return o
}

// named is a decoded object with metadata.
type named interface {
	GetName() string
	GetNamespace() string
}

// decodeInto strictly decodes doc into a new T and files it under its
// name.
func decodeInto[T any, PT interface {
	*T
	named
}](doc []byte, into map[string]PT) (string, error) {
	obj := PT(new(T))
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return "", fmt.Errorf("strict decoding: %w", err)
	}
	name := obj.GetName()
	switch {
	case name == "":
		return "", fmt.Errorf("no metadata.name")
	case obj.GetNamespace() != "":
		return name, fmt.Errorf("metadata.namespace %q: leave it out, `kubectl apply -n` chooses", obj.GetNamespace())
	}
	if _, dup := into[name]; dup {
		return name, fmt.Errorf("a second object of this kind named %q", name)
	}
	into[name] = obj
	return name, nil
}

func TestManifestsDecodeStrictly(t *testing.T) {
	o := decodeAll(t)
	for kind, n := range map[string]int{
		"Deployment": len(o.deployments), "Service": len(o.services), "ConfigMap": len(o.configMaps),
		"Secret": len(o.secrets), "PodDisruptionBudget": len(o.pdbs),
	} {
		if n == 0 {
			t.Errorf("no %s in the manifests", kind)
		}
	}
}

// TestStrictDecodingCatchesTypos shows that the decoding this test relies
// on rejects a misspelt field, which plain decoding silently drops.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	doc := []byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  selector: {a: b}\n  prots: [{port: 1}]\n")
	if _, err := decodeInto(doc, map[string]*corev1.Service{}); err == nil || !strings.Contains(err.Error(), "prots") {
		t.Errorf("decoding a Service with \"prots\": err = %v, want an unknown-field error naming it", err)
	}
}

// selects reports whether every selector label is on labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
