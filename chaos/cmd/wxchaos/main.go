// Command wxchaos runs wxtoken's fault-injection suite: real etcd, wxtoken
// and WeChat-simulator processes on loopback, faults from a seeded
// schedule, and a checker over the recorded history. It prints the
// schedule first and a summary table last, writes report.json and
// history.json to -out, and exits 1 when a check fails (2 when the harness
// itself could not run).
//
//	go run ./chaos/cmd/wxchaos -seed 1                    # the short run (the core suite)
//	go run ./chaos/cmd/wxchaos -seed 1 -suite production  # the second short run
//	go run ./chaos/cmd/wxchaos -seed 1 -suite platform    # the third: an Open Platform's faults
//	go run ./chaos/cmd/wxchaos -soak -seed 7              # 30 minutes, every suite
//	go run ./chaos/cmd/wxchaos -unsafe-off intent         # a broken build: must fail
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wxtoken/wxtoken/chaos"
)

func main() {
	os.Exit(run())
}

func run() int {
	var cfg chaos.Config
	suite := flag.String("suite", "core", "the faults to require and draw from: core, production, platform or all (see README.md)")
	flag.DurationVar(&cfg.Duration, "duration", 0, "how long consumers read while faults are injected (default: the suite's, 3m30s for core)")
	soak := flag.Bool("soak", false, "a 30-minute soak of every suite (sets -suite all, -duration 30m and -read-every 100ms unless given)")
	flag.Int64Var(&cfg.Seed, "seed", 0, "schedule seed (0: from the clock; printed, so a run can be replayed)")
	flag.IntVar(&cfg.Replicas, "replicas", 4, "wxtoken replicas, 3 to 5 (all but the last are candidates)")
	faults := flag.String("faults", "", "comma-separated fault kinds to draw from after the required ones (default: the suite's pool; \"all\" every kind, \"none\" no more than the required ones)")
	require := flag.String("require", "", "comma-separated fault kinds the run must inject (default: every kind the suite requires; \"none\")")
	flag.DurationVar(&cfg.ReadEvery, "read-every", 25*time.Millisecond, "pause between a consumer's reads")
	flag.BoolVar(&cfg.Platform, "platform", false, "add an Open Platform third-party platform (and record encryption) to the cluster; on whenever a platform fault may run")
	flag.IntVar(&cfg.Authorizers, "authorizers", 4, "accounts authorizing the platform at start, 1 to 10")
	unsafeOff := flag.String("unsafe-off", "", "comma-separated protections to switch off in every replica (a -tags wxunsafe build): "+strings.Join(chaos.Protections, ", ")+"; the run must fail")
	skipIntent := flag.Bool("unsafe-skip-intent", false, "the same as -unsafe-off intent")
	out := flag.String("out", "chaos-out", "directory for report.json, history.json and (with -keep) logs")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep data and process logs under -out/work")
	flag.StringVar(&cfg.EtcdBin, "etcd-bin", "", "etcd binary (default: built from go.etcd.io/etcd/server/v3)")
	flag.StringVar(&cfg.WxtokenBin, "wxtoken-bin", "", "wxtoken binary (default: built from ./cmd/wxtoken)")
	t := chaos.DefaultTiming
	flag.DurationVar(&t.ElectionTTL, "election-ttl", t.ElectionTTL, "replicas' election.ttl")
	flag.DurationVar(&t.TokenTTL, "token-ttl", t.TokenTTL, "simulator's token lifetime")
	flag.DurationVar(&t.Overlap, "overlap", t.Overlap, "simulator's overlap and replicas' refresh.overlap")
	flag.DurationVar(&t.Before, "before", t.Before, "replicas' refresh.before")
	flag.DurationVar(&t.Jitter, "jitter", t.Jitter, "replicas' refresh.jitter")
	flag.DurationVar(&t.FetchTimeout, "fetch-timeout", t.FetchTimeout, "replicas' refresh.fetch_timeout")
	flag.DurationVar(&t.Margin, "margin", t.Margin, "replicas' refresh.margin")
	flag.DurationVar(&t.Holdoff, "holdoff", t.Holdoff, "replicas' election.holdoff")
	flag.DurationVar(&t.ReadWait, "read-wait", t.ReadWait, "replicas' refresh.read_wait (0: their default)")
	flag.DurationVar(&t.InvalidateWait, "invalidate-wait", t.InvalidateWait, "replicas' refresh.invalidate_wait (0: their default)")
	flag.DurationVar(&t.TicketEvery, "ticket-every", t.TicketEvery, "simulator's component_verify_ticket push interval (with a platform)")
	flag.DurationVar(&t.TicketTTL, "ticket-ttl", t.TicketTTL, "simulator's component_verify_ticket lifetime (with a platform)")
	flag.Parse()
	cfg.Timing = t

	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *soak {
		if !set["suite"] {
			*suite = "all"
		}
		if !set["duration"] {
			cfg.Duration = 30 * time.Minute
		}
		if !set["read-every"] {
			cfg.ReadEvery = 100 * time.Millisecond
		}
	}
	st, ok := chaos.Suites[*suite]
	if !ok {
		fmt.Fprintf(os.Stderr, "wxchaos: unknown suite %q (want core, production, platform or all)\n", *suite)
		return 2
	}
	cfg.Required, cfg.Pool = st.Required, st.Pool
	if cfg.Duration == 0 {
		cfg.Duration = st.Duration
	}
	if *unsafeOff != "" {
		cfg.UnsafeOff = strings.Split(*unsafeOff, ",")
	}
	if *skipIntent && !slices.Contains(cfg.UnsafeOff, "intent") {
		cfg.UnsafeOff = append(cfg.UnsafeOff, "intent")
	}
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano() % 1_000_000
	}
	switch *faults {
	case "":
	case "all":
		cfg.Pool = chaos.AllKinds
	case "none":
		cfg.Pool = []string{}
	default:
		cfg.Pool = strings.Split(*faults, ",")
	}
	switch *require {
	case "":
	case "none":
		cfg.Required = []string{}
	default:
		cfg.Required = strings.Split(*require, ",")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "wxchaos:", err)
		return 2
	}
	if cfg.Keep {
		cfg.Dir, _ = filepath.Abs(filepath.Join(*out, "work"))
		if err := os.RemoveAll(cfg.Dir); err != nil {
			fmt.Fprintln(os.Stderr, "wxchaos:", err)
			return 2
		}
	}
	replay := os.Args[1:]
	if !set["seed"] {
		replay = append(replay, fmt.Sprintf("-seed=%d", cfg.Seed))
	}
	fmt.Printf("wxchaos: seed %d; replay with: go run ./chaos/cmd/wxchaos %s\n", cfg.Seed, strings.Join(replay, " "))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := chaos.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wxchaos:", err)
		return 2
	}
	if err := chaos.WriteJSON(filepath.Join(*out, "history.json"), res.History); err != nil {
		fmt.Fprintln(os.Stderr, "wxchaos:", err)
		return 2
	}
	if err := chaos.WriteJSON(filepath.Join(*out, "report.json"), res.Report); err != nil {
		fmt.Fprintln(os.Stderr, "wxchaos:", err)
		return 2
	}
	fmt.Print(res.Report.Table())
	fmt.Printf("wxchaos: wrote %s and %s\n", filepath.Join(*out, "report.json"), filepath.Join(*out, "history.json"))
	if !res.Report.OK() {
		return 1
	}
	return 0
}
