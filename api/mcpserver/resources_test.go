package mcpserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// patterned returns n bytes that are not UTF-8 text.
func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	b[0] = 0xff
	return b
}

// TestResourceErrors: a failed protocol request is a JSON-RPC error with a
// standard code, never 0: a missing artifact is "Resource not found"
// (-32602 since SEP-2164), a URI or argument that is wrong -32602, a node
// that cannot be reached -32603.
func TestResourceErrors(t *testing.T) {
	c := startNode(t)
	cs, _ := connect(t, c, "", nil)
	old, _ := connect(t, c, "2025-11-25", nil) // resources/subscribe is answered only in the 2025 revisions
	down, _ := connect(t, client.New("http://127.0.0.1:1", "key"), "", nil)
	oldDown, _ := connect(t, client.New("http://127.0.0.1:1", "key"), "2025-11-25", nil)
	a := create(t, c, "a.txt", []byte("hello"), "text/plain")
	const missing = artmesh.ArtifactID("art_00000000000000000000000000")
	for _, tc := range []struct {
		name  string
		cs    *mcp.ClientSession
		call  func(ctx context.Context, cs *mcp.ClientSession) error
		code  int64
		inMsg string
	}{
		{"read of a missing artifact", cs, read(ResourceURI(missing, 0)), jsonrpc.CodeInvalidParams, "Resource not found"},
		{"read of a missing version", cs, read(ResourceURI(a.ID, 9)), jsonrpc.CodeInvalidParams, "Resource not found"},
		{"read of a malformed id", cs, read("artmesh://artifacts/nope"), jsonrpc.CodeInvalidParams, "not name an artifact id"},
		{"read of version 0", cs, read("artmesh://artifacts/" + string(a.ID) + "/versions/0"), jsonrpc.CodeInvalidParams, "version must be"},
		{"read of another scheme", cs, read("https://example.com/" + string(a.ID)), jsonrpc.CodeInvalidParams, ""},
		{"read with the node down", down, read(ResourceURI(a.ID, 0)), jsonrpc.CodeInternalError, "unavailable: cannot reach"},
		{"list with a bad cursor", cs, func(ctx context.Context, cs *mcp.ClientSession) error {
			_, err := cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: "nope:x"})
			return err
		}, jsonrpc.CodeInvalidParams, "invalid cursor"},
		{"list with the node down", down, func(ctx context.Context, cs *mcp.ClientSession) error {
			_, err := cs.ListResources(ctx, nil)
			return err
		}, jsonrpc.CodeInternalError, "unavailable: cannot reach"},
		{"subscribe to a missing artifact", old, subscribe(ResourceURI(missing, 0)), jsonrpc.CodeInvalidParams, "Resource not found"},
		{"subscribe to a missing version", old, subscribe(ResourceURI(a.ID, 2)), jsonrpc.CodeInvalidParams, "Resource not found"},
		{"subscribe to a malformed URI", old, subscribe("artmesh://artifacts/nope"), jsonrpc.CodeInvalidParams, "not name an artifact id"},
		{"subscribe with the node down", oldDown, subscribe(ResourceURI(a.ID, 0)), jsonrpc.CodeInternalError, "unavailable"},
		{"a tool that does not exist", cs, func(ctx context.Context, cs *mcp.ClientSession) error {
			_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "nope"})
			return err
		}, jsonrpc.CodeInvalidParams, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(t.Context(), tc.cs)
			if err == nil {
				t.Fatal("succeeded")
			}
			if code := rpcCode(t, err); code != tc.code || !strings.Contains(err.Error(), tc.inMsg) {
				t.Fatalf("code %d, %v; want code %d and %q", code, err, tc.code, tc.inMsg)
			}
		})
	}
}

func read(uri string) func(context.Context, *mcp.ClientSession) error {
	return func(ctx context.Context, cs *mcp.ClientSession) error {
		_, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		return err
	}
}

// subscribe sends resources/subscribe, which is answered in the 2025
// revisions of the protocol (the 2026 one's subscriptions/listen is not).
func subscribe(uri string) func(context.Context, *mcp.ClientSession) error {
	return func(ctx context.Context, cs *mcp.ClientSession) error {
		return cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri})
	}
}

// TestLargeResourceIsALink: a resource read returns content up to
// MaxInlineBytes inline, and larger content as a signed URL that serves
// exactly its bytes, with its size, type and digests.
func TestLargeResourceIsALink(t *testing.T) {
	c := startNode(t)
	cs, _ := connect(t, c, "", nil)
	for _, tc := range []struct {
		name     string
		data     []byte
		ctype    string
		version  bool // read through the versions URI
		wantLink bool
	}{
		{"text at the limit", bytes.Repeat([]byte("a"), MaxInlineBytes), "text/plain", false, false},
		{"binary under the limit", patterned(1000), "application/octet-stream", false, false},
		{"text one byte over", bytes.Repeat([]byte("b"), MaxInlineBytes+1), "text/plain", false, true},
		{"binary of 3 MiB", patterned(3 << 20), "application/octet-stream", false, true},
		{"binary of 3 MiB by version", patterned(3<<20 + 5), "application/x-weights", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := create(t, c, "f", tc.data, tc.ctype)
			uri := ResourceURI(a.ID, 0)
			if tc.version {
				uri = ResourceURI(a.ID, 1)
			}
			rr, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: uri})
			if err != nil {
				t.Fatal(err)
			}
			if len(rr.Contents) != 1 {
				t.Fatalf("%d contents", len(rr.Contents))
			}
			rc := rr.Contents[0]
			if !tc.wantLink {
				got := []byte(rc.Text)
				if rc.Blob != nil {
					got = rc.Blob
				}
				if rc.MIMEType != tc.ctype || !bytes.Equal(got, tc.data) {
					t.Fatalf("inline content: %s, %d bytes (equal: %v)", rc.MIMEType, len(got), bytes.Equal(got, tc.data))
				}
				return
			}
			if rc.MIMEType != LinkMIMEType || rc.Blob != nil || rc.URI != uri {
				t.Fatalf("link content: %s, uri %s, %d blob bytes", rc.MIMEType, rc.URI, len(rc.Blob))
			}
			t.Logf("%s", rc.Text)
			lines := strings.Split(strings.TrimSpace(rc.Text), "\n")
			url := lines[len(lines)-1]
			var meta struct {
				URL         string    `json:"url"`
				ExpiresAt   time.Time `json:"expires_at"`
				SizeBytes   int64     `json:"size_bytes"`
				ContentType string    `json:"content_type"`
				Version     int       `json:"version"`
				CID         string    `json:"cid"`
				SHA256      string    `json:"sha256"`
			}
			raw, _ := json.Marshal(rc.Meta[LinkMetaKey])
			if err := json.Unmarshal(raw, &meta); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(tc.data)
			if meta.URL != url || meta.SizeBytes != int64(len(tc.data)) || meta.ContentType != tc.ctype || meta.Version != 1 ||
				meta.CID != a.CID || time.Until(meta.ExpiresAt) < LinkExpiry-time.Minute ||
				(meta.SHA256 != "" && meta.SHA256 != hex.EncodeToString(sum[:])) {
				t.Fatalf("link %s; meta %s; artifact %+v", rc.Text, raw, a)
			}
			for _, want := range []string{url, tc.ctype, a.CID} {
				if !strings.Contains(rc.Text, want) {
					t.Fatalf("the link's text %q does not say %q", rc.Text, want)
				}
			}
			// The link works, without a key, and serves the bytes.
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, tc.data) {
				t.Fatalf("GET %s: %d, %d bytes (%v), equal %v", url, resp.StatusCode, len(got), err, bytes.Equal(got, tc.data))
			}
		})
	}
}

// TestResourceTemplates: the two templates are listed, and a read through
// either URI shape (and the shape of earlier releases) gives the content
// of the version it names.
func TestResourceTemplates(t *testing.T) {
	c := startNode(t)
	cs, _ := connect(t, c, "", nil)
	var got []string
	for rt, err := range cs.ResourceTemplates(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rt.URITemplate)
	}
	slices.Sort(got)
	want := []string{"artmesh://artifacts/{artifact_id}", "artmesh://artifacts/{artifact_id}/versions/{version}"}
	if !slices.Equal(got, want) {
		t.Fatalf("templates %v, want %v", got, want)
	}
	a := create(t, c, "a.txt", []byte("one"), "text/plain")
	if _, err := c.UpdateArtifact(t.Context(), a.ID, strings.NewReader("two"), client.UpdateOptions{Size: 3}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ uri, want string }{
		{ResourceURI(a.ID, 0), "two"},
		{ResourceURI(a.ID, 1), "one"},
		{ResourceURI(a.ID, 2), "two"},
		{"artmesh://" + string(a.ID), "two"},
		{"artmesh://" + string(a.ID) + "/versions/1", "one"},
	} {
		rr, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: tc.uri})
		if err != nil {
			t.Fatalf("%s: %v", tc.uri, err)
		}
		if len(rr.Contents) != 1 || rr.Contents[0].Text != tc.want || rr.Contents[0].URI != tc.uri {
			t.Fatalf("%s: %+v, want %q", tc.uri, rr.Contents[0], tc.want)
		}
	}
	// resources/list names artifacts by the current shape.
	for r, err := range cs.Resources(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if r.URI != ResourceURI(a.ID, 0) {
			t.Fatalf("listed %s, want %s", r.URI, ResourceURI(a.ID, 0))
		}
	}
}
