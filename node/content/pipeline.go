package content

import (
	"context"
	"errors"
	chunker "github.com/ipfs/boxo/chunker"
	"io"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/artmesh/artmesh/node/blockstore"
)

// An import runs as a pipeline of three stages so that it uses both cores:
// a splitter goroutine reads the source and cuts it into chunks (the
// rolling hash of content-defined chunking is as costly as SHA-256), the
// calling goroutine hashes the chunks and builds the DAG, and a writer
// goroutine appends the blocks to the store. Each stage hands work to the
// next through a bounded channel, so memory stays a few MiB whatever the
// size of the content.

// Aborter is implemented by sources whose blocked Read can be cut short,
// such as an HTTP request body (by moving its read deadline). An import
// that gives up calls Abort so that its splitter goroutine ends at once.
type Aborter interface {
	Abort()
}

const (
	chunkQueue = 8
	writeQueue = 16
)

// splitAhead runs a chunker.Splitter in a goroutine, a few chunks ahead of
// the consumer.
type splitAhead struct {
	inner chunker.Splitter
	src   io.Reader
	out   chan []byte
	done  chan struct{}
	ended chan struct{} // closed when the goroutine returns
	wg    sync.WaitGroup
	err   error // set by the goroutine before it closes out
	stop  sync.Once
}

func newSplitAhead(inner chunker.Splitter, src io.Reader) *splitAhead {
	s := &splitAhead{
		inner: inner,
		src:   src,
		out:   make(chan []byte, chunkQueue),
		done:  make(chan struct{}),
		ended: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.run()
	return s
}

func (s *splitAhead) run() {
	defer s.wg.Done()
	// ended closes before out, so that a consumer that saw out closed
	// never takes the goroutine for a blocked one and aborts the source.
	defer close(s.out)
	defer close(s.ended)
	for {
		chunk, err := s.inner.NextBytes()
		if len(chunk) > 0 {
			select {
			case s.out <- chunk:
			case <-s.done:
				return
			}
		}
		if err != nil {
			s.err = err
			return
		}
	}
}

// NextBytes returns the next chunk, or the splitter's error (io.EOF at the
// end).
func (s *splitAhead) NextBytes() ([]byte, error) {
	chunk, ok := <-s.out
	if !ok {
		return nil, s.err
	}
	return chunk, nil
}

// Reader returns the source.
func (s *splitAhead) Reader() io.Reader { return s.src }

// Close stops the goroutine and waits for it. When the import gave up
// (abandon), a Read blocked in the source is cut short if the source is an
// Aborter; otherwise Close waits for it. A finished import never aborts:
// aborting an HTTP body moves the connection's read deadline, which would
// end the request.
func (s *splitAhead) Close(abandon bool) {
	s.stop.Do(func() {
		close(s.done)
		if !abandon {
			return
		}
		select {
		case <-s.ended:
			return
		default:
		}
		if a, ok := s.src.(Aborter); ok {
			a.Abort()
		}
	})
	s.wg.Wait()
}

func noRelease() {}

// asyncWriter is the DAGService an import builds into: Add queues the block
// for a writer goroutine that puts it into the import's session.
type asyncWriter struct {
	sess  *blockstore.Session
	read  ipld.DAGService
	queue chan blocks.Block
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
}

func newAsyncWriter(ctx context.Context, sess *blockstore.Session, read ipld.DAGService, pool *chunkPool, tee Tee) *asyncWriter {
	w := &asyncWriter{sess: sess, read: read, queue: make(chan blocks.Block, writeQueue)}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for b := range w.queue {
			if w.failed() != nil {
				continue // drain, so that Add never blocks forever
			}
			if err := sess.Put(ctx, b); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				continue
			}
			// A raw leaf's bytes are a chunk buffer: the store has copied
			// them, and once the tee (if any) is done with them nothing
			// else holds the leaf, so the buffer can be used for the next
			// chunk.
			pooled := pool != nil && b.Cid().Prefix().Codec == cid.Raw
			if tee == nil {
				if pooled {
					pool.put(b.RawData())
				}
				continue
			}
			release := noRelease
			if pooled {
				raw := b.RawData()
				release = func() { pool.put(raw) }
			}
			if err := tee(b, release); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *asyncWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Flush waits for every queued block to be written and stops the writer.
// Only the import's goroutine calls Add and Flush, so Flush never races an
// Add.
func (w *asyncWriter) Flush() error {
	close(w.queue)
	w.wg.Wait()
	return w.failed()
}

func (w *asyncWriter) Add(_ context.Context, n ipld.Node) error {
	if err := w.failed(); err != nil {
		return err
	}
	w.queue <- n
	return nil
}

func (w *asyncWriter) AddMany(ctx context.Context, ns []ipld.Node) error {
	for _, n := range ns {
		if err := w.Add(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (w *asyncWriter) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	return w.read.Get(ctx, c)
}

func (w *asyncWriter) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	return w.read.GetMany(ctx, cs)
}

func (w *asyncWriter) Remove(context.Context, cid.Cid) error {
	return errors.New("node: an import does not remove blocks")
}

func (w *asyncWriter) RemoveMany(context.Context, []cid.Cid) error {
	return errors.New("node: an import does not remove blocks")
}
