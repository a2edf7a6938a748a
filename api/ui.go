package api

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"time"
)

//go:embed ui/*.tmpl
var uiFiles embed.FS

// uiTemplate is the status page. The templates are part of the binary, so
// a parse error is a build mistake that every test run catches.
var uiTemplate = template.Must(template.New("page.tmpl").ParseFS(uiFiles, "ui/*.tmpl"))

// UIPath is where the status page for people is served. GET / redirects
// there.
const UIPath = "/ui/"

// uiRefresh is how often the page reloads itself, in seconds.
const uiRefresh = 5

// credStates lists the states of a credential as the status page shows
// them: first whether it can be handed out ("usable", "expired", or "no
// token yet" before its first fetch), then "fetch in flight" while a fetch
// is under way, then "blocked" while fetching is stopped.
func credStates(cs CredStatus) []string {
	states := []string{"no token yet"}
	switch {
	case cs.Usable:
		states[0] = "usable"
	case cs.Seq > 0:
		states[0] = "expired"
	}
	if cs.InFlight {
		states = append(states, "fetch in flight")
	}
	if cs.Blocked != "" {
		states = append(states, "blocked")
	}
	return states
}

// stateClass colours each state on the page.
var stateClass = map[string]string{"usable": "ok", "expired": "bad", "no token yet": "warn", "fetch in flight": "info", "blocked": "bad"}

// routeUI adds the status page and the redirect of / to it.
func (a *API) routeUI() {
	a.handle("GET "+UIPath+"{$}", routeUI, a.ui)
	a.handle("GET /{$}", routeUI, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, UIPath, http.StatusFound)
	})
}

// ui serves the status page: Status rendered as HTML, nothing else.
func (a *API) ui(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := renderUI(&buf, a.Status(r.Context()), a.cfg.Now()); err != nil {
		a.log.Error("render status page", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "cannot render the status page")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = buf.WriteTo(w)
}

// uiPage is what the page template sees.
type uiPage struct {
	Status
	Refresh  int
	Now      string
	Replicas []uiReplica
	Creds    []uiCred
}

type uiReplica struct {
	Node, API, Role, Up string
	This, Leader        bool
}

type uiState struct{ Label, Class string }

type uiCred struct {
	CredStatus
	States []uiState
	// LeftPct is the share of its life the served credential has left.
	LeftPct  int
	Left     string
	Expires  string
	Next     string
	NextAt   string
	Fetched  string
	BudPct   float64
	BudClass string
	Till     string
}

// renderUI writes the page for st as seen at now.
func renderUI(w *bytes.Buffer, st Status, now time.Time) error {
	p := uiPage{Status: st, Refresh: uiRefresh, Now: clock(now)}
	for _, r := range st.Replicas {
		role := "watcher"
		if r.Candidate {
			role = "candidate"
		}
		p.Replicas = append(p.Replicas, uiReplica{Node: r.Node, API: r.API, Role: role,
			Up: since(now, r.Started), This: r.Node == st.Node, Leader: r.Node == st.Leader})
	}
	for _, cs := range st.Credentials {
		c := uiCred{CredStatus: cs}
		for _, s := range credStates(cs) {
			c.States = append(c.States, uiState{s, stateClass[s]})
		}
		if cs.Seq > 0 {
			life := cs.ExpiresAt.Sub(cs.FetchedAt)
			left := cs.ExpiresAt.Sub(now)
			if life > 0 {
				c.LeftPct = int(min(max(100*left/life, 0), 100))
			}
			c.Left = span(left) + " left"
			if left <= 0 {
				c.Left = "expired " + span(-left) + " ago"
			}
			c.Expires = clock(cs.ExpiresAt)
			c.Fetched = since(now, cs.FetchedAt)
		}
		if !cs.NextRefresh.IsZero() {
			c.NextAt = clock(cs.NextRefresh)
			c.Next = "in " + span(cs.NextRefresh.Sub(now))
			if !cs.NextRefresh.After(now) {
				c.Next = "due now"
			}
		}
		if cs.Budget > 0 {
			c.BudPct = min(math.Round(1000*float64(cs.FetchesToday)/float64(cs.Budget))/10, 100)
		}
		switch {
		case c.BudPct >= 100:
			c.BudClass = "bad"
		case c.BudPct >= 80:
			c.BudClass = "warn"
		}
		if !cs.BlockedTill.IsZero() {
			c.Till = clock(cs.BlockedTill)
		}
		p.Creds = append(p.Creds, c)
	}
	return uiTemplate.Execute(w, p)
}

// clock shows an instant in UTC, the way the logs do.
func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// since says how long ago t was.
func since(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return span(now.Sub(t)) + " ago"
}

// span shows a duration to the second below ten minutes and to the minute
// above: "45s", "3m 10s", "1h 52m", "2d 3h".
func span(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 10*time.Minute:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}
