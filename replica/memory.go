package replica

import "runtime/debug"

// bigConfig is the number of apps from which a replica hands the garbage
// of its start-up back to the operating system.
const bigConfig = 1000

// releaseStartup returns the memory that start-up used and no longer needs
// to the operating system, for configurations of many apps: the parse of
// the configuration, the cache's first list and a term's bulk read of
// every credential are tens of megabytes at 100,000 credentials, which the
// Go runtime would otherwise keep until its scavenger gets to them. It
// forces a collection, so it runs once per event, never on a request's path.
func releaseStartup(apps int) {
	if apps >= bigConfig {
		debug.FreeOSMemory()
	}
}
