package replica

import (
	"fmt"
	"strings"
)

// UnsafeNames are the protections ParseUnsafe knows, as the fault suite
// names them.
var UnsafeNames = []string{"intent", "isolation", "blind-retry", "drain", "recovery", "report-limit", "foreign", "short-scale", "code-claim", "clock", "hold"}

// ParseUnsafe turns a comma-separated list of UnsafeNames into the
// switches that turn those protections off. Only the fault suite uses it:
// the release binary has no flag that reaches it.
func ParseUnsafe(list string) (Unsafe, error) {
	var u Unsafe
	for _, name := range strings.Split(list, ",") {
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
		case "code-claim":
			u.NoCodeClaim = true
		case "clock":
			u.NoClockCorrection = true
		case "hold":
			u.NoHold = true
		default:
			return u, fmt.Errorf("unknown protection %q (want %s)", name, strings.Join(UnsafeNames, ", "))
		}
	}
	return u, nil
}
