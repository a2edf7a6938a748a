package deploy_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/wxtoken/wxtoken/config"
)

// secretMount is where the Kubernetes manifests mount the Secret
// wxtoken-secrets.
const secretMount = "/etc/wxtoken/secrets/"

// TestKubernetesConfigs validates the wxtoken configs in the ConfigMap of
// deploy/kubernetes with the config package, the secrets coming from the
// keys of secret.yaml.example. The manifests themselves are checked by the
// module in deploy/kubernetes (strict k8s.io/api decoding and
// cross-references), which cannot import this module's config package.
func TestKubernetesConfigs(t *testing.T) {
	var cm struct {
		Kind string
		Data map[string]string
	}
	readYAML(t, filepath.Join("kubernetes", "configmap.yaml"), &cm)
	if cm.Kind != "ConfigMap" || len(cm.Data) == 0 {
		t.Fatalf("kubernetes/configmap.yaml: kind %q with %d keys, want a ConfigMap with the configs", cm.Kind, len(cm.Data))
	}
	var secret struct {
		StringData map[string]string `yaml:"stringData"`
	}
	readYAML(t, filepath.Join("kubernetes", "secret.yaml.example"), &secret)
	secrets := t.TempDir()
	for key, value := range secret.StringData {
		if err := os.WriteFile(filepath.Join(secrets, key), []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	type appView struct {
		Name, Kind, AppID string
		Budget            int
		Tickets           []string
	}
	var first []appView
	var firstKey string
	for key, text := range cm.Data {
		t.Run(key, func(t *testing.T) {
			text = strings.ReplaceAll(text, secretMount, secrets+"/")
			cfg, err := config.Parse([]byte(text), "", nil)
			if err != nil {
				t.Fatalf("ConfigMap key %s: %v", key, err)
			}
			var apps []appView
			for _, a := range cfg.Apps {
				apps = append(apps, appView{a.Name, a.Kind, a.AppID, a.DailyBudget, a.Tickets})
			}
			switch {
			case first == nil:
				first, firstKey = apps, key
			case !reflect.DeepEqual(apps, first):
				t.Errorf("apps of %s differ from those of %s: every replica of a fleet must serve the same apps\n%s: %+v\n%s: %+v",
					key, firstKey, key, apps, firstKey, first)
			}
		})
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
