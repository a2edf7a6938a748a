package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// designExample is the configuration from design.md, "Interface that users
// and tests rely on", extended with every other key.
const designExample = `
node: replica-1            # default: the host name
listen: 127.0.0.1:8417     # the HTTP API
data_dir: ./wxtoken-data   # embedded etcd lives here when no endpoints are set
log_level: debug
etcd:
  endpoints: [https://10.0.0.1:2379, https://10.0.0.2:2379]
  prefix: /wxtoken
  username: wxtoken
  password: ${ETCD_PASSWORD}
  dial_timeout: 3s
election:
  ttl: 10s
  candidate: true          # false: watch and serve only, never call WeChat
  holdoff: 15m
refresh:
  before: 8m
  jitter: 90s
  fetch_timeout: 20s
  concurrency: 4
  margin: 1m
wechat:
  base_url: https://api.weixin.qq.com      # all mp/mini-program calls
  wecom_base_url: https://qyapi.weixin.qq.com
apps:
  - name: shop                # used in URLs: /v1/apps/shop/token
    kind: classic             # classic | stable | wecom
    appid: wx0123456789abcdef # corpid for wecom
    secret: ${SHOP_SECRET}    # or secret_file: /run/secrets/shop
    tickets: [jsapi, wx_card]
  - name: mini
    kind: stable
    appid: wxfedcba9876543210
    secret_file: secrets/mini
    daily_budget: 5000
  - name: crm
    kind: wecom
    appid: ww0123456789abcdef
    secret: literal-${CRM_PART}-tail
`

// defaultAccess and defaultAppAccess are what Parse fills in for absent
// access keys.
var (
	defaultAccess = Access{
		SocketMode:  DefaultSocketMode,
		HTTP:        HTTP{ReadTimeout: DefaultReadTimeout, WriteTimeout: DefaultWriteTimeout, MaxConns: DefaultMaxConns},
		ReportLimit: ReportLimit{PerClient: DefaultReportsClient, PerCredential: DefaultReportsCred},
	}
	defaultAppAccess = AppAccess{TokenFileMode: DefaultTokenFileMode}
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseDesignExample(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secrets/mini", "mini-secret\n")
	got, err := Parse([]byte(designExample), dir, env(map[string]string{
		"ETCD_PASSWORD": "etcd-pw",
		"SHOP_SECRET":   "shop-secret",
		"CRM_PART":      "middle",
	}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Config{
		Node:     "replica-1",
		Listen:   "127.0.0.1:8417",
		DataDir:  "./wxtoken-data",
		LogLevel: "debug",
		Etcd: Etcd{
			Endpoints:   []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"},
			Prefix:      "/wxtoken",
			Username:    "wxtoken",
			Password:    NewSecret("etcd-pw"),
			DialTimeout: 3 * time.Second,
		},
		Election: Election{TTL: 10 * time.Second, Candidate: true, Holdoff: 15 * time.Minute},
		Refresh: Refresh{
			Before:         8 * time.Minute,
			Jitter:         90 * time.Second,
			FetchTimeout:   20 * time.Second,
			Concurrency:    4,
			Margin:         time.Minute,
			Overlap:        5 * time.Minute,
			ReadWait:       2 * time.Second,
			InvalidateWait: 10 * time.Second,
			ReportInterval: time.Minute,
		},
		WeChat: WeChat{BaseURL: "https://api.weixin.qq.com", WeComBaseURL: "https://qyapi.weixin.qq.com"},
		Access: defaultAccess,
		Apps: []App{
			{Name: "shop", Kind: KindClassic, AppID: "wx0123456789abcdef", Secret: NewSecret("shop-secret"), DailyBudget: 1000, Tickets: []string{"jsapi", "wx_card"}, AppAccess: defaultAppAccess},
			{Name: "mini", Kind: KindStable, AppID: "wxfedcba9876543210", Secret: NewSecret("mini-secret"), DailyBudget: 5000, AppAccess: defaultAppAccess},
			{Name: "crm", Kind: KindWeCom, AppID: "ww0123456789abcdef", Secret: NewSecret("literal-middle-tail"), DailyBudget: 1000, AppAccess: defaultAppAccess},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
	}
	// %+v hides secrets, so compare them on their own for a useful message.
	if g, w := got.Etcd.Password.Reveal(), "etcd-pw"; g != w {
		t.Errorf("etcd password: got %q, want %q", g, w)
	}
	for i, w := range []string{"shop-secret", "mini-secret", "literal-middle-tail"} {
		if g := got.Apps[i].Secret.Reveal(); g != w {
			t.Errorf("apps[%d] secret: got %q, want %q", i, g, w)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name: %v", err)
	}
	want := &Config{
		Node:     host,
		Listen:   DefaultListen,
		DataDir:  DefaultDataDir,
		LogLevel: "info",
		Etcd:     Etcd{Prefix: "/wxtoken", DialTimeout: 5 * time.Second},
		Election: Election{TTL: 10 * time.Second, Candidate: true, Holdoff: 10 * time.Minute},
		Refresh: Refresh{
			Before:         8 * time.Minute,
			Jitter:         time.Minute,
			FetchTimeout:   30 * time.Second,
			Concurrency:    8,
			Margin:         30 * time.Second,
			Overlap:        5 * time.Minute,
			ReadWait:       2 * time.Second,
			InvalidateWait: 10 * time.Second,
			ReportInterval: time.Minute,
		},
		WeChat: WeChat{BaseURL: "https://api.weixin.qq.com", WeComBaseURL: "https://qyapi.weixin.qq.com"},
		Access: defaultAccess,
	}
	withApp := *want
	withApp.Apps = []App{{Name: "a", Kind: KindStable, AppID: "wx1", Secret: NewSecret("s"), DailyBudget: 1000, AppAccess: defaultAppAccess}}
	withSlash := *want
	withSlash.WeChat = WeChat{BaseURL: "http://127.0.0.1:9000/sim", WeComBaseURL: "http://127.0.0.1:9000"}

	tests := []struct {
		name string
		yaml string
		want *Config
	}{
		{"empty file", "", want},
		{"comments only", "# nothing here\n", want},
		{"empty sections", "etcd:\nelection: {}\nrefresh:\napps: []\n", want},
		{"one app", "apps: [{name: a, kind: stable, appid: wx1, secret: s}]", &withApp},
		{"trailing slash trimmed", "wechat: {base_url: 'http://127.0.0.1:9000/sim/', wecom_base_url: 'http://127.0.0.1:9000/'}", &withSlash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), "", nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseCandidate(t *testing.T) {
	tests := []struct {
		yaml string
		want bool
	}{
		{"", true},
		{"election: {ttl: 5s}", true},
		{"election: {candidate: true}", true},
		{"election: {candidate: false}", false},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "", nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.Election.Candidate != tt.want {
				t.Errorf("candidate: got %v, want %v", c.Election.Candidate, tt.want)
			}
		})
	}
}

func TestParseSecretFile(t *testing.T) {
	dir := t.TempDir()
	abs := writeFile(t, dir, "abs", "abs-secret")
	writeFile(t, dir, "lf", "lf-secret\n")
	writeFile(t, dir, "crlf", "crlf-secret\r\n")
	writeFile(t, dir, "sub/dollar", "p@ss ${NOT_EXPANDED} \n\n")
	tests := []struct {
		file string
		want string
	}{
		{abs, "abs-secret"},
		{"lf", "lf-secret"},
		{"crlf", "crlf-secret"},
		{"sub/dollar", "p@ss ${NOT_EXPANDED} "},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			y := "etcd: {username: u, password_file: '" + tt.file + "'}\n" +
				"apps: [{name: a, kind: classic, appid: wx1, secret_file: '" + tt.file + "'}]"
			c, err := Parse([]byte(y), dir, nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := c.Apps[0].Secret.Reveal(); got != tt.want {
				t.Errorf("secret: got %q, want %q", got, tt.want)
			}
			if got := c.Etcd.Password.Reveal(); got != tt.want {
				t.Errorf("etcd password: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secrets/shop", "file-secret\n")
	path := writeFile(t, dir, "wxtoken.yaml", `
apps:
  - {name: shop, kind: classic, appid: wx1, secret_file: secrets/shop}
  - {name: mini, kind: stable, appid: wx2, secret: "${WXTOKEN_TEST_MINI}"}
`)
	t.Setenv("WXTOKEN_TEST_MINI", "env-secret")
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, tt := range []struct{ app, want string }{{"shop", "file-secret"}, {"mini", "env-secret"}} {
		a, ok := c.App(tt.app)
		if !ok {
			t.Fatalf("App(%q): not found", tt.app)
		}
		if got := a.Secret.Reveal(); got != tt.want {
			t.Errorf("App(%q) secret: got %q, want %q", tt.app, got, tt.want)
		}
	}
	if _, ok := c.App("nope"); ok {
		t.Errorf("App(%q): got found, want not found", "nope")
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Errorf("Load(missing file): got nil error, want one")
	}
}
