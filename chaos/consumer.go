package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// consumer reads tokens from one replica all the time, as an app would,
// and uses every token it gets against the simulator's getcallbackip. It
// records every read and use. One goroutine runs it; read its history
// after run returns.
type consumer struct {
	replica string
	url     string
	simURL  string
	apps    []string
	every   time.Duration
	hc      *http.Client

	reads []checker.Read
	uses  []checker.Use
}

func newConsumer(r *replica, simURL string, apps []string, every time.Duration) *consumer {
	return &consumer{
		replica: r.name, url: r.url(), simURL: simURL, apps: apps, every: every,
		// A stopped replica holds requests: give up well before the next
		// read is due to keep the history dense.
		hc: &http.Client{Timeout: time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
	}
}

func (c *consumer) run(ctx context.Context) {
	t := time.NewTicker(c.every)
	defer t.Stop()
	defer c.hc.CloseIdleConnections()
	for i := 0; ; i++ {
		app := c.apps[i%len(c.apps)]
		rd := c.read(ctx, app)
		if ctx.Err() != nil {
			return // a read cut short by the end of the run says nothing
		}
		c.reads = append(c.reads, rd)
		if rd.OK() {
			c.uses = append(c.uses, c.use(ctx, rd))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tokenAnswer is the part of the API's answers the consumer needs.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Seq         uint64 `json:"seq"`
	Code        string `json:"code"`
}

func (c *consumer) read(ctx context.Context, app string) checker.Read {
	rd := checker.Read{Replica: c.replica, App: app, Start: time.Now()}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/v1/apps/"+app+"/token", nil)
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
