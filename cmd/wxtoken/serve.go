package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/replica"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML config file")
	demo := fs.Bool("demo", false, "run against the built-in WeChat simulator with a sample app named demo")
	listen := fs.String("listen", "", "HTTP API address, overriding the config's listen")
	unsafe := unsafeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	off, err := unsafe()
	if err != nil {
		return badUsage(err)
	}
	var cfg *config.Config
	switch {
	case *demo && *path != "":
		return badUsage(fmt.Errorf("serve: --demo and --config exclude each other"))
	case *demo:
		var stopSim func()
		cfg, stopSim, err = demoConfig(*listen)
		if err != nil {
			return err
		}
		defer stopSim()
	case *path == "":
		return badUsage(fmt.Errorf("serve: --config FILE is required (or --demo)"))
	default:
		cfg, err = config.Load(*path)
		if err != nil {
			return badUsage(err)
		}
		if *listen != "" {
			cfg.Listen = *listen
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
	r, err := replica.New(replica.Options{Config: cfg, Logger: log, Unsafe: off})
	if err != nil {
		return badUsage(err)
	}
	defer r.Close()
	fmt.Fprintf(stdout, "wxtoken: serving on %s\n", r.URL())
	if *demo {
		fmt.Fprintf(stdout, "wxtoken: demo app \"demo\" on the built-in WeChat simulator; try:\n  curl %s/v1/apps/demo/token\n", r.URL())
	}
	return r.Run(ctx)
}

// demoConfig runs the simulator in-process and returns a config with one
// classic app on it, data in a fresh temporary directory.
func demoConfig(listen string) (*config.Config, func(), error) {
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	sim := wechattest.New(wechattest.Config{})
	sim.AddApp("wxdemo0000000000", hex.EncodeToString(secret))
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	ln, err := listenLoopback()
	if err != nil {
		return nil, nil, err
	}
	go func() { _ = srv.Serve(ln) }()
	dir, err := os.MkdirTemp("", "wxtoken-demo-")
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	stop := func() { srv.Close(); os.RemoveAll(dir) }
	host, _ := os.Hostname()
	if listen == "" {
		listen = config.DefaultListen
	}
	simURL := "http://" + ln.Addr().String()
	cfg := &config.Config{
		Node: host, Listen: listen, DataDir: dir, LogLevel: "info",
		Etcd:     config.Etcd{Prefix: config.DefaultEtcdPrefix, DialTimeout: config.DefaultDialTimeout},
		Election: config.Election{TTL: config.DefaultTTL, Candidate: true, Holdoff: config.DefaultHoldoff},
		Refresh: config.Refresh{Before: config.DefaultBefore, Jitter: config.DefaultJitter, FetchTimeout: config.DefaultFetchTimeout,
			Concurrency: config.DefaultConcurrency, Margin: config.DefaultMargin, Overlap: config.DefaultOverlap,
			ReadWait: config.DefaultReadWait, InvalidateWait: config.DefaultInvalidateWait, ReportInterval: config.DefaultReportInterval},
		WeChat: config.WeChat{BaseURL: simURL, WeComBaseURL: simURL},
		Apps: []config.App{{Name: "demo", Kind: config.KindClassic, AppID: "wxdemo0000000000",
			Secret: config.NewSecret(hex.EncodeToString(secret)), DailyBudget: config.DefaultDailyBudget, Tickets: []string{config.TicketJSAPI},
			AppAccess: config.AppAccess{JSSDKDomains: []string{"localhost", "example.com", "*.example.com"}}}},
	}
	if err := cfg.Validate(); err != nil {
		stop()
		return nil, nil, err
	}
	return cfg, stop, nil
}
