// Package e2e holds the end-to-end test of docker-compose.yml: it builds the
// images FROM scratch (deploy/build-images.sh), starts the whole stack under
// a unique Compose project name, and while consumers read tokens from every
// replica and use them against the WeChat simulator it kills the leader,
// cuts a replica off from etcd and stops an etcd member. The recorded
// history is judged by chaos/checker. The monitoring profile runs along:
// before the faults, the test checks through Prometheus's HTTP API that
// every replica is scraped, exactly one reports leading, and every alert
// rule evaluates. The fleet profile runs too: a serve-only sidecar that
// reaches etcd only through etcd's gRPC proxy (etcd-proxy) must serve the
// replicas' token at the start and again after the faults. The stack is
// always torn down (down -v), on failure, on a deadline and on
// SIGINT/SIGTERM alike.
//
// The test sits behind the e2e build tag and needs a Docker engine:
//
//	go test -tags e2e -count=1 -timeout 30m -v ./e2e/
//
// With no engine answering it skips (set WXTOKEN_E2E_REQUIRE_DOCKER=1 to
// fail instead); with an engine, anything that stops it from running is a
// failure. WXTOKEN_E2E_SKIP_BUILD=1 reuses the images of the previous run;
// WXTOKEN_E2E_OUT names the directory for the history, the report and the
// containers' logs (default e2e/out/<project>).
package e2e
