package e2e

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// TestBadInput sends every kind of bad request of API.md's 4xx rows and
// checks the status, the error code and that nothing changed.
func TestBadInput(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	var bob struct {
		APIKey string `json:"api_key"`
	}
	d.call(t, "POST", "/v1/agents", map[string]any{"id": "bob"}, 201, &bob)
	var one, two artifact
	d.call(t, "POST", "/v1/artifacts?name=one.txt", "hello, world", 201, &one, "Content-Type", "text/plain")
	d.call(t, "POST", "/v1/artifacts?name=two.txt", "two", 201, &two)
	d.call(t, "PUT", "/v1/artifacts/"+two.ID+"/content", "two, v2", 201, nil)
	unknown := "art_01JD0000000000000000000000"
	admin := d.key
	wellFormedWrongKey := "amk_" + strings.Repeat("a", 52)

	for _, tc := range []struct {
		name    string
		key     string
		method  string
		path    string
		body    string
		headers []string
		status  int
		code    string
	}{
		{"create without name", admin, "POST", "/v1/artifacts", "x", nil, 400, "invalid_argument"},
		{"metadata not JSON", admin, "POST", "/v1/artifacts?name=x", "x", []string{"Artifact-Metadata", "{nope"}, 400, "invalid_argument"},
		{"metadata not an object", admin, "POST", "/v1/artifacts?name=x", "x", []string{"Artifact-Metadata", "[1,2]"}, 400, "invalid_argument"},
		{"metadata too large", admin, "POST", "/v1/artifacts?name=x", "x", []string{"Artifact-Metadata", `{"k":"` + strings.Repeat("v", 65<<10) + `"}`}, 413, "too_large"},
		{"bad content type", admin, "POST", "/v1/artifacts?name=x", "x", []string{"Content-Type", "not a type"}, 400, "invalid_argument"},
		{"snippet malformed JSON", admin, "POST", "/v1/snippets", `{"name": "s", "content": `, nil, 400, "invalid_argument"},
		{"snippet without content", admin, "POST", "/v1/snippets", `{"name": "s"}`, nil, 400, "invalid_argument"},
		{"snippet without name", admin, "POST", "/v1/snippets", `{"content": 1}`, nil, 400, "invalid_argument"},
		{"snippet metadata not an object", admin, "POST", "/v1/snippets", `{"name": "s", "content": 1, "metadata": [1]}`, nil, 400, "invalid_argument"},
		{"snippet unknown field", admin, "POST", "/v1/snippets", `{"name": "s", "content": 1, "extra": 1}`, nil, 400, "invalid_argument"},
		{"update with bad metadata", admin, "PUT", "/v1/artifacts/" + one.ID + "/content", "x", []string{"Artifact-Metadata", "7"}, 400, "invalid_argument"},
		{"get unknown id", admin, "GET", "/v1/artifacts/" + unknown, "", nil, 404, "not_found"},
		{"get malformed id", admin, "GET", "/v1/artifacts/nope", "", nil, 404, "not_found"},
		{"content of unknown id", admin, "GET", "/v1/artifacts/" + unknown + "/content", "", nil, 404, "not_found"},
		{"update unknown id", admin, "PUT", "/v1/artifacts/" + unknown + "/content", "x", nil, 404, "not_found"},
		{"delete unknown id", admin, "DELETE", "/v1/artifacts/" + unknown, "", nil, 404, "not_found"},
		{"versions of unknown id", admin, "GET", "/v1/artifacts/" + unknown + "/versions", "", nil, 404, "not_found"},
		{"version zero", admin, "GET", "/v1/artifacts/" + one.ID + "/content?version=0", "", nil, 400, "invalid_argument"},
		{"version not a number", admin, "GET", "/v1/artifacts/" + one.ID + "/content?version=abc", "", nil, 400, "invalid_argument"},
		{"version that does not exist", admin, "GET", "/v1/artifacts/" + one.ID + "/content?version=9", "", nil, 404, "not_found"},
		{"range past the end", admin, "GET", "/v1/artifacts/" + one.ID + "/content", "", []string{"Range", "bytes=100-200"}, 416, "range_not_satisfiable"},
		{"range malformed", admin, "GET", "/v1/artifacts/" + one.ID + "/content", "", []string{"Range", "bytes=abc"}, 416, "range_not_satisfiable"},
		{"range backwards", admin, "GET", "/v1/artifacts/" + one.ID + "/content", "", []string{"Range", "bytes=5-2"}, 416, "range_not_satisfiable"},
		{"delete version not a number", admin, "DELETE", "/v1/artifacts/" + two.ID + "/versions/abc", "", nil, 400, "invalid_argument"},
		{"delete version that does not exist", admin, "DELETE", "/v1/artifacts/" + two.ID + "/versions/9", "", nil, 404, "not_found"},
		{"delete the only version", admin, "DELETE", "/v1/artifacts/" + one.ID + "/versions/1", "", nil, 409, "conflict"},
		{"list limit zero", admin, "GET", "/v1/artifacts?limit=0", "", nil, 400, "invalid_argument"},
		{"list limit too large", admin, "GET", "/v1/artifacts?limit=1001", "", nil, 400, "invalid_argument"},
		{"list negative offset", admin, "GET", "/v1/artifacts?offset=-1", "", nil, 400, "invalid_argument"},
		{"list unknown filter", admin, "GET", "/v1/artifacts?colour=red", "", nil, 400, "invalid_argument"},
		{"no API key", "", "GET", "/v1/artifacts", "", nil, 401, "unauthenticated"},
		{"malformed API key", "garbage", "GET", "/v1/artifacts", "", nil, 401, "unauthenticated"},
		{"unknown API key", wellFormedWrongKey, "GET", "/v1/artifacts", "", nil, 401, "unauthenticated"},
		{"no API key on content", "", "GET", "/v1/artifacts/" + one.ID + "/content", "", nil, 401, "unauthenticated"},
		{"stranger reads", bob.APIKey, "GET", "/v1/artifacts/" + one.ID, "", nil, 404, "not_found"},
		{"stranger downloads", bob.APIKey, "GET", "/v1/artifacts/" + one.ID + "/content", "", nil, 404, "not_found"},
		{"stranger updates", bob.APIKey, "PUT", "/v1/artifacts/" + one.ID + "/content", "x", nil, 404, "not_found"},
		{"stranger deletes", bob.APIKey, "DELETE", "/v1/artifacts/" + one.ID, "", nil, 404, "not_found"},
		{"non-admin creates an agent", bob.APIKey, "POST", "/v1/agents", `{"id": "eve"}`, nil, 403, "permission_denied"},
		{"non-admin lists agents", bob.APIKey, "GET", "/v1/agents", "", nil, 403, "permission_denied"},
		{"non-admin edits a group", bob.APIKey, "PUT", "/v1/groups/team", `{"members": ["bob"]}`, nil, 403, "permission_denied"},
		{"duplicate agent", admin, "POST", "/v1/agents", `{"id": "bob"}`, nil, 409, "conflict"},
		{"invalid agent id", admin, "POST", "/v1/agents", `{"id": "no spaces please"}`, nil, 400, "invalid_argument"},
		{"agent body malformed", admin, "POST", "/v1/agents", `{"id": `, nil, 400, "invalid_argument"},
		{"delete unknown agent", admin, "DELETE", "/v1/agents/nobody", "", nil, 404, "not_found"},
		{"delete agent that owns artifacts", admin, "DELETE", "/v1/agents/admin", "", nil, 409, "conflict"},
		{"group with unknown member", admin, "PUT", "/v1/groups/team", `{"members": ["nobody"]}`, nil, 400, "invalid_argument"},
		{"delete unknown group", admin, "DELETE", "/v1/groups/nogroup", "", nil, 404, "not_found"},
		{"share with unknown agent", admin, "POST", "/v1/artifacts/" + one.ID + "/share", `{"agents": ["nobody"]}`, nil, 400, "invalid_argument"},
		{"unknown route", admin, "GET", "/v1/nothing", "", nil, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := d.state(t)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			resp := d.do(t, tc.key, tc.method, tc.path, body, tc.headers...)
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, data)
			}
			var eb errorBody
			if err := json.Unmarshal(data, &eb); err != nil || eb.Error.Code != tc.code || eb.Error.Message == "" {
				t.Fatalf("error body %s, want code %q and a message", data, tc.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("error Content-Type %q", ct)
			}
			if after := d.state(t); after != before {
				t.Fatalf("a failed call changed the state:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// state returns the catalog as the admin sees it, as text to compare:
// artifacts with their versions, agents and groups.
func (d *daemon) state(t *testing.T) string {
	t.Helper()
	var page artifactPage
	d.call(t, "GET", "/v1/artifacts?limit=1000", nil, 200, &page)
	var b strings.Builder
	for _, a := range page.Items {
		var vs json.RawMessage
		d.call(t, "GET", "/v1/artifacts/"+a.ID+"/versions", nil, 200, &vs)
		aj, _ := json.Marshal(a)
		b.Write(aj)
		b.Write(vs)
	}
	var agents, groups json.RawMessage
	d.call(t, "GET", "/v1/agents", nil, 200, &agents)
	d.call(t, "GET", "/v1/groups", nil, 200, &groups)
	b.Write(agents)
	b.Write(groups)
	return b.String()
}
