package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
	"github.com/artmesh/artmesh/api/mcpserver"
)

// mcpTools is every tool that `artmesh mcp` serves, sorted.
var mcpTools = []string{
	"create", "create_snippet", "delete", "delete_version", "download", "get", "get_signed_url",
	"list", "list_shared", "list_versions", "share", "unshare", "update", "watch",
}

// connectMCP serves the node to an in-process MCP client as the agent
// whose key is key, over in-memory transports, and returns the client's
// session.
func connectMCP(t *testing.T, d *daemon, key string) *mcp.ClientSession {
	t.Helper()
	ctx := t.Context()
	s := mcpserver.New(client.New(d.url, key), mcpserver.Options{Version: "e2e"})
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

// callTool calls a tool that must succeed and decodes its structured
// result into out (when not nil).
func callTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any, out any) {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error: %s", name, toolText(res))
	}
	if out != nil {
		data, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s: decoding %s: %v", name, data, err)
		}
	}
}

// callToolError calls a tool that must fail with a tool error (not a
// protocol error) and returns its text.
func callToolError(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) string {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error, want a tool error: %v", name, err)
	}
	if !res.IsError {
		t.Fatalf("%s succeeded, want a tool error: %v", name, res.StructuredContent)
	}
	return toolText(res)
}

// toolText returns the text content of a tool result.
func toolText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func wantPrefix(t *testing.T, what, got, prefix string) {
	t.Helper()
	t.Logf("%s: %s", what, got)
	if !strings.HasPrefix(got, prefix) {
		t.Fatalf("%s: got %q, want it to start with %q", what, got, prefix)
	}
}

// TestMCPInProcess drives the MCP server with the SDK's own client over
// in-memory transports, against a real node: the tools are listed, create
// (from text and from a file), list, get and download (as text and to a
// file) give back identical bytes, and failures (permission, not found,
// bad input) come back as tool errors that change nothing.
func TestMCPInProcess(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	cs := connectMCP(t, d, d.key)
	ctx := t.Context()

	var names []string
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, mcpTools) {
		t.Fatalf("tools %v, want %v", names, mcpTools)
	}

	// create from text.
	const text = "Q4 numbers: 42\nwith unicode: héllo ✓\n"
	var notes artifact
	callTool(t, cs, "create", map[string]any{"name": "notes.txt", "data": text, "metadata": map[string]any{"quarter": "Q4", "year": 2025}}, &notes)
	if notes.Name != "notes.txt" || notes.ContentType != "text/plain; charset=utf-8" || notes.SizeBytes != int64(len(text)) || notes.Version != 1 ||
		notes.Metadata["quarter"] != "Q4" || notes.Metadata["year"] != float64(2025) {
		t.Fatalf("created %+v", notes)
	}

	// create from a file, streamed; the name defaults to the file's.
	const size = 3<<20 + 17
	src := filepath.Join(t.TempDir(), "weights.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, &patterned{n: size, seed: 7}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var weights artifact
	callTool(t, cs, "create", map[string]any{"path": src}, &weights)
	if weights.Name != "weights.bin" || weights.SizeBytes != size || weights.ContentType != "application/octet-stream" {
		t.Fatalf("created %+v", weights)
	}

	// list: newest first; with a metadata filter, only the match.
	var page artifactPage
	callTool(t, cs, "list", nil, &page)
	if page.total() != 2 || len(page.Items) != 2 || page.Items[0].ID != weights.ID || page.Items[1].ID != notes.ID {
		t.Fatalf("list: %+v", page)
	}
	// Paged by cursor: the second page of one is the older artifact, and the last.
	var first, second artifactPage
	callTool(t, cs, "list", map[string]any{"limit": 1}, &first)
	callTool(t, cs, "list", map[string]any{"limit": 1, "cursor": first.NextCursor}, &second)
	if len(first.Items) != 1 || first.Items[0].ID != weights.ID || first.NextCursor == "" ||
		len(second.Items) != 1 || second.Items[0].ID != notes.ID || second.NextCursor != "" {
		t.Fatalf("list by cursor: %+v then %+v", first, second)
	}
	callTool(t, cs, "list", map[string]any{"metadata_filter": map[string]any{"year": 2025}, "limit": 10}, &page)
	if len(page.Items) != 1 || page.Items[0].ID != notes.ID || page.Limit != 10 {
		t.Fatalf("list with metadata_filter: %+v", page)
	}

	// get is what the HTTP API says.
	var got, viaHTTP artifact
	callTool(t, cs, "get", map[string]any{"artifact_id": notes.ID}, &got)
	d.call(t, "GET", "/v1/artifacts/"+notes.ID, nil, 200, &viaHTTP)
	if got.ID != viaHTTP.ID || got.CID != viaHTTP.CID || got.Owner != viaHTTP.Owner || got.Owner == "" || !got.UpdatedAt.Equal(viaHTTP.UpdatedAt) {
		t.Fatalf("get: %+v, HTTP: %+v", got, viaHTTP)
	}

	// download as text: the same bytes.
	var dl struct {
		Text        *string `json:"text"`
		CID         string  `json:"cid"`
		Version     int     `json:"version"`
		SizeBytes   int64   `json:"size_bytes"`
		ContentType string  `json:"content_type"`
		Path        string  `json:"path"`
	}
	callTool(t, cs, "download", map[string]any{"artifact_id": notes.ID}, &dl)
	if dl.Text == nil || *dl.Text != text || dl.CID != notes.CID || dl.Version != 1 || dl.SizeBytes != int64(len(text)) || dl.Path != "" {
		t.Fatalf("download as text: %+v", dl)
	}

	// download to a file: the same bytes, streamed.
	dest := filepath.Join(t.TempDir(), "copy.bin")
	dl.Text = nil
	callTool(t, cs, "download", map[string]any{"artifact_id": weights.ID, "path": dest}, &dl)
	if dl.Path != dest || dl.SizeBytes != size || dl.CID != weights.CID || dl.Text != nil {
		t.Fatalf("download to a file: %+v", dl)
	}
	gotBytes, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotBytes, wantBytes) {
		t.Fatalf("downloaded file differs from the original (%d bytes, want %d)", len(gotBytes), len(wantBytes))
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".*artmesh-part")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	// Reading the artifact as a resource gives the same text.
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: mcpserver.ResourceURI(artmesh.ArtifactID(notes.ID), 0)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Contents) != 1 || rr.Contents[0].Text != text || rr.Contents[0].MIMEType != "text/plain; charset=utf-8" {
		t.Fatalf("resource: %+v", rr.Contents)
	}

	// Failures are tool errors with the API's code, and change nothing.
	// Without a path, content over 1 MiB comes back as a signed URL that
	// serves it without a key, not as text.
	var link struct {
		Text      *string `json:"text"`
		URL       string  `json:"url"`
		SizeBytes int64   `json:"size_bytes"`
		Version   int     `json:"version"`
	}
	callTool(t, cs, "download", map[string]any{"artifact_id": weights.ID}, &link)
	if link.Text != nil || link.URL == "" || link.SizeBytes != size || link.Version != 1 {
		t.Fatalf("download of 3 MiB without a path: %+v, want a URL", link)
	}
	resp, err := http.Get(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || int64(len(body)) != size {
		t.Fatalf("GET the download's URL: %s, %d bytes, want %d", resp.Status, len(body), size)
	}
	wantPrefix(t, "create without content", callToolError(t, cs, "create", map[string]any{"name": "x"}), "invalid_argument: give the content")
	wantPrefix(t, "create with data and path", callToolError(t, cs, "create", map[string]any{"name": "x", "data": "a", "path": src}), "invalid_argument: give data or path, not both")
	wantPrefix(t, "list with a limit of the wrong type", callToolError(t, cs, "list", map[string]any{"limit": "ten"}), "invalid_argument: ")
	wantPrefix(t, "get of a malformed id", callToolError(t, cs, "get", map[string]any{"artifact_id": "nope"}), "invalid_argument: ")
	wantPrefix(t, "get without artifact_id", callToolError(t, cs, "get", map[string]any{}), "invalid_argument: validating \"arguments\"")
	wantPrefix(t, "download into a missing folder", callToolError(t, cs, "download",
		map[string]any{"artifact_id": notes.ID, "path": filepath.Join(t.TempDir(), "no", "such", "file")}), "invalid_argument: cannot write")

	// Another agent: cannot see the artifact until it is shared, then may
	// read it but not change it.
	bobKey := d.addAgent(t, "bob")
	bob := connectMCP(t, d, bobKey)
	wantPrefix(t, "bob's get before the share", callToolError(t, bob, "get", map[string]any{"artifact_id": notes.ID}), "not_found: ")
	// bob watches: nothing he may see has happened yet, but the answer
	// says where to go on from.
	var w struct {
		Events []struct {
			Type       string `json:"type"`
			ArtifactID string `json:"artifact_id"`
			Version    int    `json:"version"`
		} `json:"events"`
		LastEventID string `json:"last_event_id"`
	}
	callTool(t, bob, "watch", map[string]any{"wait_seconds": 1}, &w)
	if len(w.Events) != 0 || w.LastEventID == "" {
		t.Fatalf("bob's first watch: %+v, want no events and a position", w)
	}
	watchFrom := func(want string) {
		t.Helper()
		callTool(t, bob, "watch", map[string]any{"last_event_id": w.LastEventID, "wait_seconds": 10}, &w)
		var got []string
		for _, e := range w.Events {
			got = append(got, fmt.Sprintf("%s %s v%d", e.Type, e.ArtifactID, e.Version))
		}
		if strings.Join(got, ",") != want {
			t.Fatalf("bob's watch: %v, want %s", got, want)
		}
	}
	var acc struct {
		Owner  string   `json:"owner"`
		Agents []string `json:"agents"`
	}
	callTool(t, cs, "share", map[string]any{"artifact_id": notes.ID, "with_agents": []string{"bob"}}, &acc)
	if !slices.Equal(acc.Agents, []string{"bob"}) {
		t.Fatalf("share: %+v", acc)
	}
	callTool(t, bob, "download", map[string]any{"artifact_id": notes.ID}, &dl)
	if dl.Text == nil || *dl.Text != text {
		t.Fatalf("bob's download: %+v", dl)
	}
	callTool(t, bob, "list_shared", nil, &page)
	if len(page.Items) != 1 || page.Items[0].ID != notes.ID {
		t.Fatalf("bob's list_shared: %+v", page)
	}
	wantPrefix(t, "bob's update", callToolError(t, bob, "update", map[string]any{"artifact_id": notes.ID, "data": "mine now"}), "permission_denied: ")
	wantPrefix(t, "bob's delete", callToolError(t, bob, "delete", map[string]any{"artifact_id": notes.ID}), "permission_denied: ")
	wantPrefix(t, "bob's share", callToolError(t, bob, "share", map[string]any{"artifact_id": notes.ID, "with_agents": []string{"bob"}}), "permission_denied: ")
	d.call(t, "GET", "/v1/artifacts/"+notes.ID, nil, 200, &viaHTTP)
	if viaHTTP.Version != 1 || viaHTTP.CID != notes.CID {
		t.Fatalf("after bob's failed calls the artifact is %+v", viaHTTP)
	}
	watchFrom("artifact.shared " + notes.ID + " v1") // bob's failed calls made no events
	wantPrefix(t, "watch with a bad wait", callToolError(t, bob, "watch", map[string]any{"wait_seconds": 301}), "invalid_argument: wait_seconds")

	// The owner's update, versions, signed URL, unshare and delete.
	var upd artifact
	callTool(t, cs, "update", map[string]any{"artifact_id": notes.ID, "data": "v2", "metadata": map[string]any{"status": "final"}}, &upd)
	if upd.Version != 2 || upd.SizeBytes != 2 || upd.Metadata["status"] != "final" || upd.Metadata["quarter"] != "Q4" {
		t.Fatalf("update: %+v", upd)
	}
	var vs struct {
		Items []struct {
			Version int    `json:"version"`
			CID     string `json:"cid"`
		} `json:"items"`
	}
	watchFrom("artifact.updated " + notes.ID + " v2")
	callTool(t, cs, "list_versions", map[string]any{"artifact_id": notes.ID}, &vs)
	if len(vs.Items) != 2 || vs.Items[0].Version != 1 || vs.Items[0].CID != notes.CID || vs.Items[1].Version != 2 {
		t.Fatalf("list_versions: %+v", vs)
	}
	callTool(t, cs, "download", map[string]any{"artifact_id": notes.ID, "version": 1}, &dl)
	if *dl.Text != text || dl.Version != 1 {
		t.Fatalf("download of version 1: %+v", dl)
	}
	var su struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	callTool(t, cs, "get_signed_url", map[string]any{"artifact_id": notes.ID, "expires_in": 600}, &su)
	if code, body := d.status(t, "", "GET", strings.TrimPrefix(su.URL, d.url), nil); code != 200 || string(body) != "v2" {
		t.Fatalf("signed URL %s: %d %q", su.URL, code, body)
	}
	if left := time.Until(su.ExpiresAt); left < 590*time.Second || left > 610*time.Second {
		t.Fatalf("signed URL expires in %v, want 600s", left)
	}
	callTool(t, cs, "unshare", map[string]any{"artifact_id": notes.ID, "agents": []string{"bob"}}, &acc)
	if len(acc.Agents) != 0 {
		t.Fatalf("unshare: %+v", acc)
	}
	wantPrefix(t, "bob's get after the unshare", callToolError(t, bob, "get", map[string]any{"artifact_id": notes.ID}), "not_found: ")
	callTool(t, cs, "delete", map[string]any{"artifact_id": notes.ID}, nil)
	wantPrefix(t, "get after delete", callToolError(t, cs, "get", map[string]any{"artifact_id": notes.ID}), "not_found: ")
}

// TestMCPSubprocess runs the real `artmesh mcp` binary as an MCP client
// would, with the key in ARTMESH_API_KEY, and drives it over its stdio
// with the SDK's CommandTransport: a snippet made by a tool is listed and
// read back as a resource, a missing artifact is a tool error, and the
// process ends cleanly when the client closes.
func TestMCPSubprocess(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	ctx := t.Context()
	cmd := exec.Command(binary, "mcp")
	cmd.Env = append(os.Environ(), "ARTMESH_PATH="+t.TempDir(), "ARTMESH_API="+d.url, "ARTMESH_API_KEY="+d.key)
	var stderr bytes.Buffer
	cmd.Stderr = &lockedWriter{w: &stderr}
	updated := make(chan string, 10)
	acked := make(chan struct{}, 10)
	cl := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updated <- req.Params.URI },
	})
	cl.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "notifications/subscriptions/acknowledged" {
				acked <- struct{}{}
			}
			return next(ctx, method, req)
		}
	})
	cs, err := cl.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			cs.Close()
		}
	})
	if info := cs.InitializeResult().ServerInfo; info.Name != "artmesh" {
		t.Fatalf("server info %+v", info)
	}

	var a artifact
	callTool(t, cs, "create_snippet", map[string]any{"name": "cfg.json", "content": map[string]any{"lr": 0.001, "layers": []int{1, 2, 3}}, "metadata": map[string]any{"run": "7"}}, &a)
	if a.ContentType != "application/json" || a.Name != "cfg.json" || a.Metadata["run"] != "7" {
		t.Fatalf("create_snippet: %+v", a)
	}
	uri := mcpserver.ResourceURI(artmesh.ArtifactID(a.ID), 0)
	var found bool
	for r, err := range cs.Resources(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if r.URI == uri {
			found = r.Name == "cfg.json" && r.MIMEType == "application/json" && r.Size == a.SizeBytes
		}
	}
	if !found {
		t.Fatalf("resources/list does not name %s as cfg.json, application/json, %d bytes", uri, a.SizeBytes)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	_, body := d.status(t, d.key, "GET", "/v1/artifacts/"+a.ID+"/content", nil)
	if len(rr.Contents) != 1 || rr.Contents[0].Text != string(body) || rr.Contents[0].MIMEType != "application/json" {
		t.Fatalf("resource %s: %+v, the node serves %q", uri, rr.Contents, body)
	}
	var content map[string]any
	if err := json.Unmarshal([]byte(rr.Contents[0].Text), &content); err != nil || content["lr"] != 0.001 || len(content["layers"].([]any)) != 3 {
		t.Fatalf("resource text %q (%v)", rr.Contents[0].Text, err)
	}
	rr, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri + "/versions/1"})
	if err != nil || rr.Contents[0].Text != string(body) {
		t.Fatalf("resource %s/versions/1: %v %+v", uri, err, rr)
	}
	missing := "art_00000000000000000000000000"
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: mcpserver.ResourceURI(artmesh.ArtifactID(missing), 0)}); err == nil || !strings.Contains(err.Error(), "Resource not found") {
		t.Fatalf("reading a missing artifact: %v", err)
	}
	wantPrefix(t, "get of a missing artifact", callToolError(t, cs, "get", map[string]any{"artifact_id": missing}), "not_found: ")

	// The two resource templates, and a subscription (subscriptions/listen,
	// the SDK's default) that hears the update a tool makes.
	var templates []string
	for rt, err := range cs.ResourceTemplates(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		templates = append(templates, rt.URITemplate)
	}
	slices.Sort(templates)
	if want := []string{"artmesh://artifacts/{artifact_id}", "artmesh://artifacts/{artifact_id}/versions/{version}"}; !slices.Equal(templates, want) {
		t.Fatalf("resource templates %v, want %v", templates, want)
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-acked:
	case <-time.After(20 * time.Second):
		t.Fatal("the subscription was not acknowledged within 20s")
	}
	callTool(t, cs, "update", map[string]any{"artifact_id": a.ID, "data": "{}"}, nil)
	select {
	case got := <-updated:
		if got != uri {
			t.Fatalf("notified %s, want %s", got, uri)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no notifications/resources/updated within 20s of the update")
	}

	closed = true
	if err := cs.Close(); err != nil {
		t.Fatalf("closing: %v", err)
	}
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("artmesh mcp ended with %v; stderr: %s", cmd.ProcessState, stderr.String())
	}
	if s := stderr.String(); strings.Contains(s, "panic") || strings.Contains(s, "level=ERROR") {
		t.Fatalf("artmesh mcp logged errors: %s", s)
	}
}

// TestMCPStdinClosed is `printf '...' | artmesh mcp`: the real binary gets
// a session's requests on a stdin that ends right after them, with a
// malformed line among them, and answers every request (the malformed
// line with a -32700 parse error, id null) before it exits with 0.
func TestMCPStdinClosed(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	const n = 8
	lines := []string{
		`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"printf","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":"bad",`,
	}
	for i := range n {
		lines = append(lines, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"create","arguments":{"name":"p%d.txt","data":"piped %d"}}}`, i, i, i))
	}
	cmd := exec.Command(binary, "mcp")
	cmd.Env = append(os.Environ(), "ARTMESH_PATH="+t.TempDir(), "ARTMESH_API="+d.url, "ARTMESH_API_KEY="+d.key)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("artmesh mcp: %v; stderr: %s", err, stderr.String())
	}
	answered := map[string]bool{}
	parseErrors := 0
	for l := range strings.Lines(stdout.String()) {
		var r struct {
			ID     json.RawMessage `json:"id"`
			Result *struct {
				IsError bool `json:"isError"`
			} `json:"result"`
			Error *struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("stdout line %q: %v", l, err)
		}
		switch {
		case r.Error != nil && r.Error.Code == -32700 && string(r.ID) == "null":
			parseErrors++
		case r.Error != nil || r.Result == nil || r.Result.IsError:
			t.Errorf("request %s failed: %s", r.ID, l)
		default:
			answered[string(r.ID)] = true
		}
	}
	if parseErrors != 1 {
		t.Errorf("%d parse error answers, want 1; stdout:\n%s", parseErrors, stdout.String())
	}
	for i := range n {
		if !answered[fmt.Sprint(i)] {
			t.Errorf("request %d was not answered; stdout:\n%s\nstderr: %s", i, stdout.String(), stderr.String())
		}
	}
	var page artifactPage
	d.call(t, "GET", "/v1/artifacts", nil, 200, &page)
	if len(page.Items) != n {
		t.Errorf("%d artifacts made, want %d", len(page.Items), n)
	}
}
