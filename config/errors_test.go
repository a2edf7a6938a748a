package config

import (
	"strings"
	"testing"
)

// Every secret in these cases contains leakMarker; no error may.
const leakMarker = "SECRETVALUE"

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secret", "file-SECRETVALUE\n")
	writeFile(t, dir, "blank", "\n")
	lookup := env(map[string]string{"SHOP_SECRET": "env-SECRETVALUE", "EMPTY": ""})
	const shop = `{name: shop, kind: classic, appid: wx1, secret: "${SHOP_SECRET}"}`

	tests := []struct {
		name string
		yaml string
		want []string // each must be a line of the error
	}{
		{"unknown kind", `apps: [{name: shop, kind: classik, appid: wx1, secret: lit-SECRETVALUE}]`,
			[]string{`config: apps[0].kind: unknown kind "classik" (want classic, stable or wecom)`}},
		{"missing kind", `apps: [{name: shop, appid: wx1, secret: lit-SECRETVALUE}]`,
			[]string{`config: apps[0].kind: missing (want classic, stable or wecom)`}},
		{"missing secret", "apps:\n- " + shop + "\n- {name: b, kind: stable, appid: wx2}",
			[]string{`config: apps[1].secret: missing (set secret or secret_file)`}},
		{"empty secret", `apps: [{name: shop, kind: classic, appid: wx1, secret: ""}]`,
			[]string{`config: apps[0].secret: empty`}},
		{"secret and secret_file", `apps: [{name: shop, kind: classic, appid: wx1, secret: lit-SECRETVALUE, secret_file: secret}]`,
			[]string{`config: apps[0].secret: set either secret or secret_file, not both`}},
		{"unset env var", `apps: [{name: shop, kind: classic, appid: wx1, secret: "lit-SECRETVALUE${NOPE}"}]`,
			[]string{`config: apps[0].secret: environment variable NOPE is unset or empty`}},
		{"empty env var", `apps: [{name: shop, kind: classic, appid: wx1, secret: "${EMPTY}"}]`,
			[]string{`config: apps[0].secret: environment variable EMPTY is unset or empty`}},
		{"bad env name", `apps: [{name: shop, kind: classic, appid: wx1, secret: "${lit-SECRETVALUE}"}]`,
			[]string{`config: apps[0].secret: bad variable name in "${...}" (want letters, digits and _)`}},
		{"unterminated env", `apps: [{name: shop, kind: classic, appid: wx1, secret: "x${lit-SECRETVALUE"}]`,
			[]string{`config: apps[0].secret: "${" without a closing "}"`}},
		{"missing secret_file", `apps: [{name: shop, kind: classic, appid: wx1, secret_file: nope}]`,
			[]string{`config: apps[0].secret_file: open ` + dir + `/nope: no such file or directory`}},
		{"blank secret_file", `apps: [{name: shop, kind: classic, appid: wx1, secret_file: blank}]`,
			[]string{`config: apps[0].secret_file: file ` + dir + `/blank is empty`}},
		{"password and password_file", `etcd: {username: u, password: lit-SECRETVALUE, password_file: secret}`,
			[]string{`config: etcd.password: set either password or password_file, not both`}},
		{"password unset env", `etcd: {username: u, password: "${NOPE}"}`,
			[]string{`config: etcd.password: environment variable NOPE is unset or empty`}},
		{"username without password", `etcd: {username: u}`,
			[]string{`config: etcd.password: missing (etcd.username is set: set password or password_file)`}},
		{"password without username", `etcd: {password: lit-SECRETVALUE}`,
			[]string{`config: etcd.username: missing (etcd.password is set)`}},
		{"bad duration", "election:\n  ttl: ten",
			[]string{`config: election.ttl: bad duration "ten": time: invalid duration "ten"`}},
		{"duration without unit", "refresh: {margin: 30}",
			[]string{`config: refresh.margin: bad duration "30": time: missing unit in duration "30"`}},
		{"unknown top-level key", "node: a\nlisten_addr: x",
			[]string{`config: listen_addr: unknown key (line 2)`}},
		{"unknown nested key", "apps:\n  - " + shop + "\n  - name: b\n    kind: stable\n    appid: wx2\n    secrt: lit-SECRETVALUE",
			[]string{`config: apps[1].secrt: unknown key (line 6)`}},
		{"unknown keys everywhere", "etcd:\n  prefx: /x\nelection: {leader: true}",
			[]string{`config: etcd.prefx: unknown key (line 2)`, `config: election.leader: unknown key (line 3)`}},
		{"wrong type", "refresh:\n  concurrency: eight",
			[]string{"config: refresh.concurrency: got `eight`, want a whole number (line 2)"}},
		{"secret as mapping", "apps:\n- name: shop\n  secret: {v: lit-SECRETVALUE}",
			[]string{"config: apps[0].secret: got a mapping, want a string (line 3)"}},
		{"apps not a list", "apps: shop",
			[]string{"config: apps: got `shop`, want a list (line 1)"}},
		{"bad listen", "listen: 8417", []string{`config: listen: bad address "8417" (want host:port, e.g. 127.0.0.1:8417)`}},
		{"bad listen port", "listen: 'localhost:99999'", []string{`config: listen: bad port in "localhost:99999" (want 0 to 65535)`}},
		{"endpoint without scheme", "etcd: {endpoints: ['10.0.0.1:2379']}",
			[]string{`config: etcd.endpoints[0]: bad URL "10.0.0.1:2379" (want http://host:port or https://host:port)`}},
		{"endpoint bad scheme", "etcd: {endpoints: [http://a:2379, 'unix://b']}",
			[]string{`config: etcd.endpoints[1]: bad URL "unix://b" (want http://host:port or https://host:port)`}},
		{"endpoint with password", "etcd: {endpoints: ['http://root:lit-SECRETVALUE@a:2379']}",
			[]string{`config: etcd.endpoints[0]: must not hold a user name or password (want http://host:port or https://host:port)`}},
		{"endpoint with path", "etcd: {endpoints: ['http://a:2379/v3']}",
			[]string{`config: etcd.endpoints[0]: bad URL "http://a:2379/v3" (want no path)`}},
		{"duplicate endpoint", "etcd: {endpoints: [http://a:2379, http://a:2379]}",
			[]string{`config: etcd.endpoints[1]: duplicate of etcd.endpoints[0]`}},
		{"prefix without slash", "etcd: {prefix: wxtoken}",
			[]string{`config: etcd.prefix: bad prefix "wxtoken" (want it to start with "/" and not end with one, e.g. /wxtoken)`}},
		{"prefix with trailing slash", "etcd: {prefix: /wxtoken/}",
			[]string{`config: etcd.prefix: bad prefix "/wxtoken/" (want it to start with "/" and not end with one, e.g. /wxtoken)`}},
		{"bad base_url", "wechat: {base_url: 'api.weixin.qq.com'}",
			[]string{`config: wechat.base_url: bad URL "api.weixin.qq.com" (want http://host:port or https://host:port)`}},
		{"bad log level", "log_level: verbose",
			[]string{`config: log_level: unknown level "verbose" (want debug, info, warn or error)`}},
		{"bad node", "node: 'a b'", []string{`config: node: bad node name "a b" (want 1 to 253 characters, no spaces or "/")`}},
		{"duplicate app name", "apps:\n- " + shop + "\n- {name: b, kind: stable, appid: wx2, secret: s}\n- {name: shop, kind: stable, appid: wx3, secret: s}",
			[]string{`config: apps[2].name: duplicate "shop" (also apps[0])`}},
		{"bad app name", `apps: [{name: Shop, kind: classic, appid: wx1, secret: s}]`,
			[]string{`config: apps[0].name: bad name "Shop" (want [a-z0-9][a-z0-9_-]{0,62})`}},
		{"missing app name and appid", `apps: [{kind: classic, secret: s}]`,
			[]string{`config: apps[0].name: missing`, `config: apps[0].appid: missing`}},
		{"duplicate classic appid", "apps:\n- " + shop + "\n- {name: b, kind: classic, appid: wx1, secret: other}",
			[]string{`config: apps[1].appid: same credential as apps[0] (shop): two entries would refresh, and for classic invalidate, each other's tokens`}},
		{"duplicate wecom credential", "apps:\n- {name: a, kind: wecom, appid: ww1, secret: lit-SECRETVALUE}\n- {name: b, kind: wecom, appid: ww1, secret: lit-SECRETVALUE}",
			[]string{`config: apps[1].appid: same credential as apps[0] (a): two entries would refresh, and for classic invalidate, each other's tokens`}},
		{"unknown ticket", `apps: [{name: shop, kind: classic, appid: wx1, secret: s, tickets: [jsapi, card]}]`,
			[]string{`config: apps[0].tickets[1]: unknown ticket "card" (want jsapi or wx_card)`}},
		{"duplicate ticket", `apps: [{name: shop, kind: stable, appid: wx1, secret: s, tickets: [jsapi, jsapi]}]`,
			[]string{`config: apps[0].tickets[1]: duplicate "jsapi"`}},
		{"wecom tickets", `apps: [{name: shop, kind: wecom, appid: ww1, secret: s, tickets: [jsapi]}]`,
			[]string{`config: apps[0].tickets: only classic and stable apps have tickets`}},
		{"jitter equals before", "refresh: {before: 5m, jitter: 5m}",
			[]string{`config: refresh.jitter: 5m0s must be less than refresh.before (5m0s)`}},
		{"before too short", "refresh: {before: 50s, jitter: 1s}",
			[]string{`config: refresh.before: 50s must exceed refresh.fetch_timeout + refresh.margin (1m0s)`}},
		{"recovery window past the overlap", "refresh: {fetch_timeout: 80s}",
			[]string{`config: refresh.overlap: 5m0s is too short to recover an unfinished fetch: it must be at least 3 x refresh.fetch_timeout + 2 x refresh.margin + election.ttl + 1s (5m11s); lower fetch_timeout or margin`}},
		{"negative read_wait", "refresh: {read_wait: -1s}", []string{`config: refresh.read_wait: -1s is negative`}},
		{"negative margin", "refresh: {margin: -1s}", []string{`config: refresh.margin: -1s is negative`}},
		{"zero concurrency", "refresh: {concurrency: 0}", []string{`config: refresh.concurrency: 0 is less than 1`}},
		{"zero fetch_timeout", "refresh: {fetch_timeout: 0s}", []string{`config: refresh.fetch_timeout: 0s is not positive`}},
		{"ttl too short", "election: {ttl: 1s}", []string{`config: election.ttl: 1s is out of range (want 2s to 5m0s)`}},
		{"ttl too long", "election: {ttl: 6m}", []string{`config: election.ttl: 6m0s is out of range (want 2s to 5m0s)`}},
		{"ttl fractional", "election: {ttl: 2500ms}", []string{`config: election.ttl: 2.5s is not a whole number of seconds (etcd leases count seconds)`}},
		{"negative holdoff", "election: {holdoff: -1m}", []string{`config: election.holdoff: -1m0s is negative`}},
		{"zero budget", `apps: [{name: shop, kind: stable, appid: wx1, secret: s, daily_budget: 0}]`,
			[]string{`config: apps[0].daily_budget: 0 is not positive`}},
		{"negative budget", `apps: [{name: shop, kind: wecom, appid: ww1, secret: s, daily_budget: -5}]`,
			[]string{`config: apps[0].daily_budget: -5 is not positive`}},
		{"classic budget over limit", `apps: [{name: shop, kind: classic, appid: wx1, secret: s, daily_budget: 2001}]`,
			[]string{`config: apps[0].daily_budget: 2001 is above WeChat's daily limit of 2000 for classic tokens`}},
		{"two documents", "node: a\n---\nnode: b", []string{`config: more than one YAML document (want one)`}},
		{"syntax error", "apps: [", []string{`config: line 1: did not find expected node content`}},
		{"several problems", "listen: nope\napps:\n- {name: shop, kind: classik, appid: wx1, secret: lit-SECRETVALUE}",
			[]string{`config: listen: bad address "nope" (want host:port, e.g. 127.0.0.1:8417)`,
				`config: apps[0].kind: unknown kind "classik" (want classic, stable or wecom)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), dir, lookup)
			if err == nil {
				t.Fatalf("Parse: got %+v, nil error; want errors %q", c, tt.want)
			}
			msg := err.Error()
			if strings.Contains(msg, leakMarker) {
				t.Errorf("error leaks a secret: %q", msg)
			}
			lines := strings.Split(msg, "\n")
			for _, line := range lines {
				if !strings.HasPrefix(line, "config: ") {
					t.Errorf("error line %q: want prefix %q", line, "config: ")
				}
			}
			for _, w := range tt.want {
				if !contains(lines, w) {
					t.Errorf("error:\n got %s\nwant a line %s", msg, w)
				}
			}
		})
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// TestParseLimits checks values just inside each limit are accepted.
func TestParseLimits(t *testing.T) {
	tests := []string{
		"election: {ttl: 2s}",
		"election: {ttl: 5m, holdoff: 0s}\nrefresh: {overlap: 8m}",
		"refresh: {before: 61s, jitter: 60s, margin: 0s}",
		"refresh: {before: 2s, jitter: 0s, fetch_timeout: 1s, margin: 500ms, concurrency: 1}",
		"listen: ':0'\nallow_anonymous: true",
		"listen: '[::1]:8417'",
		"etcd: {endpoints: ['http://a:2379/', 'https://b']}",
		"apps: [{name: shop, kind: classic, appid: wx1, secret: s, daily_budget: 2000}]",
		"apps: [{name: shop, kind: stable, appid: wx1, secret: s, daily_budget: 10000}]",
		"apps: [{name: a, kind: classic, appid: wx1, secret: s}, {name: b, kind: stable, appid: wx1, secret: s}]",
		"apps: [{name: a, kind: wecom, appid: ww1, secret: s1}, {name: b, kind: wecom, appid: ww1, secret: s2}]",
		"apps: [{name: " + strings.Repeat("a", 63) + ", kind: stable, appid: wx1, secret: 'a$b$'}]",
	}
	for _, y := range tests {
		t.Run(y, func(t *testing.T) {
			if _, err := Parse([]byte(y), "", nil); err != nil {
				t.Errorf("Parse: got %v, want nil", err)
			}
		})
	}
}
