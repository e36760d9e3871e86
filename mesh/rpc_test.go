package mesh

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
)

// allocated returns the bytes the heap handed out while f ran. Tests that
// use it do not run in parallel.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// frame is a message as writeMessage sends it: the announced length and
// then body, which may be shorter (a peer that lies).
func frame(announced uint64, body []byte) *bufio.Reader {
	b := binary.AppendUvarint(nil, announced)
	return bufio.NewReader(bytes.NewReader(append(b, body...)))
}

// TestReadMessageAnnouncedHugeAllocatesLittle: a peer that announces the
// largest message and sends 100 bytes costs the reader about what it
// sent, not the 4 MiB it announced.
func TestReadMessageAnnouncedHugeAllocatesLittle(t *testing.T) {
	r := frame(maxMessage, bytes.Repeat([]byte{7}, 100))
	var err error
	got := allocated(func() { _, err = readMessage(r, maxMessage) })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a cut-off message read as %v, want io.ErrUnexpectedEOF", err)
	}
	if got > 2*readChunk {
		t.Fatalf("reading 100 bytes of an announced %d allocated %d bytes, want at most %d", maxMessage, got, 2*readChunk)
	}
}

// TestReadMessageExactSize: messages of exactly the limit, of several
// chunks and of none are read whole, into a buffer no larger than the
// message.
func TestReadMessageExactSize(t *testing.T) {
	for _, tt := range []struct {
		name  string
		size  int
		limit uint64
	}{
		{"empty", 0, MaxGuestMessage},
		{"guest limit", MaxGuestMessage, MaxGuestMessage},
		{"several chunks", 5*readChunk + 3, maxMessage},
		{"largest", maxMessage, maxMessage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := make([]byte, tt.size)
			for i := range body {
				body[i] = byte(i * 31)
			}
			msg, err := readMessage(frame(uint64(tt.size), body), tt.limit)
			if err != nil || !bytes.Equal(msg, body) || msg == nil {
				t.Fatalf("read %d bytes (nil: %v), %v; want the %d sent", len(msg), msg == nil, err, tt.size)
			}
			if cap(msg) != tt.size {
				t.Fatalf("a message of %d bytes was read into a buffer of %d", tt.size, cap(msg))
			}
		})
	}
}

// TestReadMessageOverLimit: a message announced one byte over its limit
// is refused.
func TestReadMessageOverLimit(t *testing.T) {
	body := make([]byte, MaxGuestMessage+1)
	r := frame(MaxGuestMessage+1, body)
	msg, err := readMessage(r, MaxGuestMessage)
	if !errors.Is(err, errMessageTooLarge) || msg != nil {
		t.Fatalf("an over-limit message read as %d bytes, %v; want errMessageTooLarge", len(msg), err)
	}
}

// TestServeGuestCapsRequests: a guest protocol's handler never sees a
// request over MaxGuestMessage; one of exactly MaxGuestMessage is
// answered.
func TestServeGuestCapsRequests(t *testing.T) {
	a, b := newTestHost(t, Key{}), newTestHost(t, Key{})
	var calls atomic.Int32
	ServeGuest(a, "/test/guest/1", func(_ context.Context, _ peer.ID, req []byte) ([]byte, error) {
		calls.Add(1)
		return binary.AppendUvarint(nil, uint64(len(req))), nil
	})
	b.Peerstore().AddAddrs(a.ID(), a.Addrs(), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := Call(ctx, b, a.ID(), "/test/guest/1", make([]byte, MaxGuestMessage))
	if n, _ := binary.Uvarint(resp); err != nil || n != MaxGuestMessage {
		t.Fatalf("a request of exactly MaxGuestMessage: %v %v", resp, err)
	}
	if _, err := Call(ctx, b, a.ID(), "/test/guest/1", make([]byte, MaxGuestMessage+1)); err == nil {
		t.Fatal("a request over MaxGuestMessage was answered")
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("the handler ran %d times, want 1 (the over-limit request must not reach it)", c)
	}
}

// TestReadFrameAnnouncedBlockAllocatesLittle: a pushed frame that
// announces the largest block and carries a few bytes costs the receiver
// little.
func TestReadFrameAnnouncedBlockAllocatesLittle(t *testing.T) {
	h, _ := multihash.Sum([]byte("x"), multihash.SHA2_256, -1)
	cb := cid.NewCidV1(cid.Raw, h).Bytes()
	b := binary.AppendUvarint(nil, uint64(len(cb)))
	b = append(b, cb...)
	b = binary.AppendUvarint(b, maxBlock)
	b = append(b, bytes.Repeat([]byte{1}, 100)...)
	r := bufio.NewReader(bytes.NewReader(b))
	var err error
	got := allocated(func() { _, _, err = readFrame(r, nil) })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a cut-off block read as %v, want io.ErrUnexpectedEOF", err)
	}
	if got > 2*readChunk {
		t.Fatalf("reading 100 bytes of an announced %d-byte block allocated %d bytes, want at most %d", maxBlock, got, 2*readChunk)
	}
}

// TestReadBlockTakesABufferOnlyOnceBytesArrive: a DAG stream's block is
// read into a buffer from alloc only once its first readChunk bytes
// arrived; a whole block reads back exactly.
func TestReadBlockTakesABufferOnlyOnceBytesArrive(t *testing.T) {
	var asked []int
	alloc := func(n int) []byte { asked = append(asked, n); return make([]byte, n) }
	scratch := make([]byte, readChunk)
	few := bytes.NewReader(bytes.Repeat([]byte{1}, 100))
	if _, err := readBlock(few, maxBlock, scratch, alloc); !errors.Is(err, io.ErrUnexpectedEOF) || len(asked) != 0 {
		t.Fatalf("100 bytes of an announced %d-byte block: %v, buffers asked for %v; want io.ErrUnexpectedEOF and none", maxBlock, err, asked)
	}
	for _, n := range []int{0, 7, readChunk, readChunk + 1, maxBlock} {
		asked = nil
		block := make([]byte, n)
		for i := range block {
			block[i] = byte(i * 13)
		}
		got, err := readBlock(bytes.NewReader(block), n, scratch, alloc)
		if err != nil || !bytes.Equal(got, block) || len(asked) != 1 || asked[0] != n {
			t.Fatalf("a block of %d bytes: %d bytes read, %v, buffers asked for %v", n, len(got), err, asked)
		}
	}
}

// TestCallNotSent: a Call whose request cannot have reached the peer (no
// stream to it, or over the limit) says so with ErrNotSent; one that was
// sent and not answered does not, since the peer may have acted on it.
func TestCallNotSent(t *testing.T) {
	a, b := newTestHost(t, Key{}), newTestHost(t, Key{})
	release := make(chan struct{})
	defer close(release)
	ServeGuest(a, "/test/hang/1", func(ctx context.Context, _ peer.ID, _ []byte) ([]byte, error) {
		select { // took the request, answers late
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	b.Peerstore().AddAddrs(a.ID(), a.Addrs(), time.Hour)
	stranger := newTestHost(t, Key{})
	for _, tc := range []struct {
		name    string
		to      peer.ID
		req     []byte
		notSent bool
	}{
		{"no address for the peer", stranger.ID(), []byte("x"), true},
		{"over the limit", a.ID(), make([]byte, maxMessage+1), true},
		{"sent, no answer in time", a.ID(), []byte("x"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := Call(ctx, b, tc.to, "/test/hang/1", tc.req)
			if err == nil || errors.Is(err, ErrNotSent) != tc.notSent {
				t.Fatalf("Call: %v; want an error that is ErrNotSent: %v", err, tc.notSent)
			}
		})
	}
}
