package mcpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// DefaultMaxMessageBytes is the longest line StdioTransport reads as one
// message unless told otherwise, 16 MiB, as the SDK's own stdio transport.
const DefaultMaxMessageBytes = 16 << 20

// methodListen is the SEP-2575 request that stays open for as long as the
// client wants notifications: it is answered when it is cancelled, never
// of itself.
const methodListen = "subscriptions/listen"

// StdioTransport is the transport `artmesh mcp` serves over: one JSON-RPC
// message per line on In, the answers on Out, as the SDK's
// mcp.StdioTransport, with two differences that a client piping requests
// in relies on:
//
//   - When In ends, every request read before the end is still answered
//     before the session ends (the SDK's transport ends the session at
//     once, and the answers in flight are lost). Only subscriptions/listen
//     is not waited for: it is answered when cancelled, and the end of the
//     session ends it.
//   - A line that is not JSON is answered with a -32700 parse error, and
//     one that is JSON but not a JSON-RPC message with -32600 invalid
//     request, both with id null unless the line's id could be read, and
//     the session goes on (the SDK's transport ends it). A batch (a JSON
//     array) is answered with -32600 too: MCP dropped batches in its
//     2025-06-18 revision.
//
// As a last resort it also gives an error answer whose code is 0 (an
// error of the SDK's own that carries no JSON-RPC code) the code -32603,
// internal error, so that no answer carries a code outside JSON-RPC's.
type StdioTransport struct {
	// In carries the client's messages; when it is an io.Closer, the
	// connection's Close closes it, which ends a read in progress.
	In io.Reader
	// Out receives the answers and the server's own messages; it is never
	// closed.
	Out io.Writer
	// MaxMessageBytes bounds one line; a longer one is answered with
	// -32600 and skipped. 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Logger receives what the transport drops or mends; nil discards it.
	Logger *slog.Logger
}

var _ mcp.Transport = (*StdioTransport)(nil)

// Connect starts reading In and returns the connection; it is called once,
// by the server's Connect or Run.
func (t *StdioTransport) Connect(context.Context) (mcp.Connection, error) {
	limit := t.MaxMessageBytes
	if limit <= 0 {
		limit = DefaultMaxMessageBytes
	}
	log := t.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &stdioConn{
		limit:   limit,
		in:      t.In,
		out:     t.Out,
		log:     log,
		lines:   make(chan line),
		closed:  make(chan struct{}),
		changed: make(chan struct{}),
		pending: map[jsonrpc.ID]string{},
	}
	// The reader is owned by the connection: it stops at the end of In, at
	// a read error, or when Close closes In (a reader that is not an
	// io.Closer, like the SDK's own stdin reader, may stay blocked in Read
	// until the process ends; it sends nothing once closed).
	go c.readLines(bufio.NewReaderSize(t.In, 64<<10))
	return c, nil
}

// line is one line of In, or the error that ended In.
type line struct {
	data    []byte
	tooLong bool
	err     error
}

// stdioConn is StdioTransport's connection.
type stdioConn struct {
	limit int // the longest line read
	in    io.Reader
	out   io.Writer
	log   *slog.Logger

	lines chan line // from readLines

	closeOnce sync.Once
	closed    chan struct{}

	writeMu sync.Mutex // one message at a time on out

	mu sync.Mutex
	// pending holds the requests read and not yet answered, with their
	// method.
	pending map[jsonrpc.ID]string
	// writeErr is the first write that failed: answers can no longer be
	// sent, so there is nothing to wait for.
	writeErr error
	// changed is closed, and replaced, when pending shrinks or writeErr is
	// set.
	changed chan struct{}
}

// readLines sends each line of r on c.lines, until r ends or c closes.
func (c *stdioConn) readLines(r *bufio.Reader) {
	for {
		l := readLine(r, c.limit)
		select {
		case c.lines <- l:
		case <-c.closed:
			return
		}
		if l.err != nil {
			return
		}
	}
}

// readLine reads one line of at most limit bytes, without its end of
// line; a longer one is read to its end and returned with tooLong set. A
// last line with no end of line is returned, and the end of r after it.
func readLine(r *bufio.Reader, limit int) line {
	var buf []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > limit+1 { // +1: the '\n'
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil && (len(buf) > 0 || tooLong):
			// The last line had no end of line; the error comes next.
			return line{data: bytes.TrimRight(buf, "\r\n"), tooLong: tooLong}
		case err != nil:
			return line{err: err}
		}
		return line{data: bytes.TrimRight(buf, "\r\n"), tooLong: tooLong}
	}
}

// Read returns the next message. Lines that are not messages are answered
// here and skipped. At the end of In it returns io.EOF only once every
// request it returned has been answered (or answers can no longer be
// written, or the connection is closed).
func (c *stdioConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	for {
		var l line
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closed:
			return nil, io.EOF
		case l = <-c.lines:
		}
		if l.err != nil {
			return nil, c.drain(ctx, l.err)
		}
		if msg := c.decode(ctx, l); msg != nil {
			return msg, nil
		}
	}
}

// decode returns the message of a line, or answers a line that is not one
// and returns nil.
func (c *stdioConn) decode(ctx context.Context, l line) jsonrpc.Message {
	data := bytes.TrimSpace(l.data)
	switch {
	case l.tooLong:
		c.refuse(ctx, nil, jsonrpc.CodeInvalidRequest, fmt.Sprintf("Invalid request: a message longer than %d bytes", c.limit))
		return nil
	case len(data) == 0:
		return nil // blank lines separate nothing
	case !json.Valid(data):
		c.refuse(ctx, nil, jsonrpc.CodeParseError, "Parse error: the line is not JSON")
		return nil
	case data[0] == '[':
		c.refuse(ctx, nil, jsonrpc.CodeInvalidRequest, "Invalid request: batches (JSON arrays) are not supported; send one message per line")
		return nil
	}
	msg, err := jsonrpc.DecodeMessage(data)
	if err != nil {
		var probe struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(data, &probe)
		c.refuse(ctx, probe.ID, jsonrpc.CodeInvalidRequest, "Invalid request: "+err.Error())
		return nil
	}
	if req, ok := msg.(*jsonrpc.Request); ok && req.IsCall() {
		c.mu.Lock()
		// An id already in flight is the first request's: the SDK answers
		// the second with an error of no id, which settles nothing here.
		if _, dup := c.pending[req.ID]; !dup {
			c.pending[req.ID] = req.Method
		}
		c.mu.Unlock()
	}
	return msg
}

// refuse answers a line that is not a message. id is the line's id when
// it is a string or a number, else the answer's id is null.
func (c *stdioConn) refuse(ctx context.Context, id json.RawMessage, code int64, msg string) {
	var raw any
	if json.Unmarshal(id, &raw) != nil {
		raw = nil
	}
	switch raw.(type) {
	case string, float64:
	default:
		id = json.RawMessage("null")
	}
	data, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *jsonrpc.Error  `json:"error"`
	}{"2.0", id, &jsonrpc.Error{Code: code, Message: msg}})
	if err != nil {
		c.log.Error("mcp: encoding an error answer", "err", err)
		return
	}
	c.log.Warn("mcp: answered a line that is not a message", "code", code, "message", msg)
	if err := c.writeLine(ctx, data); err != nil {
		c.log.Warn("mcp: writing an error answer", "err", err)
	}
}

// drain waits, after In ended with err, until every request read has been
// answered, then returns err (io.EOF at the end of In).
func (c *stdioConn) drain(ctx context.Context, err error) error {
	for {
		c.mu.Lock()
		waiting := 0
		for _, method := range c.pending {
			if method != methodListen {
				waiting++
			}
		}
		broken, changed := c.writeErr, c.changed
		c.mu.Unlock()
		if waiting == 0 || broken != nil {
			return err
		}
		c.log.Debug("mcp: input ended; answering the requests in flight", "requests", waiting)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return err
		case <-changed:
		}
	}
}

// Write sends one message; an answer takes its request off the pending
// ones.
func (c *stdioConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	resp, isResp := msg.(*jsonrpc.Response)
	if isResp && resp.Error != nil {
		var we *jsonrpc.Error
		if !errors.As(resp.Error, &we) || we.Code == 0 {
			// An error without a JSON-RPC code (the SDK's own, or a
			// handler's that no middleware mapped).
			c.log.Warn("mcp: an error answer had no JSON-RPC code; sending -32603", "err", resp.Error)
			mended := *resp
			mended.Error = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: resp.Error.Error()}
			msg = &mended
		}
	}
	data, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		return fmt.Errorf("encoding a message: %w", err)
	}
	err = c.writeLine(ctx, data)
	if isResp {
		c.mu.Lock()
		delete(c.pending, resp.ID)
		c.signal()
		c.mu.Unlock()
	}
	return err
}

// writeLine writes data and an end of line to Out, and records the first
// failure.
func (c *stdioConn) writeLine(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.writeMu.Lock()
	_, err := c.out.Write(append(data, '\n'))
	c.writeMu.Unlock()
	if err != nil {
		c.mu.Lock()
		if c.writeErr == nil {
			c.writeErr = err
			c.signal()
		}
		c.mu.Unlock()
		return fmt.Errorf("writing to the client: %w", err)
	}
	return nil
}

// signal wakes drain; c.mu is held.
func (c *stdioConn) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Close stops reading and closes In when it is an io.Closer; Out stays
// open. It may be called more than once.
func (c *stdioConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		if cl, ok := c.in.(io.Closer); ok {
			err = cl.Close()
		}
	})
	return err
}

// SessionID is empty: a stdio connection is its own session.
func (c *stdioConn) SessionID() string { return "" }
