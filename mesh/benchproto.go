package mesh

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// StreamBenchProtocol measures what one raw libp2p stream carries between
// two members: the asker names a byte count, the other side sends that
// many bytes. It is the yardstick that content transfer is measured
// against.
const StreamBenchProtocol protocol.ID = "/artmesh/stream-bench/1.0.0"

// maxBenchBytes caps one measurement.
const maxBenchBytes = 16 << 30

// ServeStreamBench answers stream measurements on h.
func ServeStreamBench(h host.Host) {
	h.SetStreamHandler(StreamBenchProtocol, func(st network.Stream) {
		defer st.Close()
		n, err := binary.ReadUvarint(bufio.NewReader(io.LimitReader(st, binary.MaxVarintLen64)))
		if err != nil || n > maxBenchBytes {
			st.Reset()
			return
		}
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		for n > 0 {
			k := min(n, uint64(len(buf)))
			_ = st.SetWriteDeadline(time.Now().Add(rpcTimeout))
			if _, err := st.Write(buf[:k]); err != nil {
				st.Reset()
				return
			}
			n -= k
		}
	})
}

// MeasureStream receives n bytes from p over one raw stream and returns
// how long it took.
func MeasureStream(ctx context.Context, h host.Host, p peer.ID, n uint64) (time.Duration, error) {
	if n > maxBenchBytes {
		return 0, fmt.Errorf("mesh: at most %d bytes per measurement", uint64(maxBenchBytes))
	}
	st, err := openStream(ctx, h, p, StreamBenchProtocol)
	if err != nil {
		return 0, fmt.Errorf("mesh: open a stream to %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	start := time.Now()
	if _, err := st.Write(binary.AppendUvarint(nil, n)); err != nil {
		st.Reset()
		return 0, err
	}
	got, err := io.CopyBuffer(io.Discard, st, make([]byte, 1<<20))
	if err != nil {
		st.Reset()
		return 0, err
	}
	if uint64(got) != n {
		return 0, fmt.Errorf("mesh: got %d of %d bytes", got, n)
	}
	return time.Since(start), nil
}
