package etcdtest

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Counter counts the gRPC requests an etcd client sends and the bytes of
// the replies it receives, per method, through client interceptors: pass
// DialOptions to clientv3.Config. A stream (a watch, a keepalive) counts
// one request per message sent and the bytes of every message received.
// Safe for concurrent use.
type Counter struct {
	mu    sync.Mutex
	calls map[string]Count
	// Observe, if set before the client dials, is called with every
	// unary request before it is sent; it must be safe for concurrent
	// use.
	Observe func(method string, req any)
}

// Count is what a Counter saw of one method, or of all.
type Count struct {
	Requests int
	Bytes    int // of the replies received (their protobuf encoding)
}

// Sub is c minus an earlier count.
func (c Count) Sub(earlier Count) Count {
	return Count{Requests: c.Requests - earlier.Requests, Bytes: c.Bytes - earlier.Bytes}
}

func size(m any) int {
	if pm, ok := m.(proto.Message); ok {
		return proto.Size(pm)
	}
	return 0
}

func (c *Counter) add(method string, reqs, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]Count{}
	}
	n := c.calls[method]
	n.Requests += reqs
	n.Bytes += bytes
	c.calls[method] = n
}

// Method is the count of one method, e.g. "/etcdserverpb.KV/Range".
func (c *Counter) Method(method string) Count {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

// Total is the count over every method.
func (c *Counter) Total() Count {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t Count
	for _, n := range c.calls {
		t.Requests += n.Requests
		t.Bytes += n.Bytes
	}
	return t
}

// DialOptions are the interceptors to give clientv3.Config.DialOptions.
func (c *Counter) DialOptions() []grpc.DialOption {
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if c.Observe != nil {
			c.Observe(method, req)
		}
		err := invoker(ctx, method, req, reply, cc, opts...)
		c.add(method, 1, size(reply))
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &countedStream{ClientStream: s, c: c, method: method}, nil
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)}
}

type countedStream struct {
	grpc.ClientStream
	c      *Counter
	method string
}

func (s *countedStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	s.c.add(s.method, 1, 0)
	return err
}

func (s *countedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		s.c.add(s.method, 0, size(m))
	}
	return err
}
