// Command wxtoken keeps WeChat credentials fresh for a fleet: see README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: wxtoken <command> [flags]

commands:
  serve       run a replica (--config FILE, or --demo)
  wechat-sim  run the WeChat simulator (--listen ADDR, --app, --corp, --platform)
  get         print an app's access token (APP; --json, -q)
  invalidate  report a dead token, print the current one (APP TOKEN; --json, -q)
  status      print the cluster's state as a replica sees it (--json)
  platform    recover NAME: restore a platform's authorizer refresh tokens from WeChat (--config FILE)
  config      check FILE: validate a config, print it with secrets redacted
  version     print the version and the VCS revision it was built from

Run 'wxtoken <command> -h' for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks errors from bad flags or configuration: exit code 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "wxtoken:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "wxtoken:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "wechat-sim":
		return wechatSim(ctx, args[1:], stdout, stderr)
	case "get":
		return getCmd(ctx, args[1:], stdout, stderr)
	case "invalidate":
		return invalidateCmd(ctx, args[1:], stdout, stderr)
	case "status":
		return statusCmd(ctx, args[1:], stdout, stderr)
	case "config":
		return configCmd(ctx, args[1:], stdout, stderr)
	case "platform":
		return platformCmd(ctx, args[1:], stdout, stderr)
	case "version":
		return versionCmd(stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

// usageErr wraps a user error so that main exits with code 2 and prints
// the message alone.
type usageErr struct{ msg string }

func (e usageErr) Error() string        { return e.msg }
func (e usageErr) Is(target error) bool { return target == errUsage }

func badUsage(err error) error { return usageErr{msg: err.Error()} }
