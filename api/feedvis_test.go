package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// feedUntil reads the change feed as an SSE client does, from after event
// id last (sent as Last-Event-ID), until an event for which stop is true;
// it returns the events read, that one included.
func feedUntil(t *testing.T, srv *httptest.Server, key, last string, stop func(apitype.Event) bool) []apitype.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", last)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("feed: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out []apitype.Event
	var id, name string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if name == "reset" {
				t.Fatalf("feed from %s: reset %s", last, line)
			}
			var e apitype.Event
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
			if e.ID != id || e.Type != name {
				t.Fatalf("event %+v framed as id %q event %q", e, id, name)
			}
			out = append(out, e)
			if stop(e) {
				return out
			}
		}
	}
	t.Fatalf("feed ended before the awaited event (%v); read %+v", sc.Err(), out)
	return nil
}

// TestFeedAndSignedURLFollowGrants is the security trial of issue 16 over
// HTTP: an agent created again under a deleted agent's id replays the
// feed and sees nothing its namesake was shown; a group member added
// after an unshare replays the feed and sees nothing of that artifact;
// a signed URL refused after an unshare stays refused after a reshare.
func TestFeedAndSignedURLFollowGrants(t *testing.T) {
	srv, admin := newTestServer(t)
	do := func(key, method, path, body string, want int) []byte {
		t.Helper()
		resp, data := send(t, srv, key, method, path, strings.NewReader(body))
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, data, want)
		}
		return data
	}
	create := func(name, content string) artmesh.ArtifactID {
		t.Helper()
		var a artmesh.Artifact
		json.Unmarshal(do(admin, "POST", "/v1/artifacts?name="+name, content, 201), &a)
		return a.ID
	}
	share := func(verb string, id artmesh.ArtifactID, body string) {
		t.Helper()
		do(admin, "POST", "/v1/artifacts/"+string(id)+"/"+verb, body, 200)
	}
	// brief is what the test compares of the events a reader sees.
	type brief struct {
		Type string
		ID   artmesh.ArtifactID
	}
	briefs := func(evs []apitype.Event) []brief {
		out := make([]brief, len(evs))
		for i, e := range evs {
			out[i] = brief{e.Type, e.ArtifactID}
		}
		return out
	}
	sharedEvent := func(id artmesh.ArtifactID) func(apitype.Event) bool {
		return func(e apitype.Event) bool { return e.Type == "artifact.shared" && e.ArtifactID == id }
	}

	// X, shared with the first bob, who sees it in the feed.
	oldBob := createAgentKey(t, srv, admin, "bob")
	x := create("x.txt", "x")
	share("share", x, `{"agents":["bob"]}`)
	if got, want := briefs(feedUntil(t, srv, oldBob, "0", sharedEvent(x))), []brief{{"artifact.shared", x}}; !slices.Equal(got, want) {
		t.Fatalf("the first bob's feed: %+v, want %+v", got, want)
	}
	// bob is deleted and created again.
	do(admin, "DELETE", "/v1/agents/bob", "", 204)
	bob := createAgentKey(t, srv, admin, "bob")

	// Y, shared with g (no members), unshared, then carol joins g.
	do(admin, "PUT", "/v1/groups/g", `{"members":[]}`, 200)
	y := create("y.txt", "y")
	share("share", y, `{"groups":["g"]}`)
	share("unshare", y, `{"groups":["g"]}`)
	carol := createAgentKey(t, srv, admin, "carol")
	do(admin, "PUT", "/v1/groups/g", `{"members":["carol"]}`, 200)

	// W, shared with both now: the last event each should see.
	w := create("w.txt", "w")
	share("share", w, `{"agents":["bob","carol"]}`)
	for _, tc := range []struct {
		who, key string
	}{
		{"the second bob", bob},
		{"carol", carol},
	} {
		got := briefs(feedUntil(t, srv, tc.key, "0", sharedEvent(w)))
		if want := []brief{{"artifact.shared", w}}; !slices.Equal(got, want) {
			t.Errorf("%s replaying from 0 sees %+v, want %+v only", tc.who, got, want)
		}
	}

	// Z, shared with the second bob, who makes a signed URL for it.
	z := create("z.txt", "zed")
	share("share", z, `{"agents":["bob"]}`)
	signed := func() string {
		t.Helper()
		var su apitype.SignedURL
		json.Unmarshal(do(bob, "POST", "/v1/artifacts/"+string(z)+"/signed-url", `{"expires_in": 600}`, 201), &su)
		return strings.TrimPrefix(su.URL, srv.URL)
	}
	old := signed()
	if got := string(do("", "GET", old, "", 200)); got != "zed" {
		t.Fatalf("signed URL under its share: %q", got)
	}
	share("unshare", z, `{"agents":["bob"]}`)
	do("", "GET", old, "", 403)
	share("share", z, `{"agents":["bob"]}`)
	if data := do("", "GET", old, "", 403); !strings.Contains(string(data), "removed since") {
		t.Fatalf("signed URL after the reshare: %s", data)
	}
	if got := string(do("", "GET", signed(), "", 200)); got != "zed" {
		t.Fatalf("a signed URL made after the reshare: %q", got)
	}
}
