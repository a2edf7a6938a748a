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

// startupGC is the GC percentage while a big replica loads its cache: the
// heap only grows then, and collecting it at every doubling costs a
// third of a cold start's CPU at 100,000 credentials.
const startupGC = 400

// loading relaxes the garbage collector while a replica of many apps
// loads its cache; the returned function restores it.
func loading(apps int) (done func()) {
	if apps < bigConfig {
		return func() {}
	}
	old := debug.SetGCPercent(startupGC)
	if old < 0 || old > startupGC { // GOGC=off or higher: the operator's choice stands
		debug.SetGCPercent(old)
		return func() {}
	}
	return func() { debug.SetGCPercent(old) }
}
