package mcpserver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/artmesh/artmesh/api/client"
)

// wireReply is an answer as it is on the wire.
type wireReply struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int64  `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Method string `json:"method"` // set on the server's own notifications
}

// pipeSession runs a server for c over StdioTransport on pipes, as
// `artmesh mcp` runs on its stdin and stdout.
type pipeSession struct {
	in      *io.PipeWriter
	replies chan wireReply // each line the server writes, in order
	done    chan error     // Run's result
}

func startPipe(t *testing.T, c *client.Client, maxMessage int) *pipeSession {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &pipeSession{in: inW, replies: make(chan wireReply, 1000), done: make(chan error, 1)}
	s := New(c, Options{Version: "test"})
	go func() {
		p.done <- s.Run(t.Context(), &StdioTransport{In: inR, Out: outW, MaxMessageBytes: maxMessage})
		outW.Close()
	}()
	go func() {
		defer close(p.replies)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var r wireReply
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				r.Method = "unparsable: " + sc.Text()
			}
			p.replies <- r
		}
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
	})
	return p
}

// send writes lines to the server's stdin.
func (p *pipeSession) send(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(p.in, l+"\n"); err != nil {
			t.Fatalf("writing %q: %v", l, err)
		}
	}
}

// next returns the next answer (skipping the server's notifications),
// failing after a deadline.
func (p *pipeSession) next(t *testing.T) wireReply {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r, ok := <-p.replies:
			if !ok {
				t.Fatal("the server's output ended")
			}
			if r.Method == "" {
				return r
			}
		case <-deadline:
			t.Fatal("no answer within 30s")
		}
	}
}

// initialize are the lines a client starts a 2025-11-25 session with.
var initialize = []string{
	`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"pipe","version":"1"}}}`,
	`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
}

// TestStdioAnswersBeforeEOF: requests piped in, with stdin closed right
// after them (printf '...' | artmesh mcp), are all answered before the
// server ends, however long they take; the SDK's transport ended the
// session at EOF and dropped them.
func TestStdioAnswersBeforeEOF(t *testing.T) {
	c := startNode(t)
	for _, n := range []int{1, 3, 16} {
		t.Run(fmt.Sprintf("%d requests", n), func(t *testing.T) {
			p := startPipe(t, c, 0)
			lines := append([]string{}, initialize...)
			for i := range n {
				// Alternately a write (a round trip to the node and its
				// disk) and a listing.
				if i%2 == 0 {
					lines = append(lines, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"create","arguments":{"name":"n%d.txt","data":"hello %d"}}}`, i, i, i))
				} else {
					lines = append(lines, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`, i))
				}
			}
			p.send(t, lines...)
			p.in.Close() // EOF at once, as printf's end does
			select {
			case err := <-p.done:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the server did not end within 30s of EOF")
			}
			seen := map[string]bool{}
			for r := range p.replies {
				if r.Method != "" {
					continue
				}
				if r.Error != nil {
					t.Errorf("request %s: error %d %s", r.ID, r.Error.Code, r.Error.Message)
				}
				seen[string(r.ID)] = true
			}
			if !seen[`"init"`] {
				t.Errorf("initialize was not answered")
			}
			for i := range n {
				if !seen[fmt.Sprint(i)] {
					t.Errorf("request %d was not answered", i)
				}
			}
			if len(seen) != n+1 {
				t.Errorf("%d answers, want %d: %v", len(seen), n+1, seen)
			}
		})
	}
}

// TestStdioEOFWithSDKClient: an SDK client whose requests are all written
// when the server's stdin closes gets every answer.
func TestStdioEOFWithSDKClient(t *testing.T) {
	const n = 6
	c := startNode(t)
	ctx := t.Context()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := New(c, Options{Version: "test"})
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, &StdioTransport{In: inR, Out: outW})
		outW.Close()
	}()
	w := &countingWriter{w: inW, calls: make(chan struct{}, n)}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).
		Connect(ctx, &mcp.IOTransport{Reader: outR, Writer: w}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	results := make(chan error, n)
	for i := range n {
		go func() {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "create", Arguments: map[string]any{"name": fmt.Sprint("f", i), "data": "x"}})
			if err == nil && res.IsError {
				err = fmt.Errorf("tool error %v", res.Content)
			}
			results <- err
		}()
	}
	for range n {
		<-w.calls // the request is on the pipe
	}
	inW.Close()
	for range n {
		select {
		case err := <-results:
			if err != nil {
				t.Errorf("a call sent before EOF: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a call sent before EOF was not answered within 30s")
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// countingWriter passes writes on and signals each tools/call written.
type countingWriter struct {
	mu    sync.Mutex
	w     io.WriteCloser
	calls chan struct{}
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.w.Write(p)
	if err == nil && strings.Contains(string(p), `"method":"tools/call"`) {
		c.calls <- struct{}{}
	}
	return n, err
}

func (c *countingWriter) Close() error { return c.w.Close() }

// TestStdioMalformedLine: a line that is not a JSON-RPC message gets an
// error answer with a standard code, and the session goes on: the next
// request is answered.
func TestStdioMalformedLine(t *testing.T) {
	c := startNode(t)
	for _, tc := range []struct {
		name   string
		line   string
		code   int64
		wantID string
	}{
		{"not JSON", `{"jsonrpc":"2.0","id":1,"method":`, -32700, "null"},
		{"plain text", `hello`, -32700, "null"},
		{"JSON but not an object", `"hello"`, -32600, "null"},
		{"wrong version, id kept", `{"jsonrpc":"1.0","id":7,"method":"ping"}`, -32600, "7"},
		{"a batch", `[{"jsonrpc":"2.0","id":5,"method":"ping"}]`, -32600, "null"},
		{"too long", `{"jsonrpc":"2.0","id":9,"method":"ping","params":{"pad":"` + strings.Repeat("x", 2000) + `"}}`, -32600, "null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPipe(t, c, 1024)
			p.send(t, initialize...)
			if r := p.next(t); string(r.ID) != `"init"` || r.Error != nil {
				t.Fatalf("initialize: %+v", r)
			}
			p.send(t, tc.line, "", `{"jsonrpc":"2.0","id":"after","method":"tools/list"}`)
			r := p.next(t)
			if r.Error == nil || r.Error.Code != tc.code || string(r.ID) != tc.wantID {
				t.Fatalf("answer %s %+v, want code %d and id %s", r.ID, r.Error, tc.code, tc.wantID)
			}
			r = p.next(t)
			if string(r.ID) != `"after"` || r.Error != nil || !strings.Contains(string(r.Result), `"watch"`) {
				t.Fatalf("the request after: id %s, error %+v, result %.100s", r.ID, r.Error, r.Result)
			}
		})
	}
}
