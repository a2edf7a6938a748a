package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"

	"gopkg.in/yaml.v3"

	"github.com/wxtoken/wxtoken/config"
)

// configCmd runs "config check FILE": validate FILE and print the
// effective configuration with every secret redacted.
func configCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return badUsage(errors.New("usage: wxtoken config check FILE"))
	}
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wxtoken config check FILE\n\nValidates FILE and prints the effective configuration, secrets redacted; exit 2 on error.")
	}
	pos, err := parseArgs(fs, args[1:], 1, "config check FILE")
	if err != nil {
		return err
	}
	cfg, err := config.Load(pos[0])
	if err != nil {
		return badUsage(err)
	}
	fmt.Fprintf(stdout, "# %s: valid; the effective configuration, secrets redacted\n", pos[0])
	enc := yaml.NewEncoder(stdout)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	return enc.Close()
}

// versionCmd prints the version and what the binary was built from.
func versionCmd(stdout io.Writer) error {
	bi, _ := debug.ReadBuildInfo() // nil when the binary carries none
	printVersion(stdout, version, bi)
	return nil
}

// printVersion prints v (the -X main.version of the build, or "dev") and,
// from bi if not nil, the module version, the Go release and the VCS
// revision, time and modified flag that go build stamps.
func printVersion(w io.Writer, v string, bi *debug.BuildInfo) {
	if bi == nil {
		fmt.Fprintln(w, "wxtoken", v)
		return
	}
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version // go install module@version
	}
	fmt.Fprintln(w, "wxtoken", v)
	fmt.Fprintf(w, "module    %s %s\n", bi.Main.Path, bi.Main.Version)
	fmt.Fprintf(w, "go        %s\n", bi.GoVersion)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for _, k := range []struct{ key, label string }{
		{"vcs.revision", "revision"}, {"vcs.time", "time"}, {"vcs.modified", "modified"},
	} {
		val, ok := settings[k.key]
		if !ok {
			val = "unknown (built without VCS information)"
		}
		fmt.Fprintf(w, "%-9s %s\n", k.label, val)
	}
}
