package wechatproxy

import "sync/atomic"

// budget bounds the bytes of request bodies held at once across all calls,
// so that many large bodies cannot exhaust memory. Safe for concurrent use.
type budget struct {
	limit int64
	used  atomic.Int64
}

// take reserves n bytes and reports whether they were free.
func (b *budget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// give returns n bytes reserved by take.
func (b *budget) give(n int64) { b.used.Add(-n) }
