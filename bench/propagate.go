package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// sightings records, for every token value, when each replica first
// served it.
type sightings struct {
	mu   sync.Mutex
	seen map[string]*sighting
}

type sighting struct {
	first time.Time // earliest first sighting over the replicas
	last  time.Time // latest first sighting over the replicas
	n     int       // replicas that served it
}

func (s *sightings) note(value string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.seen[value]
	if g == nil {
		g = &sighting{}
		s.seen[value] = g
	}
	g.n++
	if g.first.IsZero() || at.Before(g.first) {
		g.first = at
	}
	if at.After(g.last) {
		g.last = at
	}
}

// follow notes every new record of creds that the replica's cache serves,
// until ctx ends. The cache is what the API serves from: a record applied
// there is served by the next read.
func (s *sightings) follow(ctx context.Context, c *tokenstore.Cache, creds []string) {
	last := make(map[string]uint64, len(creds))
	for ctx.Err() == nil {
		ch := c.Changed()
		now := time.Now()
		for _, cred := range creds {
			if rec, ok := c.Get(cred); ok && rec.Seq > last[cred] {
				last[cred] = rec.Seq
				s.note(rec.Value, now)
			}
		}
		select {
		case <-ctx.Done():
		case <-ch:
		}
	}
}

// propagationSection measures, for 3, 20 and 50 replicas on one etcd
// cluster, the time from the leader's fetch returning to every replica
// serving the new token (section 3). Each publish is one at a time: the
// served token is killed at the simulator by a stray fetch and reported
// dead to a replica; the leader checks it, fetches and publishes.
func (e *env) propagationSection(ctx context.Context, r *Report) error {
	// Overlap 1 ms: a stray fetch kills the served token at once.
	sim := wechattest.NewServer(wechattest.Config{Overlap: time.Millisecond, DailyQuota: 100000})
	defer sim.Close()
	apps := benchApps("prop", 1)
	addApps(sim, apps)
	app := apps[0]
	cred := tokenstore.CredName(app.Name, "token")
	fc, err := fetcher.New(fetcher.Config{BaseURL: sim.URL, WeComBaseURL: sim.URL})
	if err != nil {
		return err
	}
	log := newFetchLog(fc)
	seen := &sightings{seen: map[string]*sighting{}}
	fctx, stopFollow := context.WithCancel(ctx)
	var followers sync.WaitGroup
	var reps []*inproc
	defer func() {
		stopFollow()
		followers.Wait()
		stopAll(reps)
	}()
	rounds := 200
	if e.opts.quick {
		rounds = 50
	}
	hc := &http.Client{Timeout: 15 * time.Second}
	stray := sim.URL + "/cgi-bin/token?" + url.Values{"grant_type": {"client_credential"}, "appid": {app.AppID}, "secret": {app.Secret}}.Encode()
	for _, n := range []int{3, 20, 50} {
		for i := len(reps); i < n; i++ {
			cfg := scaledConfig(fmt.Sprintf("prop-%02d", i), "/bench-prop", sim.URL, i < 3, config.Refresh{
				Before: config.DefaultBefore, Jitter: config.DefaultJitter, FetchTimeout: 10 * time.Second,
				Concurrency: config.DefaultConcurrency, Margin: config.DefaultMargin, Overlap: config.DefaultOverlap}, apps)
			p, err := e.startInproc(cfg, i, log)
			if err != nil {
				return err
			}
			reps = append(reps, p)
			followers.Go(func() { seen.follow(fctx, p.Cache(), []string{cred}) })
		}
		// Let the new replicas finish starting (presence, first probe).
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		var lat, firsts, spreads []time.Duration
		for round := range rounds {
			var cur tokenstore.Record
			if err := waitUntil(ctx, 30*time.Second, 2*time.Millisecond, "every replica to serve the same token", func() bool {
				var ok bool
				cur, ok = reps[0].Cache().Get(cred)
				if !ok {
					return false
				}
				for _, p := range reps {
					if rec, ok := p.Cache().Get(cred); !ok || rec.Seq != cur.Seq {
						return false
					}
				}
				return true
			}); err != nil {
				return err
			}
			if code, body, err := httpStatus(ctx, hc, stray); err != nil || code != 200 {
				return fmt.Errorf("stray fetch: %d %s %v", code, body, err)
			}
			time.Sleep(5 * time.Millisecond) // past the 1 ms overlap: the served token is dead
			value, err := invalidate(ctx, hc, reps[round%n].URL(), app.Name, cur.Value)
			if err != nil {
				return err
			}
			if value == cur.Value {
				return fmt.Errorf("the report of a dead token was rejected")
			}
			var g sighting
			if err := waitUntil(ctx, 5*time.Second, time.Millisecond, "every replica to serve the new token", func() bool {
				seen.mu.Lock()
				defer seen.mu.Unlock()
				if s := seen.seen[value]; s != nil {
					g = *s
				}
				return g.n >= n
			}); err != nil {
				return err
			}
			at, ok := log.returned(value)
			if !ok {
				return fmt.Errorf("token %d was not fetched through the leader's fetcher", round)
			}
			lat = append(lat, g.last.Sub(at))
			firsts = append(firsts, g.first.Sub(at))
			spreads = append(spreads, g.last.Sub(g.first))
		}
		slices.Sort(lat)
		slices.Sort(firsts)
		slices.Sort(spreads)
		name := fmt.Sprintf("Propagation to all %d replicas", n)
		note := fmt.Sprintf("%d publishes; first replica p50 %.1f ms, p99 %.1f ms; first to last p50 %.1f ms, p99 %.1f ms",
			len(lat), ms(quantile(firsts, 0.5)), ms(quantile(firsts, 0.99)), ms(quantile(spreads, 0.5)), ms(quantile(spreads, 0.99)))
		r.add("3", name+": p50", ms(quantile(lat, 0.5)), "ms", note)
		if n == 50 {
			r.check("3", name+": p99", ms(quantile(lat, 0.99)), "ms", "<", 25, "")
		} else {
			r.add("3", name+": p99", ms(quantile(lat, 0.99)), "ms", "")
		}
	}
	r.note("Section 3: replicas in one process, each with its own etcd client, spread over a 3-member etcd cluster (data on disk); " +
		"one publish at a time: the served token is killed at the simulator and reported dead to a replica, the leader checks it and refreshes; " +
		"a publish is timed from the moment the leader's WeChat call returned (so the fenced publish transaction and its disk writes are included) " +
		"to the moment the last replica's cache, which its API serves from, holds the new token.")
	return nil
}

// invalidate reports token dead at the replica at base and returns the
// token it answers with.
func invalidate(ctx context.Context, hc *http.Client, base, app, token string) (string, error) {
	body, _ := json.Marshal(map[string]string{"access_token": token})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/apps/"+app+"/token/invalidate", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("invalidate: %w", err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		Code        string `json:"code"`
		Message     string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		return "", fmt.Errorf("invalidate: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("invalidate: %d %s: %s", resp.StatusCode, tr.Code, tr.Message)
	}
	return tr.AccessToken, nil
}
