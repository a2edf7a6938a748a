// Package platformrecover restores an Open Platform third-party
// platform's authorizer refresh tokens from WeChat's
// api_get_authorizer_list, which lists every authorized account with its
// current refresh token: the recovery path after a refresh token was lost
// (a wiped store, a leader that died between WeChat's answer and its
// publish) or rejected (61023). Recover is `wxtoken platform recover`;
// Walk and Find are the paging, for the leader's own recovery of one
// authorizer. It imports neither the refresher nor the replica.
package platformrecover

import (
	"context"
	"fmt"

	"github.com/wxtoken/wxtoken/fetcher"
)

// Lister reads one page of api_get_authorizer_list; *fetcher.Client
// implements it.
type Lister interface {
	AuthorizerList(ctx context.Context, componentToken, componentAppID string, offset, count int) (fetcher.AuthorizerPage, error)
}

var _ Lister = (*fetcher.Client)(nil)

// Walk calls fn with every account WeChat lists as authorized to the
// platform, in WeChat's order, page by page (fetcher.MaxAuthorizerPage
// each), until fn says stop, fn or a page fails, or the list ends. It
// blocks for as many calls as there are pages and stops when ctx ends.
//
// WeChat pages by offset: an account authorized or unauthorized during
// the walk may shift the pages, so that another account shows twice or
// not at all. Callers that need every account judge a second walk.
func Walk(ctx context.Context, l Lister, componentToken, componentAppID string, fn func(fetcher.AuthorizerEntry) (stop bool, err error)) error {
	for offset := 0; ; {
		page, err := l.AuthorizerList(ctx, componentToken, componentAppID, offset, fetcher.MaxAuthorizerPage)
		if err != nil {
			return fmt.Errorf("list authorizers from %d: %w", offset, err)
		}
		for _, en := range page.Authorizers {
			stop, err := fn(en)
			if err != nil || stop {
				return err
			}
		}
		offset += len(page.Authorizers)
		if len(page.Authorizers) == 0 || offset >= page.Total {
			return nil
		}
	}
}

// Find walks the list (Walk) until it finds the account appID, and
// returns its entry; ok is false if WeChat does not list it (it is not
// authorized, or the list shifted under the walk). It blocks like Walk.
func Find(ctx context.Context, l Lister, componentToken, componentAppID, appID string) (en fetcher.AuthorizerEntry, ok bool, err error) {
	err = Walk(ctx, l, componentToken, componentAppID, func(e fetcher.AuthorizerEntry) (bool, error) {
		if e.AppID == appID {
			en, ok = e, true
		}
		return ok, nil
	})
	if err != nil {
		return fetcher.AuthorizerEntry{}, false, err
	}
	return en, ok, nil
}
