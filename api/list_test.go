package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/artmesh/artmesh"
)

// TestListCursorHTTP pages GET /v1/artifacts by next_cursor, with and
// without a filter, and checks the total rule and the refusals.
func TestListCursorHTTP(t *testing.T) {
	srv, key := newTestServer(t)
	var want, wantOdd []artmesh.ArtifactID // newest first
	for i := range 5 {
		resp, data := send(t, srv, key, "POST", "/v1/snippets", strings.NewReader(fmt.Sprintf(`{"name":"s%d.json","content":%d,"metadata":{"odd":%v}}`, i, i, i%2 == 1)))
		var a artmesh.Artifact
		if resp.StatusCode != 201 || json.Unmarshal(data, &a) != nil {
			t.Fatalf("snippet %d: %d %s", i, resp.StatusCode, data)
		}
		want = append([]artmesh.ArtifactID{a.ID}, want...)
		if i%2 == 1 {
			wantOdd = append([]artmesh.ArtifactID{a.ID}, wantOdd...)
		}
	}
	for _, tc := range []struct {
		query     string
		want      []artmesh.ArtifactID
		wantTotal bool
	}{
		{"limit=2", want, true},
		{"limit=1&metadata.odd=true", wantOdd, false},
	} {
		var got []artmesh.ArtifactID
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			q := tc.query
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			resp, data := send(t, srv, key, "GET", "/v1/artifacts?"+q, nil)
			var raw map[string]json.RawMessage
			var page artmesh.Page[artmesh.Artifact]
			if resp.StatusCode != 200 || json.Unmarshal(data, &raw) != nil || json.Unmarshal(data, &page) != nil {
				t.Fatalf("%s: %d %s", q, resp.StatusCode, data)
			}
			if _, has := raw["total"]; has != tc.wantTotal || (has && *page.Total != len(tc.want)) {
				t.Fatalf("%s: %s, want total given: %v", q, data, tc.wantTotal)
			}
			got = append(got, ids(page.Items)...)
			if cursor = page.NextCursor; cursor == "" {
				if _, has := raw["next_cursor"]; has {
					t.Fatalf("%s: last page has next_cursor: %s", q, data)
				}
				break
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: paged %v, want %v", tc.query, got, tc.want)
		}
	}
	for _, q := range []string{"cursor=nonsense", "cursor=" + artmesh.EncodeCursor(want[1]) + "&offset=1"} {
		resp, data := send(t, srv, key, "GET", "/v1/artifacts?"+q, nil)
		wantError(t, q, resp.StatusCode, data, 400)
		resp, data = send(t, srv, key, "GET", "/v1/shared?"+q, nil)
		wantError(t, "shared "+q, resp.StatusCode, data, 400)
	}
}

// ids returns the ids of artifacts.
func ids(as []artmesh.Artifact) []artmesh.ArtifactID {
	out := make([]artmesh.ArtifactID, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}
