package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

// appList collects repeated --app ID:SECRET flags.
type appList map[string]string

func (a appList) String() string { return fmt.Sprintf("%d apps", len(a)) }

func (a appList) Set(v string) error {
	id, secret, ok := strings.Cut(v, ":")
	if !ok || id == "" || secret == "" {
		return fmt.Errorf("want ID:SECRET")
	}
	a[id] = secret
	return nil
}

// platformList collects repeated --platform APPID,SECRET,TOKEN,AESKEY[,PUSH_URL]
// flags; the schedule and rotation flags apply to each.
type platformList []wechattest.Platform

func (p *platformList) String() string { return fmt.Sprintf("%d platforms", len(*p)) }

func (p *platformList) Set(v string) error {
	f := strings.SplitN(v, ",", 5)
	if len(f) < 4 || f[0] == "" || f[1] == "" || f[2] == "" {
		return fmt.Errorf("want APPID,SECRET,TOKEN,ENCODING_AES_KEY[,PUSH_URL]")
	}
	pl := wechattest.Platform{AppID: f[0], Secret: f[1], Token: f[2], EncodingAESKey: f[3]}
	if len(f) == 5 {
		pl.PushURL = f[4]
	}
	*p = append(*p, pl)
	return nil
}

func wechatSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wechat-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	ttl := fs.Duration("token-ttl", 7200*time.Second, "lifetime of issued tokens and tickets")
	overlap := fs.Duration("overlap", 5*time.Minute, "how long an old classic token lives after the next fetch")
	quota := fs.Int("daily-quota", 2000, "classic token calls per app per China-time day")
	apps, corps := appList{}, appList{}
	fs.Var(apps, "app", "APPID:SECRET of an app (repeatable)")
	fs.Var(corps, "corp", "CORPID:SECRET of a WeCom corp (repeatable)")
	var platforms platformList
	fs.Var(&platforms, "platform", "APPID,SECRET,TOKEN,ENCODING_AES_KEY[,PUSH_URL] of an Open Platform third-party platform (repeatable)")
	ticketEvery := fs.Duration("ticket-every", wechattest.DefaultTicketEvery, "interval of component_verify_ticket pushes (negative: none)")
	ticketTTL := fs.Duration("ticket-ttl", wechattest.DefaultTicketTTL, "lifetime of a component_verify_ticket")
	codeTTL := fs.Duration("code-ttl", wechattest.DefaultCodeTTL, "lifetime of an authorization code")
	rotate := fs.Int("rotate-refresh", 0, "rotate an authorizer's refresh token every N refreshes (0: never)")
	keepPrev := fs.Bool("keep-previous-refresh", false, "keep the refresh token before the newest valid after a rotation")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sim := wechattest.New(wechattest.Config{TokenTTL: *ttl, Overlap: *overlap, DailyQuota: *quota})
	for id, s := range apps {
		sim.AddApp(id, s)
	}
	for id, s := range corps {
		sim.AddCorp(id, s)
	}
	for _, p := range platforms {
		p.TicketEvery, p.TicketTTL, p.CodeTTL, p.RotateRefresh, p.KeepPreviousRefresh = *ticketEvery, *ticketTTL, *codeTTL, *rotate, *keepPrev
		if err := sim.AddPlatform(p); err != nil {
			return badUsage(fmt.Errorf("wechat-sim: --platform %s: %w", p.AppID, err))
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return badUsage(fmt.Errorf("wechat-sim: %w", err))
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "wechat-sim: listening on http://%s\n", ln.Addr())
	pctx, stopPushes := context.WithCancel(ctx)
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		_ = sim.RunPushes(pctx) // ticket pushes of --platform; returns when stopped
	}()
	defer func() { stopPushes(); <-pushed }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return err
	}
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
