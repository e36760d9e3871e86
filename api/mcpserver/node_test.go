package mcpserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api"
	"github.com/artmesh/artmesh/api/client"
	"github.com/artmesh/artmesh/node"
	nrepo "github.com/artmesh/artmesh/node/repo"
)

// startNode runs a real node in a temporary repo, its API on a local
// port, and returns a client of it with the repo's key.
func startNode(t *testing.T) *client.Client {
	t.Helper()
	repo := t.TempDir()
	ctx := context.Background()
	if err := nrepo.Init(ctx, repo, nrepo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Open(ctx, node.Config{Repo: repo, Logger: log, GCDelay: -1, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(n, log))
	// As the daemon does: signed URLs point where the API really listens.
	n.SetAPIListenAddr(srv.Listener.Addr().String())
	t.Cleanup(func() {
		// Streams still open (a change feed a failed test left running)
		// would keep Close waiting.
		srv.CloseClientConnections()
		srv.Close()
		n.Close()
	})
	key, err := os.ReadFile(filepath.Join(repo, nrepo.APIKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return client.New(srv.URL, strings.TrimSpace(string(key)))
}

// connect serves c to an SDK client over in-memory transports, speaking
// protocol (the SDK's latest when ""), and returns the client's session
// and the server's handlers.
func connect(t *testing.T, c *client.Client, protocol string, opts *mcp.ClientOptions) (*mcp.ClientSession, *handlers) {
	t.Helper()
	ctx := t.Context()
	s, h := newServer(c, Options{Version: "test"})
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, opts)
	cs, err := cl.Connect(ctx, ct, &mcp.ClientSessionOptions{ProtocolVersion: protocol})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs, h
}

// create stores data as a new artifact.
func create(t *testing.T, c *client.Client, name string, data []byte, contentType string) artmesh.Artifact {
	t.Helper()
	a, err := c.CreateArtifact(t.Context(), strings.NewReader(string(data)), client.CreateOptions{Name: name, ContentType: contentType, Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// rpcCode returns the JSON-RPC code of a protocol error, failing the test
// when err is not one.
func rpcCode(t *testing.T, err error) int64 {
	t.Helper()
	var je *jsonrpc.Error
	if !errors.As(err, &je) {
		t.Fatalf("error %v (%T) is not a JSON-RPC error", err, err)
	}
	return je.Code
}
