// Package uitest opens a replica's status page in a real headless Chromium.
// It is a module of its own so that the browser driver (chromedp) stays out
// of the main module; it has tests only. Run it from this directory:
//
//	go test ./...                 # needs Debian's chromium on PATH
//	go test -run TestStatusPage -screenshots   # also rewrites docs/status-page*.png
package uitest
