// Package etcdtest starts real etcd clusters for tests, with etcd's own
// integration framework (members in-process, bridges to cut clients off).
package etcdtest

import (
	"sync"
	"testing"

	"go.etcd.io/etcd/tests/v3/framework/integration"
)

// electionTicks makes etcd's election timeout 500 ms instead of the
// framework's 100 ms: the suite runs with the race detector on two cores,
// where 100 ms of starvation would elect a new etcd leader for no fault.
const electionTicks = 50

var setTicks sync.Once

// NewCluster starts a cluster of size members with bridges, waits for a
// leader, and terminates it when the test ends.
func NewCluster(t testing.TB, size int) *integration.Cluster {
	t.Helper()
	return newCluster(t, &integration.ClusterConfig{Size: size, UseBridge: true})
}

// NewTCPCluster is NewCluster with members that clients reach over TCP
// (Members[i].GRPCURL is http://host:port), for a client that dials its
// own endpoints, and no bridges.
func NewTCPCluster(t testing.TB, size int) *integration.Cluster {
	t.Helper()
	return newCluster(t, &integration.ClusterConfig{Size: size, UseTCP: true})
}

func newCluster(t testing.TB, cfg *integration.ClusterConfig) *integration.Cluster {
	t.Helper()
	setTicks.Do(func() { integration.ElectionTicks = electionTicks })
	integration.BeforeTestExternal(t)
	clus := integration.NewCluster(t, cfg)
	t.Cleanup(func() { clus.Terminate(t) })
	clus.WaitLeader(t)
	return clus
}
