//go:build wxunsafe

package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/wxtoken/wxtoken/replica"
)

// unsafeFlags registers --unsafe-off (and the older --unsafe-skip-intent).
// They exist only in binaries built with -tags wxunsafe, for the fault
// suite, which switches a protection off to show its checker catching the
// bug that protection prevents.
func unsafeFlags(fs *flag.FlagSet) func() (replica.Unsafe, error) {
	off := fs.String("unsafe-off", "", "comma-separated protections to switch off (fault suite only): "+strings.Join(unsafeNames, ", "))
	skip := fs.Bool("unsafe-skip-intent", false, "same as --unsafe-off intent")
	return func() (replica.Unsafe, error) {
		var u replica.Unsafe
		u.SkipIntent = *skip
		for _, name := range strings.Split(*off, ",") {
			switch strings.TrimSpace(name) {
			case "":
			case "intent":
				u.SkipIntent = true
			case "isolation":
				u.NoIsolation = true
			case "blind-retry":
				u.BlindRetry = true
			case "drain":
				u.NoDrain = true
			case "recovery":
				u.NoReadWait = true
			case "report-limit":
				u.NoReportLimit = true
			case "foreign":
				u.NoForeign = true
			case "short-scale":
				u.NoShortScale = true
			default:
				return u, fmt.Errorf("serve: --unsafe-off: unknown protection %q (want %s)", name, strings.Join(unsafeNames, ", "))
			}
		}
		return u, nil
	}
}

var unsafeNames = []string{"intent", "isolation", "blind-retry", "drain", "recovery", "report-limit", "foreign", "short-scale"}
