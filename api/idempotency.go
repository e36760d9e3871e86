package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node"
)

// Idempotency keys on the API. A write sent with Idempotency-Key takes
// effect at most once however often it is sent, to whichever node: its
// first catalog write carries the key and the request's digest into the
// log (see the catalog's idempotency.go). A request whose key this node
// already holds is answered before anything else is done, as the route's
// replay says; a request whose key is not yet applied here runs, and its
// catalog write answers with the first result if the leader holds the
// key. Either way a replayed answer carries Idempotent-Replayed: true.

// IdempotencyKeyHeader is the header that carries a write's key.
const IdempotencyKeyHeader = "Idempotency-Key"

// ReplayedHeader marks an answer that repeats an earlier request's.
const ReplayedHeader = "Idempotent-Replayed"

// replayMode is how a write route answers a request whose key the catalog
// holds already.
type replayMode int

const (
	// notWrite: the route does not write; a key is ignored.
	notWrite replayMode = iota
	// replayRun runs the route again: its catalog write answers with
	// the first result (a PUT that sets, an upload whose URL is minted
	// afresh).
	replayRun
	// replayResult answers the route's status with the first write's
	// result as the body (none for 204).
	replayResult
	// replaySecret answers Conflict: the first answer carried a secret
	// (an API key, a token) that is kept nowhere.
	replaySecret
)

// replay is a write route's replay.
type replay struct {
	mode   replayMode
	status int
	what   string // for replaySecret: what the first request did
}

// result is the replay of a route that answers status with its catalog
// write's result.
func result(status int) replay { return replay{mode: replayResult, status: status} }

// rerun is the replay of a route that runs again.
func rerun() replay { return replay{mode: replayRun} }

// secret is the replay of a route whose first answer carried a secret.
func secret(what string) replay { return replay{mode: replaySecret, what: what} }

func (p replay) isWrite() bool  { return p.mode != notWrite }
func (p replay) bodyless() bool { return p.status == http.StatusNoContent }

// replayed marks an answer as a replay.
func replayed(w http.ResponseWriter) { w.Header().Set(ReplayedHeader, "true") }

// digestHeaders are the headers that are part of a request's identity,
// beside its method, path, query and body.
var digestHeaders = [...]string{"Content-Type", MetadataHeader, "Content-Range", "Content-Digest",
	"X-Amz-Checksum-Sha256", "If-Match", "If-None-Match"}

// requestDigest hashes a request as its body is read: the method, path,
// query and digestHeaders first, then every byte of the body that the
// route reads, then (at sum) the rest of it.
type requestDigest struct {
	mu   sync.Mutex
	h    hash.Hash
	body io.ReadCloser
	sum  *[32]byte
}

func newRequestDigest(r *http.Request) *requestDigest {
	d := &requestDigest{h: sha256.New(), body: r.Body}
	field := func(s string) {
		_, _ = d.h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		_, _ = io.WriteString(d.h, s)
	}
	field(r.Method)
	field(r.URL.Path)
	field(r.URL.RawQuery)
	for _, name := range digestHeaders {
		field(r.Header.Get(name))
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = d
	}
	return d
}

// Read reads the body, hashing it.
func (d *requestDigest) Read(p []byte) (int, error) {
	n, err := d.body.Read(p)
	d.mu.Lock()
	_, _ = d.h.Write(p[:n])
	d.mu.Unlock()
	return n, err
}

// Close closes the body.
func (d *requestDigest) Close() error { return d.body.Close() }

// maxDigestDrain bounds the body that sum reads on to the end beyond
// what the route read: a route that stopped early refused the request
// or read all it takes.
const maxDigestDrain = 1 << 20

// Sum returns the digest, reading the rest of the body (up to
// maxDigestDrain bytes) first. Later calls return the same digest.
func (d *requestDigest) Sum() ([32]byte, error) {
	d.mu.Lock()
	done := d.sum != nil
	d.mu.Unlock()
	if !done && d.body != nil && d.body != http.NoBody {
		n, err := io.Copy(io.Discard, io.LimitReader(d, maxDigestDrain+1))
		if err != nil && !errors.Is(err, io.EOF) {
			return [32]byte{}, artmesh.E(artmesh.Invalid, "read the request body: "+err.Error())
		}
		if n > maxDigestDrain {
			return [32]byte{}, artmesh.E(artmesh.TooLarge, "the request body is longer than this route reads")
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sum == nil {
		var s [32]byte
		d.h.Sum(s[:0])
		d.sum = &s
	}
	return *d.sum, nil
}

// drainAll reads the whole body into the digest, however long: a replay
// compares the digest of the whole request.
func (d *requestDigest) drainAll() ([32]byte, error) {
	if d.body != nil && d.body != http.NoBody {
		if _, err := io.Copy(io.Discard, d); err != nil {
			return [32]byte{}, artmesh.E(artmesh.Invalid, "read the request body: "+err.Error())
		}
	}
	return d.Sum()
}

// maxRerunBody bounds the body a route that runs again is sent (they
// take JSON of at most maxJSONBody).
const maxRerunBody = maxJSONBody

// keyed serves a write that came with an Idempotency-Key.
func (s *Server) keyed(w http.ResponseWriter, r *http.Request, caller artmesh.Agent, rp replay, h handlerFunc) error {
	key := r.Header.Get(IdempotencyKeyHeader)
	if err := node.ValidIdempotencyKey(key); err != nil {
		return err
	}
	d := newRequestDigest(r)
	rec, found, err := s.n.IdempotencyRecord(caller.ID, key)
	if err != nil {
		return err
	}
	if found {
		var kept *bytes.Buffer
		if rp.mode == replayRun && r.Body != nil && r.Body != http.NoBody {
			// The route runs again, on the body read here.
			kept = &bytes.Buffer{}
			if _, err := io.Copy(kept, io.LimitReader(d, maxRerunBody+1)); err != nil {
				return artmesh.E(artmesh.Invalid, "read the request body: "+err.Error())
			}
			if kept.Len() > maxRerunBody {
				return artmesh.E(artmesh.TooLarge, "the request body is larger than this route allows")
			}
		}
		sum, err := d.drainAll()
		if err != nil {
			return err
		}
		if kept != nil {
			r.Body = io.NopCloser(kept)
		}
		if sum != rec.Digest {
			return artmesh.E(artmesh.IdempotencyKeyReused, fmt.Sprintf(
				"the Idempotency-Key %q came with another request at %s; a key stands for one request: use a new key for a new request",
				key, rec.At.UTC().Format(time.RFC3339)))
		}
		switch rp.mode {
		case replayResult:
			replayed(w)
			if rp.bodyless() || len(rec.Result) == 0 {
				w.WriteHeader(rp.status)
				return nil
			}
			var first struct {
				CID string `json:"cid"`
			}
			if json.Unmarshal(rec.Result, &first) == nil && first.CID != "" {
				w.Header().Set("ETag", `"`+first.CID+`"`) // as the first answer had it
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rp.status)
			_, _ = w.Write(append(rec.Result, '\n'))
			return nil
		case replaySecret:
			return artmesh.E(artmesh.Conflict, fmt.Sprintf(
				"an earlier request with Idempotency-Key %q already %s at %s; the secret it answered with is shown only once and kept nowhere",
				key, rp.what, rec.At.UTC().Format(time.RFC3339)))
		}
	}
	ctx, k := node.WithIdempotency(r.Context(), caller.ID, key, d.Sum)
	return h(&replayWriter{ResponseWriter: w, k: k}, r.WithContext(ctx), caller)
}

// replayWriter marks the answer of a request whose catalog write was a
// replay.
type replayWriter struct {
	http.ResponseWriter
	k      *node.Idempotency
	marked bool
}

func (rw *replayWriter) mark() {
	if !rw.marked {
		rw.marked = true
		if rw.k.Replayed() {
			replayed(rw.ResponseWriter)
		}
	}
}

func (rw *replayWriter) WriteHeader(code int) {
	rw.mark()
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *replayWriter) Write(p []byte) (int, error) {
	rw.mark()
	return rw.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (rw *replayWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }
