package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// etcdCluster is an etcd cluster of embedded members in this process, on
// loopback ports, its data on disk under one directory.
type etcdCluster struct {
	members   []*embed.Etcd
	endpoints []string
}

// startEtcd starts a cluster of size members under dir and waits until it
// has a leader.
func startEtcd(ctx context.Context, dir string, size int) (*etcdCluster, error) {
	cfgs := make([]*embed.Config, size)
	var initial []string
	for i := range cfgs {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(dir, cfg.Name)
		cfg.LogLevel = "error"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfg.AutoCompactionMode = embed.CompactorModeRevision
		cfg.AutoCompactionRetention = "10000"
		client, err := freeURL()
		if err != nil {
			return nil, err
		}
		peer, err := freeURL()
		if err != nil {
			return nil, err
		}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
		initial = append(initial, cfg.Name+"="+peer.String())
		cfgs[i] = cfg
	}
	c := &etcdCluster{}
	for _, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("start etcd member %s: %w", cfg.Name, err)
		}
		c.members = append(c.members, e)
		c.endpoints = append(c.endpoints, cfg.ListenClientUrls[0].String())
	}
	for _, e := range c.members {
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(60 * time.Second):
			c.Close()
			return nil, fmt.Errorf("etcd cluster not ready within 60 s")
		case <-ctx.Done():
			c.Close()
			return nil, ctx.Err()
		}
	}
	return c, nil
}

// client returns a new client of member i (mod size), or of every member
// when i < 0.
func (c *etcdCluster) client(i int) (*clientv3.Client, error) {
	eps := c.endpoints
	if i >= 0 {
		eps = []string{c.endpoints[i%len(c.endpoints)]}
	}
	cl, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return cl, nil
}

// Close stops every member.
func (c *etcdCluster) Close() {
	for _, e := range c.members {
		e.Close()
	}
}

func freeURL() (*url.URL, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return &url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}, nil
}
