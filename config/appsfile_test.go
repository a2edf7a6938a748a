package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const appsFileBase = "node: n1\nlisten: 127.0.0.1:8080\netcd:\n  endpoints: [http://127.0.0.1:2379]\n"

// TestAppsFile: apps from apps_file are the same apps as written under
// apps:, after the YAML ones; a relative path is the config's directory's.
func TestAppsFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	js := `[{"name":"b","kind":"classic","appid":"wxb","secret_file":"s","daily_budget":50,"tickets":["jsapi"],"jssdk_domains":["shop.example.com"]},
	        {"name":"c","kind":"wecom","appid":"wwc","secret":"${C_SECRET}"}]`
	if err := os.WriteFile(filepath.Join(dir, "apps.json"), []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) { return "from-env", k == "C_SECRET" }
	head := appsFileBase + "apps:\n  - {name: a, kind: classic, appid: wxa, secret: x}\n"
	got, err := Parse([]byte(head+"apps_file: apps.json\n"), dir, env)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Parse([]byte(head+`  - {name: b, kind: classic, appid: wxb, secret_file: s, daily_budget: 50, tickets: [jsapi], jssdk_domains: [shop.example.com]}
  - {name: c, kind: wecom, appid: wwc, secret: "${C_SECRET}"}
`), dir, env)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Apps, want.Apps) {
		t.Fatalf("apps_file:\n got %+v\nwant %+v", got.Apps, want.Apps)
	}
	if got.Apps[1].Secret.Reveal() != "from-file" || got.Apps[2].Secret.Reveal() != "from-env" {
		t.Fatal("secrets of apps_file apps not resolved")
	}
}

// TestAppsFileErrors: a missing file, broken JSON, an unknown key or a
// wrong type is refused with the file's name, and never a secret.
func TestAppsFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ body, want string }{
		"broken":  {`[{"name":"a","secret":"hunter2-secret"`, "unexpected EOF"},
		"unknown": {`[{"name":"a","secret":"hunter2-secret","colour":"red"}]`, `unknown field "colour"`},
		"type":    {`[{"name":"a","secret":"hunter2-secret","daily_budget":"many"}]`, "daily_budget"},
		"two":     {`[] []`, "more than one JSON value"},
		"object":  {`{"name":"a"}`, "want []config.rawApp"},
		"missing": {"", "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			if name != "missing" {
				if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(tc.body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Parse([]byte(appsFileBase+"apps_file: "+name+".json\n"), dir, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "apps_file") {
				t.Fatalf("error %v; want one naming apps_file and %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error shows a secret: %v", err)
			}
		})
	}
}

// BenchmarkParseApps compares 10,000 apps written under apps: with the
// same apps in an apps_file.
func BenchmarkParseApps(b *testing.B) {
	const n = 10000
	dir := b.TempDir()
	var y, j strings.Builder
	y.WriteString(appsFileBase + "apps:\n")
	j.WriteString("[")
	for i := range n {
		fmt.Fprintf(&y, "  - {name: app-%05d, kind: classic, appid: wx%016d, secret: secret-%08d}\n", i, i, i)
		if i > 0 {
			j.WriteString(",\n")
		}
		fmt.Fprintf(&j, `{"name":"app-%05d","kind":"classic","appid":"wx%016d","secret":"secret-%08d"}`, i, i, i)
	}
	j.WriteString("]")
	if err := os.WriteFile(filepath.Join(dir, "apps.json"), []byte(j.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	for name, doc := range map[string]string{"yaml": y.String(), "apps_file": appsFileBase + "apps_file: apps.json\n"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if c, err := Parse([]byte(doc), dir, nil); err != nil || len(c.Apps) != n {
					b.Fatal(err)
				}
			}
		})
	}
}
