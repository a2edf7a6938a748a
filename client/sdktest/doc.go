// Package sdktest runs an app's side against a real replica and the WeChat
// simulator: WeChat SDKs for Go with the client package's adapters, and the
// README's Python and Node snippets as the README has them. It is a module
// of its own, so that the SDKs stay out of the main module; it has tests
// only, and needs python3 with requests and node 18+ on the machine:
//
//	cd client/sdktest && go test ./...
package sdktest
