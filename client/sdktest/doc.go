// Package sdktest runs WeChat SDKs for Go against a real replica and the
// WeChat simulator, with the client package's adapters. It is a module of
// its own, so that the SDKs stay out of the main module; it has tests only:
//
//	cd client/sdktest && go test ./...
package sdktest
