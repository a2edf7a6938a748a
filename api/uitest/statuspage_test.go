package uitest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/internal/replicatest"
)

var screenshots = flag.Bool("screenshots", false, "write the screenshots to ../../docs/ (README)")

// page is what the browser shows, read from the rendered DOM.
type page struct {
	Node, Leader, Readiness, Now string
	Creds                        []struct {
		Cred, Name, Kind, Left, Fetches, Next string
		States                                []string
		// LeftShare is the time-left bar's rendered width over its
		// track's.
		LeftShare float64
	}
	Replicas []struct{ Node, API, Role string }
	// ScrollWidth over InnerWidth > 1 means the page scrolls sideways.
	ScrollWidth, InnerWidth float64
	HTML, Text              string
}

const readPage = `(() => {
  const txt = (root, sel) => { const e = root.querySelector(sel); return e ? e.textContent.trim().replace(/\s+/g, " ") : ""; };
  return {
    Node: txt(document, "#node"), Leader: txt(document, "#leader"), Readiness: txt(document, "#readiness"), Now: txt(document, "#now"),
    Creds: [...document.querySelectorAll("article.cred")].map(a => {
      const fill = a.querySelector(".meter .fill");
      return {
        Cred: a.dataset.cred, Name: txt(a, ".name"), Kind: txt(a, ".kind"), Left: txt(a, ".left"),
        Fetches: txt(a, ".fetches"), Next: txt(a, ".next"),
        States: [...a.querySelectorAll(".state")].map(s => s.textContent.trim()),
        LeftShare: fill.getBoundingClientRect().width / fill.parentElement.getBoundingClientRect().width,
      };
    }),
    Replicas: [...document.querySelectorAll("tr.replica")].map(r => ({Node: r.dataset.node, API: txt(r, ".api"), Role: txt(r, ".role")})),
    ScrollWidth: document.documentElement.scrollWidth, InnerWidth: window.innerWidth,
    HTML: document.documentElement.outerHTML, Text: document.body.innerText,
  };
})()`

// wantStates is what the page must say about a credential in /v1/status.
func wantStates(cs api.CredStatus) []string {
	var s []string
	switch {
	case cs.Usable:
		s = append(s, "usable")
	case cs.Seq > 0:
		s = append(s, "expired")
	default:
		s = append(s, "no token yet")
	}
	if cs.InFlight {
		s = append(s, "fetch in flight")
	}
	if cs.Blocked != "" {
		s = append(s, "blocked")
	}
	return s
}

// browser starts Debian's chromium, headless. A machine without it fails
// the test: CI installs it (.ci/run).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("no chromium on PATH (apt-get install -y chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("hide-scrollbars", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser, with no timeout
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// TestStatusPage opens a replica's status page in headless Chromium at a
// phone's and a desktop's size, checks what it shows against /v1/status,
// checks that it reloads itself, and takes a screenshot of each.
func TestStatusPage(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{Apps: []config.App{
		{Name: "shop", Kind: config.KindClassic, AppID: "wx0000000000000001", Secret: config.NewSecret("shop-secret-0001"),
			DailyBudget: config.DefaultDailyBudget, Tickets: []string{config.TicketJSAPI}},
		{Name: "mini", Kind: config.KindStable, AppID: "wx0000000000000002", Secret: config.NewSecret("mini-secret-0002"), DailyBudget: 500},
		{Name: "crm", Kind: config.KindWeCom, AppID: "ww0000000000000003", Secret: config.NewSecret("crm-secret-0003"), DailyBudget: 200},
	}})
	secrets := map[string]string{"shop secret": "shop-secret-0001", "mini secret": "mini-secret-0002", "crm secret": "crm-secret-0003",
		"shop token": env.Current(t, "shop", "token").Value, "shop ticket": env.Current(t, "shop", "jsapi").Value,
		"mini token": env.Current(t, "mini", "token").Value, "crm token": env.Current(t, "crm", "token").Value}
	ctx := browser(t)

	for _, vp := range []struct {
		name          string
		width, height int64
		mobile        bool
		file          string
	}{
		{"phone", 412, 915, true, "status-page.png"},
		{"desktop", 1280, 800, false, "status-page-desktop.png"},
	} {
		t.Run(vp.name, func(t *testing.T) {
			st := status(t, env.URL)
			emulate := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
			if vp.mobile {
				emulate = []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}
			}
			step, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			if err := chromedp.Do(step, chromedp.EmulateViewport(vp.width, vp.height, emulate...), chromedp.Navigate(env.URL+"/ui/")); err != nil {
				t.Fatalf("open the page: %v", err)
			}
			got, err := chromedp.Run(step, chromedp.Evaluate[page](readPage))
			if err != nil {
				t.Fatalf("read the page: %v", err)
			}
			shot, err := chromedp.Run(step, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			checkPage(t, got, st, secrets)
			if got.InnerWidth != float64(vp.width) || got.ScrollWidth > got.InnerWidth {
				t.Errorf("layout: %v px wide in a %v px viewport (want %d, no sideways scrolling)", got.ScrollWidth, got.InnerWidth, vp.width)
			}
			checkPNG(t, shot, vp.width, vp.file)

			// The page reloads itself: a new load, rendered at a later time.
			loaded := make(chan struct{}, 1)
			lctx, stop := context.WithCancel(step)
			defer stop()
			if err := chromedp.Listen(lctx, func(ev any) {
				if _, ok := ev.(*cdppage.EventLoadEventFired); ok {
					select {
					case loaded <- struct{}{}:
					default:
					}
				}
			}); err != nil {
				t.Fatalf("listen: %v", err)
			}
			select {
			case <-loaded:
			case <-time.After(20 * time.Second):
				t.Fatalf("the page did not reload itself within 20 s")
			}
			stop()
			again, err := chromedp.Run(step, chromedp.Evaluate[string](`document.querySelector("#now").textContent`))
			if err != nil || again == got.Now {
				t.Errorf("after the reload: rendered at %q (err %v), want a time after %s", again, err, got.Now)
			}
		})
	}
}

// status reads /v1/status.
func status(t *testing.T, base string) api.Status {
	t.Helper()
	resp, err := http.Get(base + "/v1/status")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	defer resp.Body.Close()
	var st api.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

// checkPage compares what the browser shows with st.
func checkPage(t *testing.T, got page, st api.Status, secrets map[string]string) {
	t.Helper()
	if got.Node != st.Node || got.Leader != st.Leader || st.Leader == "" {
		t.Errorf("node, leader: got %q, %q; want %q, %q (and a leader)", got.Node, got.Leader, st.Node, st.Leader)
	}
	if want := map[bool]string{true: "ready", false: "not ready"}[st.Ready]; got.Readiness != want {
		t.Errorf("readiness: got %q, want %q", got.Readiness, want)
	}
	if len(got.Creds) != len(st.Credentials) {
		t.Fatalf("credentials: got %d on the page, want %d as in /v1/status", len(got.Creds), len(st.Credentials))
	}
	now := time.Now()
	for i, cs := range st.Credentials {
		c := got.Creds[i]
		if c.Cred != cs.Cred || c.Name != cs.Cred || c.Kind != cs.Kind {
			t.Errorf("credential %d: got %q (%q, %s), want %q (%s)", i, c.Cred, c.Name, c.Kind, cs.Cred, cs.Kind)
		}
		if want := wantStates(cs); strings.Join(c.States, ",") != strings.Join(want, ",") {
			t.Errorf("%s: states %q, want %q", cs.Cred, c.States, want)
		}
		if want := fmt.Sprintf("%d / %d", cs.FetchesToday, cs.Budget); c.Fetches != want || cs.FetchesToday < 1 {
			t.Errorf("%s: fetches %q, want %q (and at least one)", cs.Cred, c.Fetches, want)
		}
		if !strings.HasSuffix(c.Left, " left") || !strings.HasPrefix(c.Next, "in ") {
			t.Errorf("%s: time left %q, next refresh %q; want \"... left\" and \"in ...\"", cs.Cred, c.Left, c.Next)
		}
		// The bar shows the share of the token's life that is left.
		want := float64(cs.ExpiresAt.Sub(now)) / float64(cs.ExpiresAt.Sub(cs.FetchedAt))
		if math.Abs(c.LeftShare-want) > 0.03 {
			t.Errorf("%s: time-left bar %.3f of its track, want %.3f", cs.Cred, c.LeftShare, want)
		}
	}
	if len(got.Replicas) != len(st.Replicas) || len(st.Replicas) == 0 {
		t.Fatalf("replicas: got %d on the page, want %d (at least one)", len(got.Replicas), len(st.Replicas))
	}
	for i, r := range st.Replicas {
		role := map[bool]string{true: "candidate", false: "watcher"}[r.Candidate]
		if g := got.Replicas[i]; g.Node != r.Node || g.API != r.API || g.Role != role {
			t.Errorf("replica %d: got %+v, want %s at %s, %s", i, g, r.Node, r.API, role)
		}
	}
	for what, v := range secrets {
		if strings.Contains(got.HTML, v) || strings.Contains(got.Text, v) {
			t.Errorf("the page shows the %s", what)
		}
	}
}

// checkPNG checks that shot is a PNG as wide as the viewport (times the
// device scale) and writes it to docs/ with -screenshots.
func checkPNG(t *testing.T, shot []byte, width int64, file string) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if w := int64(img.Bounds().Dx()); w != width && w != 2*width {
		t.Errorf("screenshot: %d px wide, want %d or %d", w, width, 2*width)
	}
	out := filepath.Join(t.TempDir(), file)
	if *screenshots {
		out = filepath.Join("..", "..", "docs", file)
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatalf("write screenshot: %v", err)
	}
	t.Logf("screenshot: %s (%dx%d)", out, img.Bounds().Dx(), img.Bounds().Dy())
}
