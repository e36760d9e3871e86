package mesh

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// memSink is a PushSink that keeps what it got.
type memSink struct {
	mu      sync.Mutex
	blocks  map[cid.Cid][]byte
	root    cid.Cid
	aborted bool
	doneErr error
}

func (s *memSink) Put(_ context.Context, c cid.Cid, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocks[c] = append([]byte(nil), data...) // data is reused after Put
	return nil
}

func (s *memSink) Done(_ context.Context, root cid.Cid) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.root = root
	return s.doneErr
}

func (s *memSink) Abort() { s.mu.Lock(); s.aborted = true; s.mu.Unlock() }

func rawBlock(t *testing.T, data string) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPush(t *testing.T) {
	recv, send := newTestHost(t, Key{}), newTestHost(t, Key{})
	sinks := make(chan *memSink, 4)
	var doneErr error
	ServePush(recv, 5*time.Second, func(peer.ID) (PushSink, error) {
		s := &memSink{blocks: map[cid.Cid][]byte{}, doneErr: doneErr}
		sinks <- s
		return s, nil
	})
	send.Peerstore().AddAddrs(recv.ID(), recv.Addrs(), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := rawBlock(t, "a"), rawBlock(t, "b")

	tests := []struct {
		name    string
		send    map[cid.Cid]string
		doneErr error
		wantErr bool
		aborted bool
	}{
		{name: "whole", send: map[cid.Cid]string{a: "a", b: "b"}},
		{name: "corrupt block", send: map[cid.Cid]string{a: "a", b: "not b"}, wantErr: true, aborted: true},
		{name: "receiver finds it incomplete", send: map[cid.Cid]string{a: "a"}, doneErr: errors.New("not complete"), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doneErr = tc.doneErr
			ps, err := OpenPush(ctx, send, recv.ID())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []cid.Cid{a, b} {
				if d, ok := tc.send[c]; ok {
					if err := ps.Send(c, []byte(d)); err != nil {
						t.Fatal(err)
					}
				}
			}
			err = ps.Finish(ctx, a)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Finish: %v, want error %v", err, tc.wantErr)
			}
			s := <-sinks
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.aborted != tc.aborted {
				t.Fatalf("aborted %v, want %v", s.aborted, tc.aborted)
			}
			if tc.aborted {
				return
			}
			if !s.root.Equals(a) || len(s.blocks) != len(tc.send) {
				t.Fatalf("sink got root %s and %d blocks, want %s and %d", s.root, len(s.blocks), a, len(tc.send))
			}
			for c, d := range tc.send {
				if string(s.blocks[c]) != d {
					t.Fatalf("block %s: %q, want %q", c, s.blocks[c], d)
				}
			}
		})
	}
}
