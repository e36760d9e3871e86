// Package client is the typed Go client of an artmesh node's HTTP API, the
// contract of API.md. The artmesh command uses it for every call it makes
// to its node, in the manner of tailscale's client/local.
//
// Every method sends one request, streams request and response bodies
// (nothing of an upload or download is held in memory), and turns an error
// response into an *Error whose kind errors.Is can test:
//
//	a, err := c.Artifact(ctx, id)
//	if errors.Is(err, artmesh.NotFound) { ... }
//
// A node that cannot be reached at all yields an error that matches
// ErrUnreachable (and artmesh.Unavailable).
//
// The JSON shapes are package api/apitype's, which the server speaks too;
// the client's names for the ones its callers see (Pin, Upload, Policy ...)
// are aliases of those types.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/artmesh/artmesh"
)

// DefaultBaseURL is where a node's API listens unless configured otherwise.
const DefaultBaseURL = "http://127.0.0.1:7480"

// MetadataHeader is the request header that carries an artifact's metadata
// as a JSON object on create and update.
const MetadataHeader = "Artifact-Metadata"

// defaultUserAgent is sent unless WithUserAgent says otherwise.
const defaultUserAgent = "artmesh-go-client/1"

// maxErrorBody is how much of an error response is read for its message.
const maxErrorBody = 64 << 10

// Client calls one node's API as one agent. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	key     string
	hc      *http.Client
	ua      string
	retries int                                        // attempts after the first; see WithRetries
	noKeys  bool                                       // WithoutIdempotencyKeys
	sleep   func(context.Context, time.Duration) error // waits between attempts; a test's clock
}

// Option configures a Client in New.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc instead of a
// plain http.Client without timeouts (content streams may run long; use a
// context to bound a call).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithRetries sets how many times a call is sent again after a failure
// that may pass (DefaultRetries unless set; 0: never).
func WithRetries(n int) Option {
	return func(c *Client) { c.retries = max(n, 0) }
}

// WithoutIdempotencyKeys makes the client send writes without an
// Idempotency-Key unless the caller gives one (WithIdempotencyKey); such
// a write is never sent again after it may have reached the node. For
// measuring what keys cost; callers have no other reason to.
func WithoutIdempotencyKeys() Option {
	return func(c *Client) { c.noKeys = true }
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.ua = ua }
}

// New returns a client of the node whose API is at baseURL (such as
// "http://127.0.0.1:7480"; a bare host:port means http), authenticating
// with apiKey. An empty baseURL means DefaultBaseURL. A malformed baseURL
// makes every call fail with an Invalid error.
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{key: apiKey, hc: &http.Client{}, ua: defaultUserAgent, retries: DefaultRetries, sleep: sleepCtx}
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		u.RawQuery, u.Fragment = "", ""
		c.base = u
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL returns the API base URL the client talks to, without a trailing
// slash, or "" when the one given to New was malformed.
func (c *Client) BaseURL() string {
	if c.base == nil {
		return ""
	}
	return c.base.String()
}

// ErrUnreachable matches (with errors.Is) the error of a call whose node
// could not be reached at all: nothing listens at the base URL, or the
// host is unknown. Such an error also matches artmesh.Unavailable.
var ErrUnreachable = artmesh.E(artmesh.Unavailable, "cannot reach the artmesh node")

// request describes one API call.
type request struct {
	op     string      // "client.Artifact", for errors
	method string      // HTTP method
	path   string      // absolute API path, already escaped
	query  url.Values  // nil for none
	header http.Header // extra request headers
	body   io.Reader   // nil for none
	size   int64       // body length; 0 or -1 when not known
	noAuth bool        // send no Authorization header
	rawURL string      // a URL the node handed out, called instead of base+path; absolute, or a path with query on the base URL
}

// send performs r and returns the response when its status is 2xx or 304;
// any other status is turned into an error and the body closed. A call
// that failed in a way that may pass (see retryable) is sent again, up to
// c.retries times, with backoff, when that is safe: a read, or a write
// with an Idempotency-Key (every write gets one, see keyFor), whose body
// can be sent again.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	write := r.method != http.MethodGet && r.method != http.MethodHead
	keyed := !write
	if write {
		key := keyFor(ctx)
		if key == "" && !c.noKeys {
			key = newKey()
		}
		h := r.header.Clone()
		if h == nil {
			h = http.Header{}
		}
		if key != "" {
			h.Set(IdempotencyKeyHeader, key)
			keyed = true
		}
		if sum, ok := ctx.Value(digestCtx{}).([32]byte); ok {
			h.Set("Content-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":")
		}
		if c := conditionOf(ctx); c.ifMatch != "" {
			h.Set("If-Match", c.ifMatch)
		} else if c.ifNoneMatch {
			h.Set("If-None-Match", "*")
		}
		r.header = h
	}
	rewind, canRetry := rewinder(r.body)
	canRetry = canRetry && keyed
	for attempt := 0; ; attempt++ {
		resp, err := c.sendOnce(ctx, r)
		if err == nil || attempt >= c.retries || !canRetry || !retryable(err) || ctx.Err() != nil {
			return resp, err
		}
		if c.sleep(ctx, backoff(attempt, err)) != nil {
			return nil, err
		}
		if err := rewind(); err != nil {
			return nil, fmt.Errorf("%s: rewind the body to send it again: %w", r.op, err)
		}
	}
}

// sendOnce performs r once.
func (c *Client) sendOnce(ctx context.Context, r request) (*http.Response, error) {
	target, err := c.target(r)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if r.body != nil {
		// Hide Close from the transport: the caller owns the reader.
		body = struct{ io.Reader }{r.body}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, artmesh.E(artmesh.Op(r.op), artmesh.Invalid, err)
	}
	if r.body != nil {
		// A known length goes out as Content-Length; anything else
		// (0 or -1) is sent chunked, which also carries an empty body.
		req.ContentLength = r.size
		if r.size <= 0 {
			req.ContentLength = -1
		}
	}
	for k, vs := range r.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if !r.noAuth && c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if isUnreachable(err) {
			return nil, fmt.Errorf("%s: %w at %s: %w", r.op, ErrUnreachable, c.hostOf(target), err)
		}
		return nil, fmt.Errorf("%s: %w", r.op, err)
	}
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotModified {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, errorFromResponse(r.op, resp)
}

// target returns the URL a request goes to.
func (c *Client) target(r request) (string, error) {
	if strings.Contains(r.rawURL, "://") {
		return r.rawURL, nil
	}
	if r.rawURL != "" {
		// A URL the node gave without scheme and host: a path on it.
		r.path, r.query = r.rawURL, nil
	}
	if c.base == nil {
		return "", artmesh.E(artmesh.Op(r.op), artmesh.Invalid, "the API base URL is malformed: give it as http://HOST:PORT")
	}
	target := c.base.String() + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	return target, nil
}

// hostOf returns the scheme and host of a URL, for messages.
func (c *Client) hostOf(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	return u.Scheme + "://" + u.Host
}

// isUnreachable reports whether err means that no connection could be made.
func isUnreachable(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// call performs r with in (when not nil) as the JSON body and decodes a
// JSON answer into out (when not nil).
func (c *Client) call(ctx context.Context, r request, in, out any) error {
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return artmesh.E(artmesh.Op(r.op), artmesh.Invalid, "encoding the request", err)
		}
		r.body, r.size = bytes.NewReader(data), int64(len(data))
		if r.header == nil {
			r.header = http.Header{}
		}
		r.header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: decoding the %s answer: %w", r.op, resp.Status, err)
	}
	return nil
}

// escape escapes one path segment.
func escape(s string) string { return url.PathEscape(s) }

// metadataHeader encodes m for the Artifact-Metadata header: compact JSON
// with UTF-8 kept as it is (header values may carry it as opaque bytes, and
// Go servers read it back unchanged) and without HTML escaping, so that the
// node stores the values' text as the caller wrote it.
func metadataHeader(m artmesh.Metadata) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// DefaultRetries is how many times a client sends a call again after a
// failure that may pass.
const DefaultRetries = 4

// IdempotencyKeyHeader is the header that carries a write's idempotency
// key.
const IdempotencyKeyHeader = "Idempotency-Key"

type keyCtx struct{}

// WithIdempotencyKey returns ctx carrying key as the Idempotency-Key of the
// write made under it (one write: a key stands for one request). Without
// one, the client makes a fresh key for each call, which its own retries
// reuse.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyCtx{}, key)
}

func keyFor(ctx context.Context) string {
	k, _ := ctx.Value(keyCtx{}).(string)
	return k
}

// newKey returns a fresh random key.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rewinder returns a function that puts body back at its start, and
// whether there is one: a body that is not an io.Seeker cannot be sent
// twice.
func rewinder(body io.Reader) (func() error, bool) {
	if body == nil {
		return func() error { return nil }, true
	}
	s, ok := body.(io.Seeker)
	if !ok {
		return nil, false
	}
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, false
	}
	return func() error {
		_, err := s.Seek(start, io.SeekStart)
		return err
	}, true
}

// retryable reports whether a call that failed with err may pass if sent
// again: the node could not be reached or the connection broke, or it
// answered unavailable or outcome_unknown. With its key, a write sent
// again takes effect at most once.
func retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		k := e.Kind()
		return k == artmesh.Unavailable || k == artmesh.OutcomeUnknown
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var op *net.OpError
	return errors.Is(err, ErrUnreachable) || errors.As(err, &op) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// backoff is the wait before attempt+1: the answer's Retry-After when it
// has one (at most maxBackoff), else 100 ms doubling per attempt, at most
// maxBackoff.
func backoff(attempt int, err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return min(e.RetryAfter, maxBackoff)
	}
	return min(100*time.Millisecond<<attempt, maxBackoff)
}

// maxBackoff caps one wait between attempts.
const maxBackoff = 2 * time.Second

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type conditionCtx struct{}

type condition struct {
	ifMatch     string
	ifNoneMatch bool
}

func conditionOf(ctx context.Context) condition {
	c, _ := ctx.Value(conditionCtx{}).(condition)
	return c
}

// WithIfMatch returns ctx under which a write (an update, a delete, a
// version's delete) is made only if the artifact's current version has
// this ETag (its CID, quoted or not; "*" for any): else it fails with
// artmesh.PreconditionFailed and nothing is done.
func WithIfMatch(ctx context.Context, etag string) context.Context {
	if etag != "*" && !strings.HasPrefix(etag, `"`) && !strings.HasPrefix(etag, "W/") {
		etag = `"` + etag + `"`
	}
	return context.WithValue(ctx, conditionCtx{}, condition{ifMatch: etag})
}

// WithIfNoneMatch returns ctx under which a create is made only if the
// caller owns no artifact of that name yet (If-None-Match: *): else it
// fails with artmesh.PreconditionFailed.
func WithIfNoneMatch(ctx context.Context) context.Context {
	return context.WithValue(ctx, conditionCtx{}, condition{ifNoneMatch: true})
}

type digestCtx struct{}

// WithContentSHA256 returns ctx under which a write declares the SHA-256
// of the content it sends (Content-Digest): the node checks the content
// against it as it reads it, refuses other content with
// artmesh.ChecksumMismatch recording nothing, and records the digest on
// the version.
func WithContentSHA256(ctx context.Context, sum [32]byte) context.Context {
	return context.WithValue(ctx, digestCtx{}, sum)
}
