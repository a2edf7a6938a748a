package config

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	platformKey     = "Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc"
	platformPrevKey = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA"
)

// platformYAML is the contract, with a key file for encryption.
const platformYAML = `
node: n1
encryption:
  key_files: [records.key]
apps:
  - {name: shop, kind: classic, appid: wxshop, secret: s}
platforms:
  - name: saas
    component_appid: wx0123456789abcdef
    component_secret: ${SAAS_SECRET}
    token: ${SAAS_MSG_TOKEN}
    encoding_aes_key: ${SAAS_AES_KEY}
    previous_encoding_aes_key: ""
    daily_budget: 2000
`

var platformEnv = map[string]string{"SAAS_SECRET": "comp-secret-1", "SAAS_MSG_TOKEN": "msg-token-2", "SAAS_AES_KEY": platformKey}

func TestParsePlatforms(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "records.key", randomHexKey(t))
	writeFile(t, dir, "comp.secret", "file-secret\n")
	c, err := Parse([]byte(platformYAML), dir, env(platformEnv))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.Platform("saas")
	if !ok || len(c.Platforms) != 1 {
		t.Fatalf("platforms = %+v", c.Platforms)
	}
	if p.ComponentAppID != "wx0123456789abcdef" || p.ComponentSecret.Reveal() != "comp-secret-1" || p.Token.Reveal() != "msg-token-2" ||
		p.EncodingAESKey.Reveal() != platformKey || !p.PreviousEncodingAESKey.IsZero() || p.DailyBudget != 2000 {
		t.Errorf("platform = %+v (secrets %q %q)", p, p.ComponentSecret.Reveal(), p.Token.Reveal())
	}
	// A secret file, a previous key and the default budget.
	y := strings.Replace(platformYAML, "component_secret: ${SAAS_SECRET}", "component_secret_file: comp.secret", 1)
	y = strings.Replace(y, `previous_encoding_aes_key: ""`, "previous_encoding_aes_key: "+platformPrevKey, 1)
	y = strings.Replace(y, "    daily_budget: 2000\n", "", 1)
	if c, err = Parse([]byte(y), dir, env(platformEnv)); err != nil {
		t.Fatal(err)
	}
	p = c.Platforms[0]
	if p.ComponentSecret.Reveal() != "file-secret" || p.PreviousEncodingAESKey.Reveal() != platformPrevKey || p.DailyBudget != DefaultDailyBudget {
		t.Errorf("platform = %+v", p)
	}
	// A client may be scoped to a platform as to an app.
	if _, err := Parse([]byte(y+"clients:\n  - {name: c1, token_sha256: "+strings.Repeat("ab", 32)+", apps: [saas], allow: [read]}\n"), dir, env(platformEnv)); err != nil {
		t.Errorf("a client scoped to the platform: %v", err)
	}
	// Printing redacts every secret of the platform.
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"comp-secret-1", "file-secret", "msg-token-2", platformKey, platformPrevKey} {
		if strings.Contains(string(out), s) {
			t.Errorf("the printed config shows a secret:\n%s", out)
		}
	}
	if !strings.Contains(string(out), "component_appid: wx0123456789abcdef") || strings.Count(string(out), redacted) < 4 {
		t.Errorf("the printed platform:\n%s", out)
	}
}

func TestParsePlatformErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "records.key", randomHexKey(t))
	secrets := []string{"comp-secret-1", "msg-token-2", platformKey, "SHORTKEY-not-43"}
	for _, tt := range []struct {
		name, old, new, want string
	}{
		{"no encryption", "encryption:\n  key_files: [records.key]\n", "", "config: platforms: need encryption.key_files"},
		{"bad name", "name: saas", "name: Saas/x", `config: platforms[0].name: bad name "Saas/x"`},
		{"name of an app", "name: saas", "name: shop", `config: platforms[0].name: "shop" is also the name of apps[0]`},
		{"no appid", "component_appid: wx0123456789abcdef", "component_appid: ''", "config: platforms[0].component_appid: missing"},
		{"no secret", "    component_secret: ${SAAS_SECRET}\n", "", "config: platforms[0].component_secret: missing"},
		{"secret and file", "component_secret: ${SAAS_SECRET}", "component_secret: ${SAAS_SECRET}\n    component_secret_file: x", "config: platforms[0].component_secret: set either"},
		{"unset variable", "${SAAS_MSG_TOKEN}", "${NOPE}", "config: platforms[0].token: environment variable NOPE is unset"},
		{"no token", "    token: ${SAAS_MSG_TOKEN}\n", "", "config: platforms[0].token: missing"},
		{"no key", "    encoding_aes_key: ${SAAS_AES_KEY}\n", "", "config: platforms[0].encoding_aes_key: missing"},
		{"short key", "encoding_aes_key: ${SAAS_AES_KEY}", "encoding_aes_key: SHORTKEY-not-43", "config: platforms[0].encoding_aes_key: invalid EncodingAESKey: length 15, want 43"},
		{"bad previous key", `previous_encoding_aes_key: ""`, "previous_encoding_aes_key: '" + strings.Repeat("!", 43) + "'", "config: platforms[0].previous_encoding_aes_key: invalid EncodingAESKey: not base64"},
		{"same previous key", `previous_encoding_aes_key: ""`, "previous_encoding_aes_key: " + platformKey, "config: platforms[0].previous_encoding_aes_key: the same key as encoding_aes_key"},
		{"budget", "daily_budget: 2000", "daily_budget: 0", "config: platforms[0].daily_budget: 0 is not positive"},
		{"unknown key", "daily_budget: 2000", "daily_budget: 2000\n    secret: x", "config: platforms[0].secret: unknown key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.Replace(platformYAML, tt.old, tt.new, 1)
			_, err := Parse([]byte(y), dir, env(platformEnv))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
	// Two platforms with one name or one appid.
	two := platformYAML + `  - {name: saas, component_appid: wx0123456789abcdef, component_secret: x, token: t, encoding_aes_key: ` + platformKey + "}\n"
	_, err := Parse([]byte(two), dir, env(platformEnv))
	for _, want := range []string{`platforms[1].name: duplicate "saas"`, "platforms[1].component_appid: same platform as platforms[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want %q", err, want)
		}
	}
}
