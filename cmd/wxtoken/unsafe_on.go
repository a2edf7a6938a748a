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
	off := fs.String("unsafe-off", "", "comma-separated protections to switch off (fault suite only): "+strings.Join(replica.UnsafeNames, ", "))
	skip := fs.Bool("unsafe-skip-intent", false, "same as --unsafe-off intent")
	return func() (replica.Unsafe, error) {
		u, err := replica.ParseUnsafe(*off)
		if err != nil {
			return u, fmt.Errorf("serve: --unsafe-off: %w", err)
		}
		u.SkipIntent = u.SkipIntent || *skip
		return u, nil
	}
}
