package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wxtoken/wxtoken/config"
)

// etcdFiles is where the replicas of docker-compose.yml find their etcd
// certificates and password.
const etcdFiles = "/etc/wxtoken/etcd/"

// TestConfigs keeps the replica configs that docker-compose.yml,
// docker-compose.prod.yml and the compose e2e test mount valid as the
// config package evolves, with the certificates and passwords that
// deploy/gen-certs.sh makes and docker-compose.yml mounts.
func TestConfigs(t *testing.T) {
	t.Setenv("APP_SECRET", "secret-for-the-test")
	certs := filepath.Join(t.TempDir(), "certs")
	if out, err := exec.Command("./gen-certs.sh", certs).CombinedOutput(); err != nil {
		t.Fatalf("gen-certs.sh: %v\n%s", err, out)
	}
	compose, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	mounted := regexp.MustCompile(`(?m)^\s*- \./deploy/certs/(\S+):` + etcdFiles + `(\S+):ro$`)
	mounts := map[string]bool{}
	for _, m := range mounted.FindAllStringSubmatch(string(compose), -1) {
		if m[1] == m[2] {
			mounts[m[1]] = true
		}
	}
	for _, tc := range []struct {
		path string
		// sidecar: the fleet profile's serve-only sidecar, reaching etcd
		// through etcd-proxy only, as the wxtoken-sidecar user.
		sidecar bool
	}{
		{path: "wxtoken.yaml"},
		{path: "wxtoken.prod.example.yaml"},
		{path: filepath.Join("..", "e2e", "testdata", "wxtoken.yaml")},
		{path: "wxtoken-sidecar.yaml", sidecar: true},
		{path: filepath.Join("..", "e2e", "testdata", "wxtoken-sidecar.yaml"), sidecar: true},
	} {
		path := tc.path
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range regexp.MustCompile(etcdFiles+`(\S+)`).FindAllStringSubmatch(string(data), -1) {
				if !mounts[f[1]] {
					t.Errorf("%s names %s, which docker-compose.yml does not mount from ./deploy/certs", path, f[0])
				}
			}
			local := strings.ReplaceAll(string(data), etcdFiles, certs+"/")
			cfg, err := config.Parse([]byte(local), filepath.Dir(path), os.LookupEnv)
			if err != nil {
				t.Fatalf("config.Parse(%s): %v", path, err)
			}
			if got, want := cfg.Listen, "0.0.0.0:8417"; got != want {
				t.Errorf("listen = %q, want %q (the port the compose file publishes, on every interface)", got, want)
			}
			switch {
			case tc.sidecar:
				if got, want := strings.Join(cfg.Etcd.Endpoints, ","), "https://etcd-proxy:2379"; got != want {
					t.Errorf("etcd.endpoints = %s, want %s (the fleet profile's proxy, only)", got, want)
				}
				if cfg.Election.Candidate || cfg.Etcd.Username != "wxtoken-sidecar" {
					t.Errorf("candidate %v, etcd user %q; want a serve-only sidecar logged in as wxtoken-sidecar", cfg.Election.Candidate, cfg.Etcd.Username)
				}
			case len(cfg.Etcd.Endpoints) != 3:
				t.Errorf("etcd.endpoints has %d members, want the 3 of the compose file", len(cfg.Etcd.Endpoints))
			}
			if cfg.Etcd.TLS.IsZero() || cfg.Etcd.Username == "" {
				t.Errorf("etcd: tls %+v, username %q; want both (the compose etcd wants TLS and auth)", cfg.Etcd.TLS, cfg.Etcd.Username)
			}
			if len(cfg.Apps) == 0 {
				t.Error("no apps")
			}
			// Listening on every interface, the API must know its callers.
			if len(cfg.Clients) == 0 || cfg.Anonymous() {
				t.Errorf("clients: %d, anonymous %v; want clients and no anonymous access", len(cfg.Clients), cfg.Anonymous())
			}
		})
	}
}
