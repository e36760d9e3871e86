package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
)

// relation is what a role is to an artifact.
type relation int

const (
	stranger relation = iota // may not see it: everything is 404
	reader                   // may read it: reads work, changes are 403
	owner                    // may do everything
)

func (r relation) String() string {
	return [...]string{"stranger", "reader", "owner"}[r]
}

// right is what a route needs of its caller on the artifact it names.
type right int

const (
	needRead right = iota
	needWrite
)

// want is the status a route answers a caller with relation rel, when
// success is ok.
func (rt right) want(rel relation, ok int) int {
	switch {
	case rel == owner:
		return ok
	case rel == reader && rt == needRead:
		return ok
	case rel == reader:
		return http.StatusForbidden
	}
	return http.StatusNotFound
}

// TestAccessMatrix walks every route of API.md's artifacts, sharing and
// tokens sections as the owner (alice), a direct grantee (bob),
// a group member (carol), a former group member (erin, removed from the
// group after the share) and a stranger (dave), on an artifact shared
// with bob, one shared with the group and one not shared, and checks each
// status and error code, that failed calls change nothing, what the
// listings show, and that group changes take effect at once.
func TestAccessMatrix(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	keys := map[string]string{}
	for _, id := range []string{"alice", "bob", "carol", "dave", "erin"} {
		keys[id] = d.addAgent(t, id)
	}
	d.call(t, "PUT", "/v1/groups/team", map[string]any{"members": []string{"carol", "erin"}}, 200, nil)

	create := func(name, body string) artifact {
		var a artifact
		d.callAs(t, keys["alice"], "POST", "/v1/artifacts?name="+name, body, 201, &a, "Content-Type", "text/plain")
		return a
	}
	artBob := create("for-bob.txt", "shared with bob")
	artTeam := create("for-team.txt", "shared with the team")
	artPriv := create("private.txt", "alice only")
	d.callAs(t, keys["alice"], "POST", "/v1/artifacts/"+artBob.ID+"/share", map[string]any{"agents": []string{"bob"}}, 200, nil)
	var acc struct {
		Owner  string   `json:"owner"`
		Agents []string `json:"agents"`
		Groups []string `json:"groups"`
	}
	d.callAs(t, keys["alice"], "POST", "/v1/artifacts/"+artTeam.ID+"/share", map[string]any{"groups": []string{"team"}}, 200, &acc)
	if acc.Owner != "alice" || len(acc.Agents) != 0 || fmt.Sprint(acc.Groups) != "[team]" {
		t.Fatalf("share answered %+v", acc)
	}

	// erin reads through the group, and mints a signed URL, while she is
	// in it.
	d.callAs(t, keys["erin"], "GET", "/v1/artifacts/"+artTeam.ID, nil, 200, nil)
	checkShared(t, d, keys["erin"], "erin in team", artTeam.ID)
	var erinURL signedURL
	d.callAs(t, keys["erin"], "POST", "/v1/artifacts/"+artTeam.ID+"/signed-url", map[string]any{}, 201, &erinURL)
	if code, _ := d.status(t, "", "GET", capPath(erinURL.Token), nil); code != 200 {
		t.Fatalf("erin's signed URL answered %d while she is in the group", code)
	}

	// Removing erin from the group takes effect at once: for her reads and
	// for the URL she minted.
	d.call(t, "PUT", "/v1/groups/team", map[string]any{"members": []string{"carol"}}, 200, nil)
	if code, body := d.status(t, keys["erin"], "GET", "/v1/artifacts/"+artTeam.ID, nil); code != 404 {
		t.Fatalf("erin, removed from the group, reads the team's artifact: %d %s", code, body)
	}
	if code, body := d.status(t, "", "GET", capPath(erinURL.Token), nil); code != 403 || errorCode(body) != "permission_denied" {
		t.Fatalf("erin's signed URL after her removal from the group: %d %s, want 403 permission_denied", code, body)
	}
	// Adding dave takes effect at once too; then he goes again.
	d.call(t, "PUT", "/v1/groups/team", map[string]any{"members": []string{"carol", "dave"}}, 200, nil)
	d.callAs(t, keys["dave"], "GET", "/v1/artifacts/"+artTeam.ID+"/content", nil, 200, nil)
	checkShared(t, d, keys["dave"], "dave added to team", artTeam.ID)
	d.call(t, "PUT", "/v1/groups/team", map[string]any{"members": []string{"carol"}}, 200, nil)
	d.callAs(t, keys["dave"], "GET", "/v1/artifacts/"+artTeam.ID+"/content", nil, 404, nil)

	// Listings: GET /v1/artifacts shows the caller's own, GET /v1/shared
	// what others shared with the caller, with the owner.
	for _, tc := range []struct {
		role   string
		own    []string
		shared []string
	}{
		{"alice", []string{artBob.ID, artTeam.ID, artPriv.ID}, nil},
		{"bob", nil, []string{artBob.ID}},
		{"carol", nil, []string{artTeam.ID}},
		{"dave", nil, nil},
		{"erin", nil, nil},
	} {
		var page artifactPage
		d.callAs(t, keys[tc.role], "GET", "/v1/artifacts", nil, 200, &page)
		if got, want := ids(page.Items), sorted(tc.own); got != want || page.total() != len(tc.own) {
			t.Errorf("GET /v1/artifacts as %s: %s (total %d), want %s", tc.role, got, page.total(), want)
		}
		checkShared(t, d, keys[tc.role], tc.role, tc.shared...)
		var cliOwn, cliShared artifactPage
		mustJSON(t, d.cliAs(t, keys[tc.role], "ls", "--json"), &cliOwn)
		mustJSON(t, d.cliAs(t, keys[tc.role], "shared", "--json"), &cliShared)
		if ids(cliOwn.Items) != sorted(tc.own) || ids(cliShared.Items) != sorted(tc.shared) {
			t.Errorf("as %s the CLI lists own %s and shared %s", tc.role, ids(cliOwn.Items), ids(cliShared.Items))
		}
		for _, a := range cliShared.Items {
			if a.Owner != "alice" {
				t.Errorf("artmesh shared as %s: %s has owner %q", tc.role, a.ID, a.Owner)
			}
		}
	}

	// Each role's relation to each artifact.
	arts := []struct {
		name string
		a    artifact
		rel  map[string]relation
	}{
		{"shared-with-bob", artBob, map[string]relation{"alice": owner, "bob": reader}},
		{"shared-with-team", artTeam, map[string]relation{"alice": owner, "carol": reader}},
		{"unshared", artPriv, map[string]relation{"alice": owner}},
	}
	// Non-owners go first, so that the owner's changes (a new version, a
	// deletion) come after everyone else was refused.
	roles := []string{"bob", "carol", "erin", "dave", "alice"}

	// Uploads naming each artifact, and confirms of alice's upload.
	type route struct {
		name   string
		method string
		path   string // %s is the artifact id
		body   any
		right  right
		ok     int
	}
	routes := []route{
		{"get", "GET", "/v1/artifacts/%s", nil, needRead, 200},
		{"content", "GET", "/v1/artifacts/%s/content", nil, needRead, 200},
		{"content version 1", "GET", "/v1/artifacts/%s/content?version=1", nil, needRead, 200},
		{"content range", "GET", "/v1/artifacts/%s/content", nil, needRead, 206},
		{"versions", "GET", "/v1/artifacts/%s/versions", nil, needRead, 200},
		{"access", "GET", "/v1/artifacts/%s/access", nil, needWrite, 200}, // the owner only, as sharing (rights.go)
		{"signed-url", "POST", "/v1/artifacts/%s/signed-url", map[string]any{"expires_in": 600}, needRead, 201},
		{"update", "PUT", "/v1/artifacts/%s/content", "a new version", needWrite, 201},
		{"share", "POST", "/v1/artifacts/%s/share", map[string]any{"agents": []string{"admin"}}, needWrite, 200},
		{"unshare", "POST", "/v1/artifacts/%s/unshare", map[string]any{"agents": []string{"admin"}}, needWrite, 200},
		{"upload new version", "POST", "/v1/uploads", nil, needWrite, 201},
		{"delete version", "DELETE", "/v1/artifacts/%s/versions/1", nil, needWrite, 204},
		{"delete", "DELETE", "/v1/artifacts/%s", nil, needWrite, 204},
	}
	minted := map[string]signedURL{} // role/artifact -> a URL that role minted
	rows := 0
	for _, rt := range routes {
		for _, art := range arts {
			before := d.snapshotOf(t, keys["alice"], art.a.ID)
			for _, role := range roles {
				rel := art.rel[role]
				want := rt.right.want(rel, rt.ok)
				name := fmt.Sprintf("%s/%s/%s(%s)", rt.name, art.name, role, rel)
				path := rt.path
				if strings.Contains(path, "%s") {
					path = fmt.Sprintf(path, art.a.ID)
				}
				body := rt.body
				var headers []string
				switch rt.name {
				case "content range":
					headers = []string{"Range", "bytes=1-3"}
				case "upload new version":
					body = map[string]any{"size_bytes": 3, "artifact_id": art.a.ID}
				}
				code, data := d.status(t, keys[role], rt.method, path, body, headers...)
				rows++
				if code != want {
					t.Errorf("%s: %s %s answered %d, want %d: %s", name, rt.method, path, code, want, data)
					continue
				}
				switch {
				case want == 403 && errorCode(data) != "permission_denied", want == 404 && errorCode(data) != "not_found":
					t.Errorf("%s: %d with body %s, want the matching error code", name, code, data)
				case rt.name == "signed-url" && want == 201:
					var u signedURL
					if err := json.Unmarshal(data, &u); err != nil || u.Token == "" || u.TokenID == "" || !strings.HasSuffix(u.URL, "/v1/cap/"+u.Token) {
						t.Errorf("%s: answered %s", name, data)
					}
					minted[role+"/"+art.name] = u
				case rt.name == "get" && want == 200:
					var a artifact
					if json.Unmarshal(data, &a) != nil || a.ID != art.a.ID || a.Owner != "alice" {
						t.Errorf("%s: answered %s", name, data)
					}
				case rt.name == "content range" && want == 206:
					if string(data) != readContent(art.a)[1:4] {
						t.Errorf("%s: range answered %q", name, data)
					}
				}
				if rel != owner {
					// A refused or read-only call changes nothing.
					if after := d.snapshotOf(t, keys["alice"], art.a.ID); after != before {
						t.Errorf("%s: the artifact changed:\nbefore %s\nafter  %s", name, before, after)
					}
				}
			}
		}
	}

	t.Logf("checked %d route x artifact x role rows", rows)

	// Every artifact is gone now (the owner deleted them last).
	for _, art := range arts {
		for _, role := range roles {
			if code, _ := d.status(t, keys[role], "GET", "/v1/artifacts/"+art.a.ID, nil); code != 404 {
				t.Errorf("%s after delete as %s: %d", art.name, role, code)
			}
		}
	}
	// The signed URLs minted by readers worked until the delete, and now
	// answer 404.
	if len(minted) != 5 {
		t.Errorf("%d signed URLs were minted, want 5 (alice x3, bob, carol): %v", len(minted), keysOf(minted))
	}
	for who, u := range minted {
		if code, body := d.status(t, "", "GET", capPath(u.Token), nil); code != 404 || errorCode(body) != "not_found" {
			t.Errorf("signed URL of %s after the artifact was deleted: %d %s, want 404 not_found", who, code, body)
		}
	}

	// Anyone may create artifacts and snippets; they are the creator's own
	// and nobody else's.
	for _, role := range roles {
		var a, sn artifact
		d.callAs(t, keys[role], "POST", "/v1/artifacts?name="+role+".txt", "mine", 201, &a)
		d.callAs(t, keys[role], "POST", "/v1/snippets", map[string]any{"name": role + ".json", "content": map[string]any{"who": role}}, 201, &sn)
		if a.Owner != role || sn.Owner != role {
			t.Errorf("%s created artifacts owned by %q and %q", role, a.Owner, sn.Owner)
		}
		var page artifactPage
		d.callAs(t, keys[role], "GET", "/v1/artifacts", nil, 200, &page)
		if got, want := ids(page.Items), sorted([]string{a.ID, sn.ID}); got != want {
			t.Errorf("GET /v1/artifacts as %s: %s, want %s", role, got, want)
		}
		checkShared(t, d, keys[role], role+" after the deletes")
		for _, other := range roles {
			if other != role {
				if code, _ := d.status(t, keys[other], "GET", "/v1/artifacts/"+a.ID, nil); code != 404 {
					t.Errorf("%s reads %s's new artifact: %d", other, role, code)
				}
			}
		}
	}

	t.Run("tokens", func(t *testing.T) { testTokenRevokeRights(t, d, keys) })
	t.Run("uploads", func(t *testing.T) { testUploadRights(t, d, keys) })
}

// testTokenRevokeRights checks DELETE /v1/tokens/{id}: the granting agent
// or an admin may; anyone else gets 403 for a known id and 404 for an
// unknown one.
func testTokenRevokeRights(t *testing.T, d *daemon, keys map[string]string) {
	var a artifact
	d.callAs(t, keys["alice"], "POST", "/v1/artifacts?name=tok.txt", "token target", 201, &a)
	d.callAs(t, keys["alice"], "POST", "/v1/artifacts/"+a.ID+"/share", map[string]any{"agents": []string{"bob"}}, 200, nil)
	mint := func(role string) signedURL {
		var u signedURL
		d.callAs(t, keys[role], "POST", "/v1/artifacts/"+a.ID+"/signed-url", nil, 201, &u)
		return u
	}
	aliceURL, bobURL, bobURL2 := mint("alice"), mint("bob"), mint("bob")
	for _, tc := range []struct {
		who, tokenID string
		want         int
		code         string
	}{
		{"bob", aliceURL.TokenID, 403, "permission_denied"},
		{"dave", aliceURL.TokenID, 403, "permission_denied"},
		{"carol", bobURL.TokenID, 403, "permission_denied"},
		{"dave", "tok_aaaaaaaaaaaaaaaaaaaaaaaaaa", 404, "not_found"},
		{"dave", "nonsense", 404, "not_found"},
		{"admin", "tok_aaaaaaaaaaaaaaaaaaaaaaaaaa", 404, "not_found"},
	} {
		key := keys[tc.who]
		if tc.who == "admin" {
			key = d.key
		}
		if code, body := d.status(t, key, "DELETE", "/v1/tokens/"+tc.tokenID, nil); code != tc.want || errorCode(body) != tc.code {
			t.Errorf("DELETE /v1/tokens/%s as %s: %d %s, want %d %s", tc.tokenID, tc.who, code, body, tc.want, tc.code)
		}
	}
	for _, u := range []signedURL{aliceURL, bobURL, bobURL2} {
		if code, _ := d.status(t, "", "GET", capPath(u.Token), nil); code != 200 {
			t.Errorf("a refused revoke broke token %s: %d", u.TokenID, code)
		}
	}
	// The granter, the artifact's owner (who lists its signed URLs, and
	// could end bob's by unsharing), and an admin, may.
	d.callAs(t, keys["alice"], "DELETE", "/v1/tokens/"+aliceURL.TokenID, nil, 204, nil)
	d.callAs(t, keys["alice"], "DELETE", "/v1/tokens/"+bobURL.TokenID, nil, 204, nil)
	d.call(t, "DELETE", "/v1/tokens/"+bobURL2.TokenID, nil, 204, nil)
	for _, u := range []signedURL{aliceURL, bobURL, bobURL2} {
		if code, body := d.status(t, "", "GET", capPath(u.Token), nil); code != 403 || errorCode(body) != "permission_denied" {
			t.Errorf("revoked token %s: %d %s, want 403 permission_denied", u.TokenID, code, body)
		}
	}
}

// testUploadRights checks that an upload session is its owner's alone:
// others get 404 on GET, confirm and DELETE.
func testUploadRights(t *testing.T, d *daemon, keys map[string]string) {
	var up uploadSession
	d.callAs(t, keys["alice"], "POST", "/v1/uploads", map[string]any{"name": "u.txt", "content_type": "text/plain", "size_bytes": 5}, 201, &up)
	putUpload(t, up.URL, strings.NewReader("hello"), "", 200)
	for _, role := range []string{"bob", "carol", "dave", "erin"} {
		for _, call := range [][2]string{{"GET", "/v1/uploads/" + up.ID}, {"POST", "/v1/uploads/" + up.ID + "/confirm"}, {"DELETE", "/v1/uploads/" + up.ID}} {
			if code, body := d.status(t, keys[role], call[0], call[1], nil); code != 404 || errorCode(body) != "not_found" {
				t.Errorf("%s %s as %s: %d %s, want 404 not_found", call[0], call[1], role, code, body)
			}
		}
	}
	var st uploadStatus
	d.callAs(t, keys["alice"], "GET", "/v1/uploads/"+up.ID, nil, 200, &st)
	if st.State != "received" || st.ReceivedBytes != 5 {
		t.Fatalf("the upload after others poked at it: %+v", st)
	}
	var a artifact
	d.callAs(t, keys["alice"], "POST", "/v1/uploads/"+up.ID+"/confirm", map[string]any{}, 201, &a)
	if a.Owner != "alice" || a.Name != "u.txt" || a.SizeBytes != 5 {
		t.Fatalf("confirm made %+v", a)
	}
}

// snapshotOf returns what the owner sees of an artifact (the object, its
// versions and access), as text to compare; "gone" once it is deleted.
func (d *daemon) snapshotOf(t *testing.T, key, id string) string {
	t.Helper()
	code, a := d.status(t, key, "GET", "/v1/artifacts/"+id, nil)
	if code == 404 {
		return "gone"
	}
	_, vs := d.status(t, key, "GET", "/v1/artifacts/"+id+"/versions", nil)
	_, acc := d.status(t, key, "GET", "/v1/artifacts/"+id+"/access", nil)
	return string(a) + string(vs) + string(acc)
}

// checkShared checks that GET /v1/shared as key shows exactly the
// artifacts want, each with its owner (alice, who shares everything in
// these tests).
func checkShared(t *testing.T, d *daemon, key, who string, want ...string) {
	t.Helper()
	var page artifactPage
	d.callAs(t, key, "GET", "/v1/shared", nil, 200, &page)
	if got, w := ids(page.Items), sorted(want); got != w || page.Total != nil {
		t.Errorf("GET /v1/shared as %s: %s (total %d), want %s and no total", who, got, page.total(), w)
	}
	for _, a := range page.Items {
		if a.Owner != "alice" {
			t.Errorf("GET /v1/shared as %s: %s has owner %q, want alice", who, a.ID, a.Owner)
		}
	}
}

// readContent is the body each artifact of the matrix was created with.
func readContent(a artifact) string {
	switch a.Name {
	case "for-bob.txt":
		return "shared with bob"
	case "for-team.txt":
		return "shared with the team"
	}
	return "alice only"
}

func ids(as []artifact) string {
	var s []string
	for _, a := range as {
		s = append(s, a.ID)
	}
	return sorted(s)
}

func sorted(s []string) string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return fmt.Sprint(s)
}

func keysOf[V any](m map[string]V) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// signedURL is the answer of POST /v1/artifacts/{id}/signed-url.
type signedURL struct {
	URL       string `json:"url"`
	Token     string `json:"token"`
	TokenID   string `json:"token_id"`
	ExpiresAt string `json:"expires_at"`
}

// capPath is the path of a capability token's download.
func capPath(token string) string { return "/v1/cap/" + token }
