package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/replica"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// replicaConfig is the config of a replica reaching etcd at endpoint as
// the candidate or the sidecar user, with the replicas' certificate.
func (e *etcdWithProxy) replicaConfig(t *testing.T, node, endpoint string, candidate bool, simURL string) *config.Config {
	t.Helper()
	user, pw := tokenstore.RoleSidecar, e.sidecarPW
	if candidate {
		user, pw = tokenstore.RoleCandidate, e.candidatPW
	}
	yaml := fmt.Sprintf(`node: %s
listen: 127.0.0.1:0
data_dir: %s
etcd:
  endpoints: [%s]
  prefix: %s
  username: %s
  password_file: %s
  tls: {ca_file: %s, cert_file: %s, key_file: %s}
election: {ttl: 5s, candidate: %t}
wechat: {base_url: %s, wecom_base_url: %s, insecure_http: true}
apps:
  - {name: demo, kind: classic, appid: %s, secret: %s}
`, node, t.TempDir(), endpoint, proxyPrefix, user, pw, e.path("ca.crt"), e.path("replica.crt"), e.path("replica.key"),
		candidate, simURL, simURL, proxyAppID, proxySecret)
	cfg, err := config.Parse([]byte(yaml), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config of %s: %v", node, err)
	}
	return cfg
}

// runReplica runs a replica until the test ends.
func runReplica(t *testing.T, cfg *config.Config) *replica.Replica {
	t.Helper()
	r, err := replica.New(replica.Options{Config: cfg})
	if err != nil {
		t.Fatalf("replica %s: %v", cfg.Node, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("replica %s: Run: %v", cfg.Node, err)
		}
		r.Close()
	})
	return r
}

// servedToken GETs the token a replica serves ("" on any failure).
func servedToken(ctx context.Context, base string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/apps/demo/token", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tr) != nil {
		return ""
	}
	return tr.AccessToken
}

// invalidateAt reports token dead at the replica at base and returns the
// token it answers with.
func invalidateAt(ctx context.Context, t *testing.T, base, token string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"access_token": token})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/apps/demo/token/invalidate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invalidate: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &tr) != nil {
		t.Fatalf("invalidate at %s: %d %s", base, resp.StatusCode, b)
	}
	return tr.AccessToken
}

// strayFetch fetches a token straight from the simulator, as another host
// would: with the simulator's overlap of 1 ms, the served one dies.
func strayFetch(t *testing.T, sim *wechattest.Server) {
	t.Helper()
	q := url.Values{"grant_type": {"client_credential"}, "appid": {proxyAppID}, "secret": {proxySecret}}
	resp, err := http.Get(sim.URL + "/cgi-bin/token?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	time.Sleep(5 * time.Millisecond) // past the 1 ms overlap
}

// isDenied reports whether err is etcd refusing the caller (no such user,
// no permission, no token).
func isDenied(err error) bool {
	return errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrUserEmpty) ||
		errors.Is(err, rpctypes.ErrUserNotFound) || errors.Is(err, rpctypes.ErrInvalidAuthToken) ||
		errors.Is(err, rpctypes.ErrAuthFailed)
}

// dialWithoutCert logs in to the proxy as the sidecar user, showing no
// client certificate.
func (e *etcdWithProxy) dialWithoutCert(ctx context.Context) error {
	tc, err := (transport.TLSInfo{TrustedCAFile: e.path("ca.crt")}).ClientConfig()
	if err != nil {
		return err
	}
	pw, err := os.ReadFile(e.sidecarPW)
	if err != nil {
		return err
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{e.proxy}, TLS: tc, DialTimeout: 2 * time.Second,
		Username: tokenstore.RoleSidecar, Password: strings.TrimSpace(string(pw)), Logger: zap.NewNop(), Context: ctx})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Get(ctx, proxyPrefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	return err
}

// client connects to endpoint with the certificate cert (none if empty)
// as user (none if empty) with the password in pwFile.
func (e *etcdWithProxy) client(t *testing.T, endpoint, cert, user, pwFile string) *clientv3.Client {
	t.Helper()
	info := transport.TLSInfo{TrustedCAFile: e.path("ca.crt")}
	if cert != "" {
		info.CertFile, info.KeyFile = e.path(cert+".crt"), e.path(cert+".key")
	}
	tc, err := info.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientv3.Config{Endpoints: []string{endpoint}, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if user != "" {
		pw, err := os.ReadFile(pwFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Username, cfg.Password = user, strings.TrimSpace(string(pw))
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
