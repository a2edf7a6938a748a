package config

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestMarshalYAML: the effective configuration prints every secret
// redacted, and parses back to the same Config but for the secrets.
func TestMarshalYAML(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secrets/mini", "mini-secret\n")
	secrets := map[string]string{"ETCD_PASSWORD": "etcd-pw", "SHOP_SECRET": "shop-secret", "CRM_PART": "middle"}
	cfg, err := Parse([]byte(designExample+"    token_file: /run/crm.token\n"), dir, env(secrets))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"etcd-pw", "shop-secret", "mini-secret", "middle"} {
		if strings.Contains(string(out), s) {
			t.Errorf("the output shows the secret %q:\n%s", s, out)
		}
	}
	if got := strings.Count(string(out), redacted); got != 4 {
		t.Errorf("%d redacted values, want 4 (etcd password and three app secrets):\n%s", got, out)
	}
	for _, want := range []string{"fetch_timeout: 20s", "overlap: 5m\n", "jitter: 1m30s", "holdoff: 15m", "daily_budget: 1000"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	back, err := Parse(out, dir, nil)
	if err != nil {
		t.Fatalf("parse the output: %v\n%s", err, out)
	}
	if back.Etcd.Password.Reveal() != redacted || back.Apps[0].Secret.Reveal() != redacted {
		t.Errorf("secrets parsed back as %q, %q; want %q", back.Etcd.Password.Reveal(), back.Apps[0].Secret.Reveal(), redacted)
	}
	for _, c := range []*Config{cfg, back} {
		c.Etcd.Password = Secret{}
		if len(c.Access.AllowedHosts) == 0 {
			c.Access.AllowedHosts = nil // printed as [], the same setting
		}
		for i := range c.Apps {
			c.Apps[i].Secret = Secret{}
			if len(c.Apps[i].Tickets) == 0 {
				c.Apps[i].Tickets = nil // printed as [], the same setting
			}
		}
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("parsed back:\n got %+v\nwant %+v", back, cfg)
	}
}
