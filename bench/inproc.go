package main

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/refresher"
	"github.com/wxtoken/wxtoken/replica"
)

// inproc is a replica running in this process with its own etcd client.
type inproc struct {
	*replica.Replica
	etcd   *clientv3.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// startInproc runs a replica with cfg on member i of the cluster; fetch,
// if set, replaces its WeChat client.
func (e *env) startInproc(cfg *config.Config, i int, fetch refresher.Fetcher) (*inproc, error) {
	c, err := e.etcd.client(i)
	if err != nil {
		return nil, err
	}
	r, err := replica.New(replica.Options{Config: cfg, Etcd: c, Fetcher: fetch})
	if err != nil {
		c.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &inproc{Replica: r, etcd: c, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(p.done); _ = r.Run(ctx) }()
	return p, nil
}

// stop shuts the replica down gracefully and closes its etcd client.
func (p *inproc) stop() {
	p.cancel()
	<-p.done
	p.Close()
	p.etcd.Close()
}

// stopAll stops replicas in parallel.
func stopAll(ps []*inproc) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(p.stop)
	}
	wg.Wait()
}

// scaledConfig is a replica config for in-process replicas on prefix,
// with the simulator at simURL and the refresh timings given.
func scaledConfig(node, prefix, simURL string, candidate bool, rf config.Refresh, apps []benchApp) *config.Config {
	cfg := &config.Config{
		Node: node, Listen: "127.0.0.1:0", DataDir: "unused", LogLevel: "warn",
		Etcd:     config.Etcd{Prefix: prefix, DialTimeout: 5 * time.Second},
		Election: config.Election{TTL: config.DefaultTTL, Candidate: candidate, Holdoff: time.Minute},
		Refresh:  rf,
		WeChat:   config.WeChat{BaseURL: simURL, WeComBaseURL: simURL},
	}
	// The propagation bench reports a dead token every round, far more
	// often than report_limit lets one caller or credential.
	cfg.ReportLimit = config.ReportLimit{PerClient: 1 << 20, PerCredential: 1 << 20}
	for _, a := range apps {
		cfg.Apps = append(cfg.Apps, config.App{Name: a.Name, Kind: config.KindClassic, AppID: a.AppID,
			Secret: config.NewSecret(a.Secret), DailyBudget: config.MaxClassicBudget})
	}
	return cfg
}

// fetchLog wraps a Fetcher and notes when each classic token came back
// from WeChat: the instant the leader holds it and starts to publish.
type fetchLog struct {
	refresher.Fetcher
	mu sync.Mutex
	at map[string]time.Time // token value -> fetch returned
}

func newFetchLog(f refresher.Fetcher) *fetchLog {
	return &fetchLog{Fetcher: f, at: map[string]time.Time{}}
}

// Classic implements refresher.Fetcher.
func (f *fetchLog) Classic(ctx context.Context, appID, secret string) (fetcher.Token, error) {
	tok, err := f.Fetcher.Classic(ctx, appID, secret)
	if err == nil {
		now := time.Now()
		f.mu.Lock()
		f.at[tok.Value] = now
		f.mu.Unlock()
	}
	return tok, err
}

// returned is when the token value came back from WeChat.
func (f *fetchLog) returned(value string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.at[value]
	return t, ok
}
