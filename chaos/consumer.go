package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// consumer reads tokens from one replica all the time, as an app would,
// and uses every token it gets against the simulator's getcallbackip;
// when a use answers that the token is dead, it reports that token once,
// as the README tells apps to. It records every read, use and report. One
// goroutine runs it (reports run on goroutines of their own, which run
// waits for); read its history after run returns.
type consumer struct {
	replica string
	url     string
	simURL  string
	targets []target
	every   time.Duration
	hc      *http.Client
	report  *http.Client

	reads []checker.Read
	uses  []checker.Use

	mu       sync.Mutex
	reported map[string]bool
	invals   []checker.Invalidation
}

// target is a credential that consumers read: its name in the history
// (an app's name, or a platform credential's) and its token route.
type target struct {
	name string
	path string // e.g. /v1/apps/shop/token; the report route is path + "/invalidate"
}

// appTarget is the token route of app name.
func appTarget(name string) target { return target{name: name, path: "/v1/apps/" + name + "/token"} }

func newConsumer(r *replica, simURL string, targets []target, every time.Duration, t Timing) *consumer {
	return &consumer{
		replica: r.name, url: r.url(), simURL: simURL, targets: targets, every: every,
		// A stopped replica holds requests: give up well before the next
		// read is due to keep the history dense, but not before a read
		// that waits for a due refresh (refresh.read_wait) is answered.
		hc:       &http.Client{Timeout: t.readWait() + time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		report:   &http.Client{Timeout: t.invalidateWait() + 5*time.Second},
		reported: map[string]bool{},
	}
}

func (c *consumer) run(ctx context.Context) {
	t := time.NewTicker(c.every)
	defer t.Stop()
	defer c.hc.CloseIdleConnections()
	var reports sync.WaitGroup
	defer reports.Wait()
	for i := 0; ; i++ {
		tg := c.targets[i%len(c.targets)]
		rd := c.read(ctx, tg)
		if ctx.Err() != nil {
			return // a read cut short by the end of the run says nothing
		}
		c.reads = append(c.reads, rd)
		if rd.OK() {
			u := c.use(ctx, rd)
			c.uses = append(c.uses, u)
			if dead(u.Errcode) && c.firstReport(u.Token) {
				reports.Go(func() { c.invalidate(ctx, tg, u) })
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// dead reports whether a use's errcode says the token no longer works.
func dead(errcode int) bool { return errcode == 40001 || errcode == 40014 || errcode == 42001 }

// firstReport reports whether token has not been reported yet, and marks
// it reported.
func (c *consumer) firstReport(token string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reported[token] {
		return false
	}
	c.reported[token] = true
	return true
}

// invalidate reports the token of u dead and records the answer; a
// report cut short by the end of the run is not recorded.
func (c *consumer) invalidate(ctx context.Context, tg target, u checker.Use) {
	inv := postInvalidate(ctx, c.report, c.url, tg, u.Token)
	if ctx.Err() != nil {
		return
	}
	inv.By, inv.Replica = "consumer", c.replica
	c.mu.Lock()
	c.invals = append(c.invals, inv)
	c.mu.Unlock()
}

// invalidations returns the reports made; call it after run returned.
func (c *consumer) invalidations() []checker.Invalidation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.invals)
}

// postInvalidate reports token of tg dead at the replica at base, and
// returns the report with its answer.
func postInvalidate(ctx context.Context, hc *http.Client, base string, tg target, token string) checker.Invalidation {
	inv := checker.Invalidation{App: tg.name, Token: token, Start: time.Now()}
	body, _ := json.Marshal(map[string]string{"access_token": token})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+tg.path+"/invalidate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json") // the API refuses other POST bodies
	resp, err := hc.Do(req)
	if err != nil {
		inv.End, inv.Code = time.Now(), "unreachable"
		return inv
	}
	var a tokenAnswer
	derr := json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	inv.End, inv.Status = time.Now(), resp.StatusCode
	switch {
	case derr != nil:
		inv.Code = "bad_answer"
	case resp.StatusCode == http.StatusOK:
		inv.Answer, inv.Seq = a.AccessToken, a.Seq
	default:
		inv.Code = a.Code
	}
	return inv
}

// tokenAnswer is the part of the API's answers the consumer needs.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Seq         uint64 `json:"seq"`
	Code        string `json:"code"`
}

func (c *consumer) read(ctx context.Context, tg target) checker.Read {
	rd := checker.Read{Replica: c.replica, App: tg.name, Start: time.Now()}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+tg.path, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		rd.End, rd.Code = time.Now(), "unreachable"
		return rd
	}
	var a tokenAnswer
	derr := json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	rd.End, rd.Status = time.Now(), resp.StatusCode
	switch {
	case derr != nil:
		rd.Code = "bad_answer"
	case resp.StatusCode == http.StatusOK:
		rd.Token, rd.Seq, rd.ExpiresIn = a.AccessToken, a.Seq, a.ExpiresIn
	default:
		rd.Code = a.Code
	}
	return rd
}

func (c *consumer) use(ctx context.Context, rd checker.Read) checker.Use {
	u := checker.Use{Replica: c.replica, App: rd.App, Token: rd.Token, Start: time.Now(),
		KeepUntil: rd.End.Add(time.Duration(rd.ExpiresIn) * time.Second)}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		c.simURL+"/cgi-bin/getcallbackip?access_token="+url.QueryEscape(rd.Token), nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		u.Errcode = -2
		return u
	}
	defer resp.Body.Close()
	var a struct {
		Errcode int `json:"errcode"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil && !errors.Is(err, context.Canceled) {
		u.Errcode = -2
		return u
	}
	u.Errcode = a.Errcode
	return u
}
