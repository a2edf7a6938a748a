package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

var appNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// problems collects validation errors, one per problem.
type problems []error

func (p *problems) addf(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, args...)))
}

// Validate checks c as Parse leaves it (with defaults filled in) and returns
// every problem joined, each as "config: <field>: <problem>", or nil. It
// never puts a secret value in an error. Parse calls it; call it yourself on
// a Config built in code.
func (c *Config) Validate() error {
	var p problems
	if c.Node == "" || len(c.Node) > 253 || strings.ContainsFunc(c.Node, badNameRune) {
		p.addf("node", "bad node name %q (want 1 to 253 characters, no spaces or \"/\")", c.Node)
	}
	p.listen(c.Listen)
	if c.Advertise != "" {
		if msg := badURL(c.Advertise, false); msg != "" {
			p.addf("advertise", "%s", msg)
		}
	}
	if c.DataDir == "" {
		p.addf("data_dir", "missing")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.addf("log_level", "unknown level %q (want debug, info, warn or error)", c.LogLevel)
	}
	p.etcd(&c.Etcd)
	p.security(c)
	p.election(&c.Election)
	p.refresh(&c.Refresh)
	p.recovery(c)
	if msg := badURL(c.WeChat.BaseURL, true); msg != "" {
		p.addf("wechat.base_url", "%s", msg)
	}
	if msg := badURL(c.WeChat.WeComBaseURL, true); msg != "" {
		p.addf("wechat.wecom_base_url", "%s", msg)
	}
	p.apps(c.Apps)
	p.platforms(c) // platform.go
	p.access(c)    // access_validate.go
	return errors.Join(p...)
}

func (p *problems) listen(addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.addf("listen", "bad address %q (want host:port, e.g. 127.0.0.1:8417)", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.addf("listen", "bad port in %q (want 0 to 65535)", addr)
	}
}

func (p *problems) etcd(e *Etcd) {
	for i, ep := range e.Endpoints {
		field := fmt.Sprintf("etcd.endpoints[%d]", i)
		if msg := badURL(ep, false); msg != "" {
			p.addf(field, "%s", msg)
		} else if j := slices.Index(e.Endpoints[:i], ep); j >= 0 {
			p.addf(field, "duplicate of etcd.endpoints[%d]", j)
		}
	}
	switch {
	case !strings.HasPrefix(e.Prefix, "/") || strings.HasSuffix(e.Prefix, "/"):
		p.addf("etcd.prefix", "bad prefix %q (want it to start with \"/\" and not end with one, e.g. /wxtoken)", e.Prefix)
	case strings.ContainsFunc(e.Prefix, unicode.IsSpace):
		p.addf("etcd.prefix", "bad prefix %q (want no spaces)", e.Prefix)
	}
	switch {
	case e.Username != "" && e.Password.IsZero():
		p.addf("etcd.password", "missing (etcd.username is set: set password or password_file)")
	case e.Username == "" && !e.Password.IsZero():
		p.addf("etcd.username", "missing (etcd.password is set)")
	}
	if e.DialTimeout <= 0 {
		p.addf("etcd.dial_timeout", "%v is not positive", e.DialTimeout)
	}
}

func (p *problems) election(e *Election) {
	switch {
	case e.TTL < MinTTL || e.TTL > MaxTTL:
		p.addf("election.ttl", "%v is out of range (want %v to %v)", e.TTL, MinTTL, MaxTTL)
	case e.TTL%time.Second != 0:
		p.addf("election.ttl", "%v is not a whole number of seconds (etcd leases count seconds)", e.TTL)
	}
	if e.Holdoff < 0 {
		p.addf("election.holdoff", "%v is negative", e.Holdoff)
	}
}

func (p *problems) refresh(r *Refresh) {
	if r.Before <= 0 {
		p.addf("refresh.before", "%v is not positive", r.Before)
	}
	switch {
	case r.Jitter < 0:
		p.addf("refresh.jitter", "%v is negative", r.Jitter)
	case r.Before > 0 && r.Jitter >= r.Before:
		p.addf("refresh.jitter", "%v must be less than refresh.before (%v)", r.Jitter, r.Before)
	}
	if r.FetchTimeout <= 0 {
		p.addf("refresh.fetch_timeout", "%v is not positive", r.FetchTimeout)
	}
	if r.Concurrency < 1 {
		p.addf("refresh.concurrency", "%d is less than 1", r.Concurrency)
	}
	if r.Overlap <= 0 {
		p.addf("refresh.overlap", "%v must be positive", r.Overlap)
	}
	if r.Margin < 0 {
		p.addf("refresh.margin", "%v is negative", r.Margin)
	}
	// A refresh begun Before expiry must land before the credential stops
	// being served (Margin before expiry), or replicas would serve nothing.
	if r.Before > 0 && r.FetchTimeout > 0 && r.Margin >= 0 && r.Before <= r.FetchTimeout+r.Margin {
		p.addf("refresh.before", "%v must exceed refresh.fetch_timeout + refresh.margin (%v)", r.Before, r.FetchTimeout+r.Margin)
	}
}

// CallHold is how long a leader holds a WeChat call that follows an
// unfinished one after announcing it, so that every replica stops handing
// out the token it kills first (refresher.DefaultHold).
const CallHold = time.Second

// MinOverlap is the least refresh.overlap start-up accepts with these
// settings: 3 x fetch_timeout + 2 x margin + election.ttl + CallHold (see
// recovery).
func MinOverlap(fetchTimeout, margin, electionTTL time.Duration) time.Duration {
	return 3*fetchTimeout + 2*margin + electionTTL + CallHold
}

// recovery refuses timing in which a doomed token could die before its
// replacement is served. A leader may die with a call in flight (up to
// fetch_timeout); its successor leads after election.ttl, waits the call's
// window out (fetch_timeout + margin), announces its own call and holds it
// (CallHold), fetches (fetch_timeout) and serves the new token with margin
// to spare: all of it inside WeChat's overlap.
func (p *problems) recovery(c *Config) {
	r := &c.Refresh
	need := MinOverlap(r.FetchTimeout, r.Margin, c.Election.TTL)
	if r.FetchTimeout > 0 && r.Margin >= 0 && r.Overlap > 0 && need > r.Overlap {
		p.addf("refresh.overlap", "%v is too short to recover an unfinished fetch: it must be at least 3 x refresh.fetch_timeout + 2 x refresh.margin + election.ttl + %v (%v); lower fetch_timeout or margin",
			r.Overlap, CallHold, need)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"refresh.read_wait", r.ReadWait}, {"refresh.invalidate_wait", r.InvalidateWait}, {"refresh.report_interval", r.ReportInterval}} {
		if d.v < 0 {
			p.addf(d.field, "%v is negative", d.v)
		}
	}
}

func (p *problems) apps(apps []App) {
	names := map[string]int{}
	files := map[string]int{}
	creds := map[credKey]int{}
	for i, a := range apps {
		field := fmt.Sprintf("apps[%d]", i)
		switch j, dup := names[a.Name]; {
		case a.Name == "":
			p.addf(field+".name", "missing")
		case !appNameRE.MatchString(a.Name):
			p.addf(field+".name", "bad name %q (want [a-z0-9][a-z0-9_-]{0,62})", a.Name)
		case dup:
			p.addf(field+".name", "duplicate %q (also apps[%d])", a.Name, j)
		default:
			names[a.Name] = i
		}
		knownKind := true
		switch a.Kind {
		case KindClassic, KindStable, KindWeCom:
		case "":
			knownKind = false
			p.addf(field+".kind", "missing (want classic, stable or wecom)")
		default:
			knownKind = false
			p.addf(field+".kind", "unknown kind %q (want classic, stable or wecom)", a.Kind)
		}
		switch {
		case a.AppID == "":
			p.addf(field+".appid", "missing")
		case len(a.AppID) > 128 || strings.ContainsFunc(a.AppID, badNameRune):
			p.addf(field+".appid", "bad appid %q (want up to 128 characters, no spaces)", a.AppID)
		case knownKind:
			if j, dup := creds[credentialOf(a)]; dup {
				p.addf(field+".appid", "same credential as apps[%d] (%s): two entries would refresh, and for classic invalidate, each other's tokens", j, apps[j].Name)
			} else {
				creds[credentialOf(a)] = i
			}
		}
		if a.Secret.IsZero() {
			p.addf(field+".secret", "missing (set secret or secret_file)")
		}
		switch {
		case a.DailyBudget <= 0:
			p.addf(field+".daily_budget", "%d is not positive", a.DailyBudget)
		case a.Kind == KindClassic && a.DailyBudget > MaxClassicBudget:
			p.addf(field+".daily_budget", "%d is above WeChat's daily limit of %d for classic tokens", a.DailyBudget, MaxClassicBudget)
		}
		p.tickets(field, a)
		if a.TokenFile != "" {
			clean := filepath.Clean(a.TokenFile)
			switch j, dup := files[clean]; {
			case strings.HasSuffix(a.TokenFile, "/") || strings.HasSuffix(a.TokenFile, string(filepath.Separator)):
				p.addf(field+".token_file", "%q names a directory (want a file path)", a.TokenFile)
			case dup:
				p.addf(field+".token_file", "same file as apps[%d].token_file", j)
			default:
				files[clean] = i
			}
		}
	}
}

func (p *problems) tickets(field string, a App) {
	if len(a.Tickets) > 0 && a.Kind == KindWeCom {
		p.addf(field+".tickets", "only classic and stable apps have tickets")
		return
	}
	for i, t := range a.Tickets {
		tf := fmt.Sprintf("%s.tickets[%d]", field, i)
		switch {
		case t != TicketJSAPI && t != TicketWxCard:
			p.addf(tf, "unknown ticket %q (want jsapi or wx_card)", t)
		case slices.Contains(a.Tickets[:i], t):
			p.addf(tf, "duplicate %q", t)
		}
	}
}

// credKey names a WeChat credential: classic and stable credentials are
// one per appid and kind; a WeCom credential is one per corpid and secret,
// since a corp has one secret per application.
type credKey struct{ kind, appID, secret string }

func credentialOf(a App) credKey {
	k := credKey{kind: a.Kind, appID: a.AppID}
	if a.Kind == KindWeCom {
		k.secret = a.Secret.Reveal()
	}
	return k
}

// badURL returns why raw is not an http(s) URL fit for an API base ("" if
// it is). Without allowPath only a bare scheme://host[:port] is accepted.
// The message never echoes user info, which may hold a password.
func badURL(raw string, allowPath bool) string {
	const want = "want http://host:port or https://host:port"
	if strings.Contains(raw, "@") {
		return "must not hold a user name or password (" + want + ")"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		return fmt.Sprintf("bad URL %q (%s)", raw, want)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Sprintf("bad URL %q (want no query or fragment)", raw)
	case !allowPath && u.Path != "" && u.Path != "/":
		return fmt.Sprintf("bad URL %q (want no path)", raw)
	}
	return ""
}

// badNameRune reports runes not allowed in a node name or an appid.
func badNameRune(r rune) bool {
	return r == '/' || unicode.IsSpace(r) || !unicode.IsPrint(r)
}
