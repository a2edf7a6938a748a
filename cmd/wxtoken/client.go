package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wxtoken/wxtoken/client"
)

// clientFlags are the flags of the commands that talk to a replica.
type clientFlags struct {
	addr      string
	tokenFile string
	json      bool
	quiet     bool
	timeout   time.Duration
}

func newClientFlags(name string, stderr io.Writer, quiet bool) (*flag.FlagSet, *clientFlags) {
	cf := &clientFlags{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("WXTOKEN_ADDR")
	if def == "" {
		def = client.DefaultBaseURL
	}
	fs.StringVar(&cf.addr, "addr", def, "replica API base URL, or unix:///path/to/api.sock (env WXTOKEN_ADDR)")
	fs.StringVar(&cf.tokenFile, "token-file", os.Getenv("WXTOKEN_TOKEN_FILE"), "file holding this client's bearer token (env WXTOKEN_TOKEN_FILE; or the token itself in WXTOKEN_TOKEN)")
	fs.BoolVar(&cf.json, "json", false, "print JSON, for scripts")
	fs.DurationVar(&cf.timeout, "timeout", client.DefaultTimeout, "bound on the whole command")
	if quiet {
		fs.BoolVar(&cf.quiet, "q", false, "print the access token alone")
	}
	return fs, cf
}

// parseArgs parses flags wherever they stand among the positional
// arguments, so that both "get --json shop" and "get shop --json" work.
func parseArgs(fs *flag.FlagSet, args []string, want int, usage string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) != want {
		return nil, badUsage(fmt.Errorf("usage: wxtoken %s", usage))
	}
	return pos, nil
}

func (cf *clientFlags) client() (*client.Client, error) {
	token := os.Getenv("WXTOKEN_TOKEN")
	if cf.tokenFile != "" {
		b, err := os.ReadFile(cf.tokenFile)
		if err != nil {
			return nil, badUsage(fmt.Errorf("--token-file: %w", err))
		}
		token = strings.TrimSpace(string(b))
	}
	c, err := client.New(client.Config{BaseURL: cf.addr, Token: token, HTTPClient: &http.Client{Timeout: cf.timeout}})
	if err != nil {
		return nil, badUsage(fmt.Errorf("--addr: %w", err))
	}
	return c, nil
}

// connect builds the client and a context bounded by --timeout.
func (cf *clientFlags) connect(ctx context.Context) (*client.Client, context.Context, context.CancelFunc, error) {
	c, err := cf.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	return c, ctx, cancel, nil
}

// explain adds a hint to an unreachable replica's error.
func explain(err error) error {
	if errors.Is(err, client.ErrUnreachable) {
		return fmt.Errorf("%w (is a replica running there? set --addr or WXTOKEN_ADDR)", err)
	}
	return err
}

func getCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlags("get", stderr, true)
	pos, err := parseArgs(fs, args, 1, "get [--addr URL] [--json | -q] APP")
	if err != nil {
		return err
	}
	c, ctx, cancel, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	tok, err := c.Token(ctx, pos[0])
	if err != nil {
		return explain(err)
	}
	return printToken(stdout, cf, tok, "")
}

func invalidateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlags("invalidate", stderr, true)
	pos, err := parseArgs(fs, args, 2, "invalidate [--addr URL] [--json | -q] APP TOKEN")
	if err != nil {
		return err
	}
	c, ctx, cancel, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	tok, err := c.Invalidate(ctx, pos[0], pos[1])
	if err != nil {
		return explain(err)
	}
	note := ""
	if tok.AccessToken == pos[1] {
		note = "the replica still serves this token: WeChat handed the same one back"
	}
	return printToken(stdout, cf, tok, note)
}

// printToken prints tok as JSON, alone, or for a person with a note.
func printToken(w io.Writer, cf *clientFlags, tok client.Token, note string) error {
	switch {
	case cf.json:
		return writeJSON(w, tok)
	case cf.quiet:
		_, err := fmt.Fprintln(w, tok.AccessToken)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "app\t%s (%s)\n", tok.App, tok.Kind)
	fmt.Fprintf(tw, "access_token\t%s\n", tok.AccessToken)
	fmt.Fprintf(tw, "seq\t%d\n", tok.Seq)
	fmt.Fprintf(tw, "expires\t%s (in %s)\n", tok.ExpiresAt.Local().Format(timeLayout), human(time.Until(tok.ExpiresAt)))
	fmt.Fprintf(tw, "keep for\t%s\n", human(time.Duration(tok.ExpiresIn)*time.Second))
	if note != "" {
		fmt.Fprintf(tw, "note\t%s\n", note)
	}
	return tw.Flush()
}

func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlags("status", stderr, false)
	if _, err := parseArgs(fs, args, 0, "status [--addr URL] [--json]"); err != nil {
		return err
	}
	c, ctx, cancel, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return explain(err)
	}
	if cf.json {
		return writeJSON(stdout, st)
	}
	return printStatus(stdout, st, time.Now())
}

// printStatus writes st for a person, with durations relative to now.
func printStatus(w io.Writer, st client.Status, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ready := "ready"
	if !st.Ready {
		ready = "NOT READY: not following etcd, serving cached credentials until they expire"
	}
	fmt.Fprintf(tw, "node\t%s (%s)\n", st.Node, ready)
	leader := st.Leader
	switch {
	case st.EtcdError != "":
		leader = "unknown: " + st.EtcdError
	case leader == "":
		leader = "none"
	}
	fmt.Fprintf(tw, "leader\t%s\n", leader)
	fmt.Fprintf(tw, "replicas\t%d\n", len(st.Replicas))
	if err := tw.Flush(); err != nil {
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range st.Replicas {
		role := "watch only"
		if r.Candidate {
			role = "candidate"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\tup %s\n", r.Node, role, r.API, human(now.Sub(r.Started)))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CREDENTIAL\tKIND\tSEQ\tAGE\tEXPIRES IN\tNEXT REFRESH\tFETCHES TODAY\tSTATE")
	for _, cs := range st.Credentials {
		age, exp, next := "-", "-", "-"
		if !cs.FetchedAt.IsZero() {
			age = human(time.Duration(cs.AgeSeconds) * time.Second)
		}
		if !cs.ExpiresAt.IsZero() {
			exp = human(cs.ExpiresAt.Sub(now))
		}
		if !cs.NextRefresh.IsZero() {
			next = "in " + human(cs.NextRefresh.Sub(now))
			if !cs.NextRefresh.After(now) {
				next = "due"
			}
		}
		fetches := fmt.Sprint(cs.FetchesToday)
		if cs.Budget > 0 {
			fetches += "/" + fmt.Sprint(cs.Budget)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", cs.Cred, cs.Kind, cs.Seq, age, exp, next, fetches, credState(cs))
	}
	return tw.Flush()
}

// credState sums up what is wrong with a credential, or "ok".
func credState(cs client.CredStatus) string {
	var parts []string
	if cs.Blocked != "" {
		b := "blocked: " + cs.Blocked
		if !cs.BlockedTill.IsZero() {
			b += " until " + cs.BlockedTill.Local().Format(timeLayout)
		}
		parts = append(parts, b)
	}
	if cs.InFlight {
		parts = append(parts, "fetching")
	}
	switch {
	case cs.Seq == 0:
		parts = append(parts, "none yet")
	case !cs.Usable:
		parts = append(parts, "NOT USABLE")
	}
	if cs.LastError != "" {
		parts = append(parts, "last error: "+cs.LastError)
	}
	if len(parts) == 0 {
		return "ok"
	}
	return strings.Join(parts, "; ")
}

// human rounds d to the second, or to the minute past an hour.
func human(d time.Duration) string {
	if d < 0 {
		return "-" + human(-d)
	}
	if d >= time.Hour {
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	return d.Round(time.Second).String()
}

// timeLayout shows an instant to a person, with its zone.
const timeLayout = "2006-01-02 15:04:05 MST"

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
