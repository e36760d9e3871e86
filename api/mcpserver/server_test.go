package mcpserver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

func TestParseURI(t *testing.T) {
	const id = "art_01M8TH1HE5PXBKFNTPDDNXZRHK"
	for _, tc := range []struct {
		uri     string
		ok      bool
		version int
		legacy  bool
	}{
		{"artmesh://artifacts/" + id, true, 0, false},
		{"artmesh://artifacts/" + id + "/versions/3", true, 3, false},
		{"artmesh://" + id, true, 0, true},
		{"artmesh://" + id + "/versions/3", true, 3, true},
		{"artmesh://artifacts/" + id + "/versions/0", false, 0, false},
		{"artmesh://artifacts/" + id + "/versions/03", false, 0, false},
		{"artmesh://artifacts/" + id + "/versions/x", false, 0, false},
		{"artmesh://artifacts/" + id + "/other", false, 0, false},
		{"artmesh://artifacts/art_short", false, 0, false},
		{"artmesh://artifacts/", false, 0, false},
		{"file://" + id, false, 0, false},
		{"", false, 0, false},
	} {
		gotID, v, legacy, err := parseURI(tc.uri)
		if (err == nil) != tc.ok || v != tc.version || legacy != tc.legacy || (tc.ok && gotID != id) {
			t.Errorf("parseURI(%q) = %q, %d, %v, %v; want ok=%v version %d legacy %v", tc.uri, gotID, v, legacy, err, tc.ok, tc.version, tc.legacy)
		}
		if tc.ok && !tc.legacy && ResourceURI(gotID, v) != tc.uri {
			t.Errorf("ResourceURI(%q, %d) = %q, want %q", gotID, v, ResourceURI(gotID, v), tc.uri)
		}
	}
}

// TestUnreachableNode: with no node listening, a tool call is a tool
// error that names the address, and nothing panics.
func TestUnreachableNode(t *testing.T) {
	ctx := t.Context()
	s := New(client.New("http://127.0.0.1:1", "key"), Options{})
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cs.Close(); ss.Wait() }()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get", Arguments: map[string]any{"artifact_id": "art_01M8TH1HE5PXBKFNTPDDNXZRHK"}})
	if err != nil {
		t.Fatal(err)
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if !res.IsError || !strings.HasPrefix(text, "unavailable: cannot reach the artmesh node at http://127.0.0.1:1") {
		t.Fatalf("IsError %v, %q", res.IsError, text)
	}
	if _, err := cs.ListResources(ctx, nil); err == nil || !strings.Contains(err.Error(), "cannot reach the artmesh node") {
		t.Fatalf("resources/list: %v", err)
	}
}

// TestWriteFile: a download lands whole or not at all.
func TestWriteFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		want    int64
		wantErr artmesh.Kind
	}{
		{"known size", "hello", 5, artmesh.Other},
		{"unknown size", "hello", -1, artmesh.Other},
		{"short body", "hel", 5, artmesh.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "out.txt")
			n, err := writeFile(dest, strings.NewReader(tc.body), tc.want)
			entries, _ := os.ReadDir(dir)
			if tc.wantErr != artmesh.Other {
				var te *toolError
				if !errors.As(err, &te) || te.code != tc.wantErr.String() {
					t.Fatalf("err %v, want %s", err, tc.wantErr)
				}
				if len(entries) != 0 {
					t.Fatalf("left %v after a failed write", entries)
				}
				return
			}
			if err != nil || n != int64(len(tc.body)) {
				t.Fatalf("n %d, err %v", n, err)
			}
			got, err := os.ReadFile(dest)
			if err != nil || string(got) != tc.body || len(entries) != 1 {
				t.Fatalf("file %q (%v), folder %v", got, err, entries)
			}
		})
	}
}
