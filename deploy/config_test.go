package deploy_test

import (
	"path/filepath"
	"testing"

	"github.com/wxtoken/wxtoken/config"
)

// TestConfigs keeps the replica configs that docker-compose.yml,
// docker-compose.prod.yml and the compose e2e test mount valid as the
// config package evolves.
func TestConfigs(t *testing.T) {
	t.Setenv("APP_SECRET", "secret-for-the-test")
	for _, path := range []string{
		"wxtoken.yaml",
		"wxtoken.prod.example.yaml",
		filepath.Join("..", "e2e", "testdata", "wxtoken.yaml"),
	} {
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatalf("config.Load(%s): %v", path, err)
			}
			if got, want := cfg.Listen, "0.0.0.0:8417"; got != want {
				t.Errorf("listen = %q, want %q (the port the compose file publishes, on every interface)", got, want)
			}
			if got := len(cfg.Etcd.Endpoints); got != 3 {
				t.Errorf("etcd.endpoints has %d members, want the 3 of the compose file", got)
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
