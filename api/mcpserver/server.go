// Package mcpserver serves an artmesh node to LLM agents over the Model
// Context Protocol, with the official Go SDK
// (github.com/modelcontextprotocol/go-sdk). It is a client of the node's
// HTTP API: New takes an *client.Client, which carries the node's address
// and the key of the agent the server acts for, and returns an MCP server
// that `artmesh mcp` runs over stdio with StdioTransport.
//
// The tools are named like the Python SDK's client.artifact methods and
// take the same parameter names (Tools lists them): create,
// create_snippet, get, list, list_shared, download, list_versions,
// update, share, unshare, get_signed_url, delete, delete_version and
// watch.
//
// Every artifact the agent may read is also a resource, through two
// resource templates: artmesh://artifacts/{artifact_id} (its current
// version) and artmesh://artifacts/{artifact_id}/versions/{version};
// resources/list names the agent's own artifacts, then those shared with
// it. A read returns content of up to MaxInlineBytes inline (text when it
// is UTF-8, else a blob); larger content comes back as a signed URL that
// serves it without a key (see LinkMIMEType), never as megabytes of
// base64. Resources can be subscribed to: the change feed of the node
// tells the server when to send notifications/resources/updated (see
// subscribe.go).
//
// A failed tool call (not found, permission denied, invalid input, a node
// that cannot be reached) comes back as a tool result with IsError set
// whose text is "<error code>: <message>", the code being the API's
// (not_found, permission_denied, invalid_argument ...); a failed call
// changes nothing. A failed protocol request (resources/read,
// resources/subscribe, resources/list) is a JSON-RPC error with a
// standard code: -32602 invalid params for a URI or argument that is wrong
// and for a resource not found (as the SDK, after the MCP specification's
// SEP-2164), -32603 internal error for the rest, with the API's error code
// in the error's data. No answer carries the code 0.
//
// Large content never passes through memory: create and update from a
// path stream the file to the node, and download to a path streams the
// content into a temporary file next to it, synced and renamed into place
// once whole. Only download without a path, and resource reads, hold
// content in memory, and only up to MaxInlineBytes.
package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// MaxInlineBytes is the most content that download returns as text, and
// that a resource read returns inline, 1 MiB: enough for documents,
// configs and JSON a model reads, small against a model's context (and
// against a JSON-RPC message: base64 makes it a third larger). Above it,
// download without a path is refused with too_large and a pointer to
// download's path, and a resource read returns a signed URL instead.
const MaxInlineBytes = 1 << 20

// URIScheme is the scheme of artifact resources: artmesh://artifacts/art_....
const URIScheme = "artmesh"

// Options configures New.
type Options struct {
	// Version is the server version reported to clients at initialisation;
	// "" reports "dev".
	Version string
	// Logger receives the SDK's and the server's logs; nil discards them.
	// Over stdio it must not write to stdout, which carries the protocol.
	Logger *slog.Logger
}

// New returns an MCP server whose tools and resources act on the node that
// c talks to, as the agent whose key c carries. The caller runs it, for
// example with Run(ctx, &mcp.StdioTransport{}).
func New(c *client.Client, opt Options) *mcp.Server {
	s, _ := newServer(c, opt)
	return s
}

// newServer is New, and also returns the handlers, whose subscriptions
// tests look into.
func newServer(c *client.Client, opt Options) (*mcp.Server, *handlers) {
	if opt.Version == "" {
		opt.Version = "dev"
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handlers{c: c, log: log}
	subs := newSubscriptions(h)
	h.subs = subs
	s := mcp.NewServer(&mcp.Implementation{Name: "artmesh", Title: "artmesh artifact mesh", Version: opt.Version}, &mcp.ServerOptions{
		Instructions:       instructions,
		Logger:             log,
		SubscribeHandler:   subs.subscribe,
		UnsubscribeHandler: subs.unsubscribe,
	})
	subs.mu.Lock()
	subs.server = s
	subs.mu.Unlock()
	h.addTools(s)
	h.addResources(s)
	s.AddReceivingMiddleware(argumentErrors, h.protocolErrors)
	return s, h
}

// protocolErrors gives an error of a protocol method (not a tool call,
// whose errors are results) a JSON-RPC code when it has none: the SDK
// sends an error that is not a *jsonrpc.Error with the code 0.
func (h *handlers) protocolErrors(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		var je *jsonrpc.Error
		if err == nil || method == "tools/call" || errors.As(err, &je) {
			return res, err
		}
		return res, h.rpcError(method, "", err)
	}
}

// argumentErrors gives the tool errors that the SDK makes itself, for
// arguments that do not match a tool's schema, the invalid_argument code
// that every other tool error starts with.
func argumentErrors(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		tr, ok := res.(*mcp.CallToolResult)
		if method != "tools/call" || err != nil || !ok || !tr.IsError {
			return res, err
		}
		var te *toolError
		if errors.As(tr.GetError(), &te) {
			return res, err
		}
		for _, c := range tr.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				tc.Text = artmesh.Invalid.String() + ": " + tc.Text
			}
		}
		return res, err
	}
}

// instructions tells a connecting model what the server is for.
const instructions = `artmesh stores artifacts: named, versioned, content-addressed files and JSON with metadata, shared between agents. ` +
	`Artifact ids look like art_ followed by 26 characters. Use create (text or a local file path) or create_snippet (JSON) to store, ` +
	`list and get to find, download to read (as text for small text content, or to a local file path), update to add a version, ` +
	`share/unshare to give other agents read access, get_signed_url for a URL that works without a key. ` +
	`Artifacts are also resources: artmesh://artifacts/<artifact id> and artmesh://artifacts/<artifact id>/versions/<n>; ` +
	`content over 1 MiB is returned as a signed URL to fetch, and a subscription to a resource says when it changes.`

// handlers holds what every tool and resource handler needs.
type handlers struct {
	c    *client.Client
	log  *slog.Logger
	subs *subscriptions
}

// toolError is the error of a failed tool call: the API's error code and
// a message for the model.
type toolError struct {
	code string
	msg  string
	err  error
}

func (e *toolError) Error() string { return e.code + ": " + e.msg }
func (e *toolError) Unwrap() error { return e.err }

// failure turns the error of a client call into the error a tool returns,
// which the SDK sends as a result with IsError set.
func (h *handlers) failure(tool string, err error) error {
	var te *toolError
	if errors.As(err, &te) {
		return err
	}
	switch {
	case errors.Is(err, client.ErrUnreachable):
		return &toolError{code: artmesh.Unavailable.String(), err: err,
			msg: fmt.Sprintf("cannot reach the artmesh node at %s: is `artmesh daemon` running?", h.c.BaseURL())}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &toolError{code: "cancelled", msg: "the call was cancelled", err: err}
	}
	kind := artmesh.KindOf(err)
	msg := artmesh.Message(err)
	var ce *client.Error
	if errors.As(err, &ce) && ce.Message != "" {
		msg = ce.Message
	}
	if kind == artmesh.Other {
		h.log.Warn("mcp tool failed", "tool", tool, "err", err)
	}
	return &toolError{code: kind.String(), msg: msg, err: err}
}

// invalid returns the error of a tool argument that is wrong.
func invalid(format string, args ...any) error {
	return &toolError{code: artmesh.Invalid.String(), msg: fmt.Sprintf(format, args...)}
}
