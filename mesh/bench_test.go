package mesh

import (
	"context"
	"testing"
	"time"
)

// BenchmarkStream measures one raw libp2p stream between two hosts in
// this process (TCP, TLS, yamux), without and with a private network.
func BenchmarkStream(b *testing.B) {
	b.Run("tls", func(b *testing.B) { benchStream(b, Key{}) })
	b.Run("tls+psk", func(b *testing.B) { benchStream(b, NewKey()) })
}

func benchStream(b *testing.B, key Key) {
	a, c := newTestHost(b, key), newTestHost(b, key)
	c.Peerstore().AddAddrs(a.ID(), a.Addrs(), time.Hour)
	ServeStreamBench(a)
	const n = 256 << 20
	b.SetBytes(n)
	for i := 0; i < b.N; i++ {
		if _, err := MeasureStream(context.Background(), c, a.ID(), n); err != nil {
			b.Fatal(err)
		}
	}
}
