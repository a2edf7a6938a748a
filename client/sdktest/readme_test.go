package sdktest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/internal/replicatest"
	"github.com/wxtoken/wxtoken/jssdk"
)

// readmeBase is the replica address the README's snippets use; the test
// puts its replica's in its place.
const readmeBase = "http://127.0.0.1:8417"

// snippet is one fenced code block of the README.
type snippet struct {
	Section string // the ### heading it is under
	Lang    string // python or js
	Code    string
	Line    int
}

// readmeSnippets returns the python and js blocks of the README's section
// "Using wxtoken from your app".
func readmeSnippets(t *testing.T) []snippet {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out              []snippet
		in, inBlock      bool
		section, lang    string
		code             strings.Builder
		line, blockStart int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line++
		s := sc.Text()
		switch {
		case inBlock && s == "```":
			inBlock = false
			if in && (lang == "python" || lang == "js") {
				out = append(out, snippet{section, lang, code.String(), blockStart})
			}
		case inBlock:
			code.WriteString(s + "\n")
		case strings.HasPrefix(s, "```"):
			inBlock, lang, blockStart = true, strings.TrimPrefix(s, "```"), line
			code.Reset()
		case strings.HasPrefix(s, "## "):
			in = s == "## Using wxtoken from your app"
		case strings.HasPrefix(s, "### "):
			section = strings.TrimPrefix(s, "### ")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// interpreters finds python3 with the requests package and node 18 or
// newer. Missing ones fail the test: CI installs them (.ci/run).
func interpreters(t *testing.T) (python, node string) {
	t.Helper()
	for _, cand := range []string{"python3", "/usr/bin/python3"} {
		p, err := exec.LookPath(cand)
		if err == nil && exec.Command(p, "-c", "import requests").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		t.Fatal("no python3 with requests (apt-get install -y python3 python3-requests)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("no node on PATH (apt-get install -y nodejs)")
	}
	out, err := exec.Command(node, "--version").Output()
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".", 2)[0])
	if err != nil || major < 18 {
		t.Fatalf("node --version: %q, %v; the README's snippets need node 18 or newer", out, err)
	}
	return python, node
}

// run runs a program of lang written to dir/name and decodes the JSON
// object it prints last into v.
func run(t *testing.T, bin, dir, name, prog string, v any, args ...string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{path}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WXTOKEN_TOKEN="+readmeToken)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s\n--- program:\n%s", filepath.Base(bin), name, err, stderr, prog)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("%s %s: output %q: %v", filepath.Base(bin), name, out, err)
	}
}

// readmeToken is the bearer token the snippets send (as $WXTOKEN_TOKEN).
const readmeToken = "readme-snippet-client-token-0123456789"

// sent is a message the fake WeChat endpoint got.
type sent struct {
	Token string
	Body  map[string]any
}

// messageUpstream is the WeChat API for the replica: the simulator, plus
// cgi-bin/message/custom/send (which the simulator lacks), answered like
// WeChat answers it for a live or dead token.
type messageUpstream struct {
	env atomic.Pointer[replicatest.Env]

	mu   sync.Mutex
	sent []sent
}

func (u *messageUpstream) handler(sim *url.URL) http.Handler {
	proxy := httputil.NewSingleHostReverseProxy(sim)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cgi-bin/message/custom/send" {
			proxy.ServeHTTP(w, r)
			return
		}
		var m sent
		m.Token = r.URL.Query().Get("access_token")
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &m.Body)
		env := u.env.Load()
		w.Header().Set("Content-Type", "application/json")
		if env == nil || !env.Sim.Valid(m.Token, env.Clock.Now()) {
			fmt.Fprint(w, `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest"}`)
			return
		}
		u.mu.Lock()
		u.sent = append(u.sent, m)
		u.mu.Unlock()
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok"}`)
	})
}

func (u *messageUpstream) last() (sent, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.sent) == 0 {
		return sent{}, 0
	}
	return u.sent[len(u.sent)-1], len(u.sent)
}

// TestReadmeSnippets runs the README's Python and Node snippets (section
// "Using wxtoken from your app") against a replica of an app named shop,
// as the README has them, with only the replica's address and the token
// file's path put in, and checks what each one gets.
func TestReadmeSnippets(t *testing.T) {
	python, node := interpreters(t)
	up := &messageUpstream{}
	var upSrv *httptest.Server
	tokenFile := filepath.Join(t.TempDir(), "shop.token")
	env := replicatest.Start(t, replicatest.Options{
		Apps: []config.App{{Name: "shop", Kind: config.KindClassic, AppID: "wx0123456789abcdef", Secret: config.NewSecret("shop-secret"),
			DailyBudget: config.DefaultDailyBudget, Tickets: []string{config.TicketJSAPI}, TokenFile: tokenFile,
			AppAccess: config.AppAccess{JSSDKDomains: []string{"shop.example.com"}}}},
		Edit: func(cfg *config.Config) {
			// The snippets send $WXTOKEN_TOKEN, as the README says.
			sum := sha256.Sum256([]byte(readmeToken))
			cfg.Clients = []config.Client{{Name: "readme", TokenSHA256: sum[:], Apps: []string{"*"},
				Allow: []string{"read", "invalidate", "proxy", "jssdk"}}}
			sim, err := url.Parse(cfg.WeChat.BaseURL)
			if err != nil {
				t.Fatal(err)
			}
			upSrv = httptest.NewServer(up.handler(sim))
			cfg.WeChat.BaseURL = upSrv.URL
		},
	})
	t.Cleanup(upSrv.Close)
	up.env.Store(env)
	dir := t.TempDir()
	served := func() string { return env.Current(t, "shop", "token").Value }

	prepare := func(s snippet) string {
		if s.Section != "3. Read the token from a file" && !strings.Contains(s.Code, readmeBase) {
			t.Fatalf("README line %d: the snippet does not use %s", s.Line, readmeBase)
		}
		code := strings.ReplaceAll(s.Code, readmeBase, env.URL)
		code = strings.ReplaceAll(code, "/run/wxtoken/shop.token", tokenFile)
		// Sections 2 to 4 use the AUTH that section 1 defines.
		if strings.Contains(code, "AUTH") && !strings.Contains(code, "AUTH =") {
			switch s.Lang {
			case "python":
				code = "import os\nAUTH = {\"Authorization\": \"Bearer \" + os.environ[\"WXTOKEN_TOKEN\"]}\n" + code
			case "js":
				code = "const AUTH = { Authorization: `Bearer ${process.env.WXTOKEN_TOKEN}` };\n" + code
			}
		}
		return code
	}
	type tokenOut struct{ Token, Again string }
	checkToken := func(what string, got tokenOut, want string) {
		t.Helper()
		if got.Token != want || got.Again != "" && got.Again != want {
			t.Errorf("%s: got %q (then %q), want the served token %q", what, got.Token, got.Again, want)
		}
	}

	drivers := map[string]func(t *testing.T, s snippet){
		"1. Read the token; report a dead one/python": func(t *testing.T, s snippet) {
			prog := prepare(s) + `
import json, sys
if sys.argv[1] == "token":
    print(json.dumps({"Token": token(), "Again": token()}))
else:
    print(json.dumps({"Token": invalidate(sys.argv[2])}))
`
			var got tokenOut
			run(t, python, dir, "wx.py", prog, &got, "token")
			checkToken("token()", got, served())
			dead := got.Token
			seq := env.Current(t, "shop", "token").Seq
			env.KillToken(t, "shop")
			run(t, python, dir, "wx.py", prog, &got, "invalidate", dead)
			if next := env.Current(t, "shop", "token"); next.Seq != seq+1 || got.Token != next.Value {
				t.Errorf("invalidate(dead): got %q, want the new token of seq %d (served: seq %d)", got.Token, seq+1, next.Seq)
			}
		},
		"1. Read the token; report a dead one/js": func(t *testing.T, s snippet) {
			if err := os.WriteFile(filepath.Join(dir, "wx.mjs"), []byte(prepare(s)), 0o644); err != nil {
				t.Fatal(err)
			}
			driver := `import { token, invalidate } from "./wx.mjs";
if (process.argv[2] === "token") console.log(JSON.stringify({ Token: await token(), Again: await token() }));
else console.log(JSON.stringify({ Token: await invalidate(process.argv[3]) }));
`
			var got tokenOut
			run(t, node, dir, "driver.mjs", driver, &got, "token")
			checkToken("token()", got, served())
			dead := got.Token
			seq := env.Current(t, "shop", "token").Seq
			env.KillToken(t, "shop")
			run(t, node, dir, "driver.mjs", driver, &got, "invalidate", dead)
			if next := env.Current(t, "shop", "token"); next.Seq != seq+1 || got.Token != next.Value {
				t.Errorf("invalidate(dead): got %q, want the new token of seq %d (served: seq %d)", got.Token, seq+1, next.Seq)
			}
		},
		"2. Call WeChat through the replica's proxy/python": func(t *testing.T, s snippet) {
			var got struct {
				Status int
				Body   map[string]any
			}
			run(t, python, dir, "proxy.py", `import json, requests
msg = {"touser": "OPENID", "msgtype": "text", "text": {"content": "hi from python"}}
`+prepare(s)+`print(json.dumps({"Status": r.status_code, "Body": r.json()}))
`, &got)
			checkSent(t, up, got.Status, got.Body, "hi from python", served())
		},
		"2. Call WeChat through the replica's proxy/js": func(t *testing.T, s snippet) {
			var got struct {
				Status int
				Body   map[string]any
			}
			run(t, node, dir, "proxy.mjs", `const msg = { touser: "OPENID", msgtype: "text", text: { content: "hi from node" } };
`+prepare(s)+`console.log(JSON.stringify({ Status: r.status, Body: await r.json() }));
`, &got)
			checkSent(t, up, got.Status, got.Body, "hi from node", served())
		},
		"3. Read the token from a file/python": func(t *testing.T, s snippet) {
			waitFile(t, tokenFile, served())
			var got tokenOut
			run(t, python, dir, "file.py", prepare(s)+"import json\nprint(json.dumps({\"Token\": token}))\n", &got)
			checkToken("the token file", got, served())
		},
		"3. Read the token from a file/js": func(t *testing.T, s snippet) {
			waitFile(t, tokenFile, served())
			var got tokenOut
			run(t, node, dir, "file.mjs", "import fs from \"node:fs\";\n"+prepare(s)+"console.log(JSON.stringify({ Token: token }));\n", &got)
			checkToken("the token file", got, served())
		},
		"4. Sign pages for the JS-SDK/python": func(t *testing.T, s snippet) {
			var got jssdk.Signature
			run(t, python, dir, "sign.py", `import json, requests
page_url = "https://shop.example.com/pay?item=1&n=2"
`+prepare(s)+"print(json.dumps(sig))\n", &got)
			checkSignature(t, env, got, "https://shop.example.com/pay?item=1&n=2")
		},
		"4. Sign pages for the JS-SDK/js": func(t *testing.T, s snippet) {
			var got jssdk.Signature
			run(t, node, dir, "sign.mjs", `const pageUrl = "https://shop.example.com/pay?item=1&n=2";
`+prepare(s)+"console.log(JSON.stringify(sig));\n", &got)
			checkSignature(t, env, got, "https://shop.example.com/pay?item=1&n=2")
		},
	}

	ran := map[string]bool{}
	for _, s := range readmeSnippets(t) {
		key := s.Section + "/" + s.Lang
		drive, ok := drivers[key]
		if !ok {
			t.Errorf("README line %d: a %s snippet under %q that no test runs: add it to TestReadmeSnippets", s.Line, s.Lang, s.Section)
			continue
		}
		if ran[key] {
			t.Errorf("README line %d: a second %s snippet under %q: give it a test", s.Line, s.Lang, s.Section)
			continue
		}
		ran[key] = true
		t.Run(fmt.Sprintf("%s/line%d", key, s.Line), func(t *testing.T) { drive(t, s) })
	}
	for key := range drivers {
		if !ran[key] {
			t.Errorf("README: no %q snippet found: the README and this test disagree", key)
		}
	}
}

// checkSent checks a message sent through the replica's proxy.
func checkSent(t *testing.T, up *messageUpstream, status int, body map[string]any, content, token string) {
	t.Helper()
	if status != http.StatusOK || body["errcode"] != float64(0) {
		t.Errorf("answer: got %d %v, want 200 with errcode 0", status, body)
	}
	m, n := up.last()
	text, _ := m.Body["text"].(map[string]any)
	if n == 0 || m.Token != token || m.Body["touser"] != "OPENID" || text["content"] != content {
		t.Errorf("WeChat got %+v (of %d), want the message %q with the served token", m, n, content)
	}
}

// checkSignature checks a JS-SDK signature against the served ticket.
func checkSignature(t *testing.T, env *replicatest.Env, got jssdk.Signature, pageURL string) {
	t.Helper()
	ticket := env.Current(t, "shop", "jsapi").Value
	if want := jssdk.Sign(ticket, got.NonceStr, got.Timestamp, pageURL); got.Signature != want || got.AppID != "wx0123456789abcdef" || got.URL != pageURL {
		t.Errorf("signature: got %+v, want signature %s of %s for appId wx0123456789abcdef", got, want, pageURL)
	}
}

// waitFile waits until the token file holds want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("token file %s: got %q, %v; want the served token", path, b, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
