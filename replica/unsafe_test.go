package replica_test

import (
	"strings"
	"testing"

	"github.com/wxtoken/wxtoken/replica"
)

func TestParseUnsafe(t *testing.T) {
	u, err := replica.ParseUnsafe(strings.Join(replica.UnsafeNames, ","))
	if err != nil {
		t.Fatal(err)
	}
	if !u.SkipIntent || !u.NoIsolation || !u.BlindRetry || !u.NoDrain || !u.NoReadWait || !u.NoReportLimit || !u.NoForeign || !u.NoShortScale || !u.NoCodeClaim || !u.NoClockCorrection || !u.NoHold {
		t.Errorf("every name switched on: got %+v", u)
	}
	if u, err := replica.ParseUnsafe(""); err != nil || u != (replica.Unsafe{}) {
		t.Errorf(`ParseUnsafe(""): %+v, %v; want nothing switched off`, u, err)
	}
	if _, err := replica.ParseUnsafe("drain,nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("an unknown name: err %v, want it named", err)
	}
}
