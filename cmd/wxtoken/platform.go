package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/platformrecover"
	"github.com/wxtoken/wxtoken/replica"
)

const platformUsage = "usage: wxtoken platform recover NAME --config FILE [--timeout D]"

// platformCmd runs "platform recover NAME": restore the platform's
// missing or rejected authorizer refresh tokens from WeChat's
// api_get_authorizer_list (package platformrecover).
func platformCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "recover" {
		return badUsage(errors.New(platformUsage))
	}
	fs := flag.NewFlagSet("platform recover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML config file of the cluster's replicas")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole command")
	fs.Usage = func() {
		fmt.Fprintln(stderr, platformUsage+`

Pages through WeChat's api_get_authorizer_list with the platform's
component token (read from etcd) and restores every authorizer refresh
token that etcd lacks, holds rejected (61023) or cannot open. A readable
token is never touched, nor one a leader publishes meanwhile. Prints
counts, never a token.`)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args[1:], 1, "platform recover NAME --config FILE")
	if err != nil {
		return err
	}
	if *path == "" {
		return badUsage(errors.New("platform recover: --config FILE is required"))
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return badUsage(err)
	}
	p, ok := cfg.Platform(pos[0])
	if !ok {
		return badUsage(fmt.Errorf("platform recover: no platform %q in %s", pos[0], *path))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
	store, closeStore, err := replica.OpenStore(cfg, log)
	if err != nil {
		return err
	}
	defer closeStore()
	fc, err := fetcher.New(fetcher.Config{BaseURL: cfg.WeChat.BaseURL, Logger: log, MaxAttempts: 3})
	if err != nil {
		return fmt.Errorf("wechat: %w", err)
	}
	host, _ := os.Hostname()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, err := platformrecover.Recover(ctx, platformrecover.Config{Platform: p.Name, ComponentAppID: p.ComponentAppID,
		Store: store, Lister: fc, Node: "recover@" + host, Logger: log})
	printCounts(stdout, p.Name, c)
	if err != nil {
		return fmt.Errorf("platform recover %s: %w", p.Name, err)
	}
	return nil
}

// printCounts prints what a recovery did.
func printCounts(w io.Writer, name string, c platformrecover.Counts) {
	fmt.Fprintf(w, "platform %s: listed %d, restored %d, already fine %d, skipped %d\n", name, c.Listed, c.Restored, c.Fine, c.Skipped)
	if c.Skipped > 0 {
		fmt.Fprintf(w, "  skipped: %d without a refresh token (code never exchanged), %d unauthorized since, %d changing under the recovery (run again), %d bad appids\n",
			c.NoRefreshToken, c.Unauthorized, c.Changing, c.Invalid)
	}
	if c.States > 0 {
		fmt.Fprintf(w, "  authorized states written: %d\n", c.States)
	}
}
