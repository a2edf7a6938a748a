// Command bench measures wxtoken against its performance targets and prints
// one table, each figure beside its target, and writes it as JSON:
//
//  1. token reads over HTTP from a `wxtoken serve` sidecar (loopback and
//     its unix socket) against Redis GETs as deployed (Redis in a container
//     on a Docker network of the run's own) and on the same transports,
//     same load generator, concurrency 1 and 50;
//  2. the Go client's cached read;
//  3. propagation of a new token to 3, 20 and 50 replicas;
//  4. failover after a graceful stop and after kill -9 of the leader;
//  5. 10,000 credentials: cold start, resident memory, refresh bursts;
//  6. WeChat calls per classic credential per (simulated) day;
//  7. a fleet of 1,000 watch-only replicas, straight to etcd and through
//     etcd's gRPC proxy (fleet.go);
//  8. an Open Platform third-party platform with 10,000 authorizers: the
//     fill through the event URL and a refresh cycle (platform.go).
//
// Run it from the module root: go run ./bench [-quick] [-out FILE]. It
// needs redis-server (apt-get install -y redis-server) and, for section
// 1 as deployed, Docker. Everything it starts (etcd, redis-server, the
// Redis container and its network, wxtoken processes, replicas) is stopped
// before it returns.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the runner's flags.
type options struct {
	out          string
	quick        bool
	only         map[string]bool
	loadDuration time.Duration
	creds        int
	bin          string
	keep         bool
	cpus         int
	redisImage   string
}

// sections in the order they run.
var sections = []string{"read", "propagation", "failover", "scale", "day", "fleet", "platform"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	var only string
	fs.StringVar(&o.out, "out", "bench/out/results.json", "write the results as JSON to this file")
	fs.BoolVar(&o.quick, "quick", false, "shorter runs and fewer credentials (a smoke test: figures are rougher)")
	fs.StringVar(&only, "only", "", "comma-separated sections to run: "+strings.Join(sections, ","))
	fs.DurationVar(&o.loadDuration, "duration", 5*time.Second, "measured duration of each load run (section 1)")
	fs.StringVar(&o.redisImage, "redis-image", "wxtoken/redis:latest", "image of the Redis that section 1 runs on a Docker network of its own, as deployed "+
		"(built with deploy/build-images.sh redis when missing); empty: Redis on loopback only")
	fs.IntVar(&o.creds, "creds", 100000, "credentials of the largest cluster in the scale section (it also runs 10,000)")
	fs.StringVar(&o.bin, "wxtoken", "", "wxtoken binary to run (default: go build ./cmd/wxtoken)")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (logs, etcd data) after the run")
	table := fs.String("table", "", "print the table of a results file written earlier, and run nothing")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the runner's own process (in-process replicas, etcd, load generator) to this file")
	refMode := fs.String("reference-server", "", "") // internal: run a reference server of section 1
	refListen := fs.String("listen", "", "")
	refBody := fs.String("body", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *refMode != "" {
		return serveReference(ctx, *refMode, *refListen, *refBody)
	}
	if *table != "" {
		rep, err := readReport(*table)
		if err != nil {
			return err
		}
		rep.Table(os.Stdout)
		return nil
	}
	o.cpus = runtime.GOMAXPROCS(0)
	if o.quick {
		o.loadDuration = min(o.loadDuration, 2*time.Second)
		if o.creds == 100000 {
			o.creds = 20000
		}
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.only[s] = true
		}
	}
	for s := range o.only {
		if !slices.Contains(sections, s) {
			return fmt.Errorf("-only: unknown section %q (want %s)", s, strings.Join(sections, ","))
		}
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if len(o.only) == 0 || o.only["read"] {
		if _, err := exec.LookPath("redis-server"); err != nil {
			return fmt.Errorf("%w (or leave section read out: -only propagation,failover,scale,day)", errNoRedis)
		}
	}
	rep := &Report{Started: time.Now(), Quick: o.quick, Host: host()}
	dir, err := os.MkdirTemp("", "wxtoken-bench-")
	if err != nil {
		return err
	}
	e := &env{opts: o, dir: dir}
	defer func() {
		if o.keep || len(rep.Failures) > 0 {
			fmt.Fprintf(os.Stderr, "bench: logs and data kept in %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	if e.bin = o.bin; e.bin == "" {
		fmt.Fprintln(os.Stderr, "bench: building ./cmd/wxtoken")
		if e.bin, err = buildWxtoken(ctx, dir); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "bench: starting a 3-member etcd cluster")
	if e.etcd, err = startEtcd(ctx, dir+"/etcd", 3); err != nil {
		return err
	}
	defer e.etcd.Close()

	steps := map[string]func(context.Context, *Report) error{
		"read": e.readSection, "propagation": e.propagationSection, "failover": e.failoverSection,
		"scale": e.scaleSection, "day": e.daySection, "fleet": e.fleetSection,
		"platform": e.platformSection,
	}
	for _, s := range sections {
		if len(o.only) > 0 && !o.only[s] {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s (%s elapsed)\n", s, time.Since(rep.Started).Round(time.Second))
		if err := steps[s](ctx, rep); err != nil {
			if ctx.Err() != nil {
				return errors.Join(err, ctx.Err())
			}
			rep.Failures = append(rep.Failures, s+": "+err.Error())
			fmt.Fprintf(os.Stderr, "bench: %s failed: %v\n", s, err)
		}
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	fmt.Println()
	rep.Table(os.Stdout)
	if err := rep.WriteJSON(o.out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: results written to %s\n", o.out)
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d section(s) could not run", len(rep.Failures))
	}
	return nil
}

// host describes this machine.
func host() Host {
	h := Host{GoVersion: runtime.Version(), CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				h.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			h.Load = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	return h
}
