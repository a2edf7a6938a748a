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
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return badUsage(fmt.Errorf("wechat-sim: %w", err))
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "wechat-sim: listening on http://%s\n", ln.Addr())
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
