//go:build !wxunsafe

package main

import (
	"flag"

	"github.com/wxtoken/wxtoken/replica"
)

// unsafeFlags registers nothing in a release build: the fault suite's
// switches exist only with -tags wxunsafe.
func unsafeFlags(*flag.FlagSet) func() (replica.Unsafe, error) {
	return func() (replica.Unsafe, error) { return replica.Unsafe{}, nil }
}
