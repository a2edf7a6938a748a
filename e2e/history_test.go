//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// recorder collects the history of a run for chaos/checker. Its methods
// are safe for concurrent use.
type recorder struct {
	hc   *http.Client // token reads and uses: they must be quick
	slow *http.Client // status, which waits up to 2 s for etcd, and the admin API

	mu     sync.Mutex
	reads  []checker.Read
	uses   []checker.Use
	faults []checker.Fault
	snaps  []checker.Snapshot
}

// e2eToken is the bearer token of the client "e2e" of testdata/wxtoken.yaml.
const e2eToken = "wxtoken-e2e-client-token-0123456789"

func newRecorder() *recorder {
	return &recorder{hc: &http.Client{Timeout: 2 * time.Second, Transport: withToken{}},
		slow: &http.Client{Timeout: 10 * time.Second, Transport: withToken{}}}
}

// withToken sends e2eToken on requests to a replica's API (paths under
// /v1/), never to the simulator.
type withToken struct{}

func (withToken) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.URL.Path, "/v1/") {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+e2eToken)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// tokenAnswer is the part of a replica's token answer (or error) we keep.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Seq         uint64 `json:"seq"`
	Code        string `json:"code"`
}

// read asks a replica for app's token once.
func (r *recorder) read(ctx context.Context, replica, base, app string) checker.Read {
	rd := checker.Read{Replica: replica, App: app, Start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/apps/"+app+"/token", nil)
	if err == nil {
		var resp *http.Response
		if resp, err = r.hc.Do(req); err == nil {
			var a tokenAnswer
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&a)
			resp.Body.Close()
			rd.Status = resp.StatusCode
			rd.Code, rd.Token, rd.Seq, rd.ExpiresIn = a.Code, a.AccessToken, a.Seq, a.ExpiresIn
			if resp.StatusCode == http.StatusOK {
				rd.Code = ""
			}
		}
	}
	rd.End = time.Now()
	if err != nil && rd.Status == 0 {
		rd.Code = "unreachable"
	}
	return rd
}

// use calls getcallbackip on the simulator with the token rd served, as an
// app would call WeChat with it.
func (r *recorder) use(ctx context.Context, simURL string, rd checker.Read) checker.Use {
	u := checker.Use{Replica: rd.Replica, App: rd.App, Token: rd.Token, Start: time.Now(), Errcode: -2,
		KeepUntil: rd.End.Add(time.Duration(rd.ExpiresIn) * time.Second)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, simURL+"/cgi-bin/getcallbackip?access_token="+url.QueryEscape(rd.Token), nil)
	if err != nil {
		return u
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return u
	}
	defer resp.Body.Close()
	var a struct {
		Errcode int `json:"errcode"`
	}
	if resp.StatusCode == http.StatusOK && json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&a) == nil {
		u.Errcode = a.Errcode
	}
	return u
}

// consume reads app's token from one replica every interval, and uses every
// token served, until ctx ends.
func (r *recorder) consume(ctx context.Context, replica, base, simURL, app string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rd := r.read(ctx, replica, base, app)
		if ctx.Err() != nil {
			return // a read cut short by the end of the run is no result
		}
		var u *checker.Use
		if rd.OK() {
			use := r.use(ctx, simURL, rd)
			if ctx.Err() != nil {
				return
			}
			u = &use
		}
		r.mu.Lock()
		r.reads = append(r.reads, rd)
		if u != nil {
			r.uses = append(r.uses, *u)
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// snapshot reads the record of app's token from etcd every interval, from
// inside the first etcd member that answers, until ctx ends.
func (r *recorder) snapshot(ctx context.Context, s *stack, app string, members []string, every time.Duration) {
	key := tokenstore.Keys{Prefix: "/wxtoken"}.Cred(tokenstore.CredName(app, "token"))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		at := time.Now()
		val, err := s.etcdGet(ctx, key, members)
		if ctx.Err() != nil {
			return
		}
		var rec tokenstore.Record
		if err == nil && json.Unmarshal([]byte(val), &rec) == nil && rec.Seq > 0 {
			r.mu.Lock()
			r.snaps = append(r.snaps, checker.Snapshot{At: at, App: app, Seq: rec.Seq, Token: rec.Value})
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// count returns how many reads from replica that started in [from, to]
// served a token, and how many did not.
func (r *recorder) count(replica string, from, to time.Time) (served, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rd := range r.reads {
		if rd.Replica != replica || rd.Start.Before(from) || rd.Start.After(to) {
			continue
		}
		if rd.OK() {
			served++
		} else {
			refused++
		}
	}
	return served, refused
}

// fault records one injected fault.
func (r *recorder) fault(f checker.Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, f)
}

// history assembles what was recorded with the simulator's ledger and the
// tokens' lives, which it asks of the simulator (after the run).
func (r *recorder) history(ctx context.Context, run checker.Run, apps []checker.App, simURL string) (checker.History, error) {
	var ledger []checker.Fetch
	if err := getJSON(ctx, r.slow, simURL+"/_sim/ledger", &ledger); err != nil {
		return checker.History{}, fmt.Errorf("simulator ledger: %w", err)
	}
	lives, err := checker.Lives(ctx, &checker.SimOracle{URL: simURL, HTTPClient: r.slow}, ledger, run.TokenTTL.D()+time.Minute)
	if err != nil {
		return checker.History{}, fmt.Errorf("token lives: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return checker.History{
		Run: run, Apps: apps, Faults: append([]checker.Fault(nil), r.faults...),
		Reads: append([]checker.Read(nil), r.reads...), Uses: append([]checker.Use(nil), r.uses...),
		Fetches: ledger, Tokens: lives, Records: append([]checker.Snapshot(nil), r.snaps...),
	}, nil
}

func getJSON(ctx context.Context, hc *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
