package main

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// publisher writes records the way the leader does: an intent, then the
// fenced publish transaction, under a leader key of its own.
type publisher struct {
	cli   *clientv3.Client
	store *tokenstore.Store
	guard *election.Guard
}

func newPublisher(ctx context.Context, endpoints []string) (*publisher, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	key := fleetPrefix + "/election/bench"
	resp, err := cli.Put(ctx, key, "bench")
	if err != nil {
		cli.Close()
		return nil, err
	}
	return &publisher{cli: cli, store: tokenstore.New(cli, fleetPrefix),
		guard: election.NewGuard(key, resp.Header.Revision, time.Now().Add(24*time.Hour))}, nil
}

func (p *publisher) close() { p.cli.Close() }

// publish writes the next record of the fleet's credential and returns its
// seq and the moment the publish transaction was sent.
func (p *publisher) publish(ctx context.Context) (uint64, time.Time, error) {
	cred := tokenstore.CredName("fleet", "token")
	now := time.Now()
	snap, err := p.store.Load(ctx, cred, tokenstore.Day(now))
	if err != nil {
		return 0, time.Time{}, err
	}
	seq := snap.Seq() + 1
	irev, err := p.store.BeginFetch(ctx, p.guard, snap, tokenstore.Intent{Seq: seq, Node: "bench", Started: now, Since: now, Reason: "bench"}, 0)
	if err != nil {
		return 0, time.Time{}, err
	}
	rec := tokenstore.Record{Cred: cred, Value: fmt.Sprintf("fleet-token-%d", seq), Seq: seq, Node: "bench",
		FetchedAt: now, ExpiresAt: now.Add(2 * time.Hour), RefreshAt: now.Add(110 * time.Minute)}
	at := time.Now()
	if err := p.store.Publish(ctx, p.guard, snap, irev, rec); err != nil {
		return 0, time.Time{}, err
	}
	return seq, at, nil
}
