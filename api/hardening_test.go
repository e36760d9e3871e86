package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// sendHost is send with the request's Host header set to host.
func sendHost(t *testing.T, srv *httptest.Server, host, key, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Host = host
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// deepMetadata is a metadata object nested depth levels deep, the object
// itself being the first.
func deepMetadata(depth int) string {
	return `{"k":` + strings.Repeat("[", depth-1) + "1" + strings.Repeat("]", depth-1) + "}"
}

// TestMetadataDepthOnEveryWritePath gives metadata at the depth cap and one
// past it to every route that takes metadata: the first is stored, the
// second is a 400 and stores nothing.
func TestMetadataDepthOnEveryWritePath(t *testing.T) {
	f := newReplicationFixture(t)
	path := "/v1/artifacts/" + f.id
	for _, tc := range []struct {
		name string
		call func(meta string) (*http.Response, []byte)
	}{
		{"create, header", func(meta string) (*http.Response, []byte) {
			return send(t, f.srv, f.admin, "POST", "/v1/artifacts?name=h.txt", strings.NewReader("x"), MetadataHeader, meta)
		}},
		{"create, multipart", func(meta string) (*http.Response, []byte) {
			body := "--B\r\nContent-Disposition: form-data; name=\"meta\"\r\n\r\n" +
				`{"name":"m.txt","metadata":` + meta + `}` +
				"\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.txt\"\r\n\r\nx\r\n--B--\r\n"
			return send(t, f.srv, f.admin, "POST", "/v1/artifacts", strings.NewReader(body), "Content-Type", "multipart/form-data; boundary=B")
		}},
		{"snippet", func(meta string) (*http.Response, []byte) {
			return send(t, f.srv, f.admin, "POST", "/v1/snippets", strings.NewReader(`{"name":"s.json","content":1,"metadata":`+meta+`}`))
		}},
		{"update, header", func(meta string) (*http.Response, []byte) {
			return send(t, f.srv, f.admin, "PUT", path+"/content", strings.NewReader("y"), MetadataHeader, meta)
		}},
		{"upload create", func(meta string) (*http.Response, []byte) {
			return send(t, f.srv, f.admin, "POST", "/v1/uploads", strings.NewReader(`{"name":"u.bin","size_bytes":1,"metadata":`+meta+`}`))
		}},
		{"upload of a new version", func(meta string) (*http.Response, []byte) {
			return send(t, f.srv, f.admin, "POST", "/v1/uploads", strings.NewReader(`{"artifact_id":"`+f.id+`","size_bytes":1,"metadata":`+meta+`}`))
		}},
	} {
		resp, data := tc.call(deepMetadata(artmesh.MaxMetadataDepth))
		wantError(t, tc.name+", at the cap", resp.StatusCode, data, 201)
		resp, data = tc.call(deepMetadata(artmesh.MaxMetadataDepth + 1))
		wantError(t, tc.name+", one past the cap", resp.StatusCode, data, 400)
		resp, data = tc.call(deepMetadata(9990))
		wantError(t, tc.name+", 9,990 levels", resp.StatusCode, data, 400)
	}
	// What was stored is the artifact and the snippet, two creates and
	// the fixture's: no deep metadata anywhere.
	resp, data := send(t, f.srv, f.admin, "GET", "/v1/artifacts", nil)
	var page artmesh.Page[artmesh.Artifact]
	if resp.StatusCode != 200 || json.Unmarshal(data, &page) != nil || len(page.Items) != 4 {
		t.Fatalf("list: %d %s, want 4 artifacts", resp.StatusCode, data)
	}
	for _, a := range page.Items {
		for _, v := range a.Metadata {
			if len(v) > 2*artmesh.MaxMetadataDepth+8 {
				t.Errorf("artifact %s has metadata %s", a.ID, v)
			}
		}
	}
}

// TestQueryLimits checks the cap on metadata filters and on query
// parameters: past them, and past Go's own limit of 10,000 parameters
// (where the query would silently parse as empty), a listing is a 400,
// never a listing without its filters and limit.
func TestQueryLimits(t *testing.T) {
	f := newReplicationFixture(t)
	for i := 0; i < 2; i++ {
		if resp, data := send(t, f.srv, f.admin, "POST", "/v1/artifacts?name=more", strings.NewReader("x")); resp.StatusCode != 201 {
			t.Fatalf("create: %d %s", resp.StatusCode, data)
		}
	}
	filters := func(n int) string {
		q := make([]string, n)
		for i := range q {
			q[i] = fmt.Sprintf("metadata.k%d=v", i%7)
		}
		return strings.Join(q, "&")
	}
	for _, tc := range []struct {
		name, query string
		status      int
	}{
		{"limit alone", "limit=1", 200},
		{"filters at the cap", filters(artmesh.MaxMetaFilters) + "&limit=1", 200},
		{"one filter past the cap", filters(artmesh.MaxMetaFilters+1) + "&limit=1", 400},
		{"9,999 filters", filters(9999), 400},
		{"past Go's 10,000 parameters", "limit=1&" + filters(10_000), 400},
		{"past Go's 10,000 parameters, no filters", "limit=1" + strings.Repeat("&", 10_000), 400},
		{"a semicolon, which Go would drop", "limit=1;name=x", 400},
		{"a bad escape, which Go would drop", "limit=1&name=%zz", 400},
	} {
		for _, route := range []string{"/v1/artifacts", "/v1/shared"} {
			resp, data := send(t, f.srv, f.admin, "GET", route+"?"+tc.query, nil)
			wantError(t, route+": "+tc.name, resp.StatusCode, data, tc.status)
			if resp.StatusCode == 200 {
				var page artmesh.Page[artmesh.Artifact]
				if json.Unmarshal(data, &page) != nil || page.Limit != 1 {
					t.Errorf("%s: %s: limit not applied: %s", route, tc.name, data)
				}
			}
		}
	}
	// The cap on parameters holds on every route, not only listings.
	resp, data := send(t, f.srv, f.admin, "GET", "/v1/artifacts/"+f.id+"?"+strings.Repeat("consistent=true&", 10_001), nil)
	wantError(t, "get with 10,001 parameters", resp.StatusCode, data, 400)
}

// TestHostHeader checks the defence against DNS rebinding: only the
// node's own API address and loopback names with its port are accepted as
// Host, and the URLs that carry tokens are built from the node's API
// address whatever Host the request named.
func TestHostHeader(t *testing.T) {
	srv, key := newTestServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://") // 127.0.0.1:PORT, the API address
	_, port, _ := strings.Cut(addr, ":")
	for _, tc := range []struct {
		host   string
		status int
	}{
		{addr, 200},
		{"localhost:" + port, 200},
		{"LOCALHOST:" + port, 200},
		{"[::1]:" + port, 200},
		{"evil.example:" + port, 400},
		{"rebind.attacker.test", 400},
		{"localhost", 400},                // port 80, not the API's
		{"localhost:1" + port, 400},       // another port
		{"127.0.0.1.nip.io:" + port, 400}, // a name, however it resolves
	} {
		for _, path := range []string{"/v1/node", "/healthz", "/v1/cap/x", "/v1/uploads/upl_x/content?token=x"} {
			method := "GET"
			if strings.HasPrefix(path, "/v1/uploads/") {
				method = "HEAD"
			}
			resp, data := sendHost(t, srv, tc.host, key, method, path, "")
			want := tc.status
			if want == 200 && strings.HasPrefix(path, "/v1/cap/") {
				want = 401 // the host passes; the token does not
			}
			if want == 200 && method == "HEAD" {
				want = 401
			}
			if method == "HEAD" {
				if resp.StatusCode != want {
					t.Errorf("Host %q, HEAD %s: %d, want %d", tc.host, path, resp.StatusCode, want)
				}
				continue
			}
			wantError(t, fmt.Sprintf("Host %q, %s", tc.host, path), resp.StatusCode, data, want)
		}
	}

	resp, data := send(t, srv, key, "POST", "/v1/artifacts?name=h.txt", strings.NewReader("hosted"))
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, data)
	}
	var a artmesh.Artifact
	json.Unmarshal(data, &a)
	for _, host := range []string{addr, "localhost:" + port, "[::1]:" + port} {
		resp, data = sendHost(t, srv, host, key, "POST", "/v1/artifacts/"+string(a.ID)+"/signed-url", "")
		var su apitype.SignedURL
		if resp.StatusCode != 201 || json.Unmarshal(data, &su) != nil {
			t.Fatalf("signed-url via %s: %d %s", host, resp.StatusCode, data)
		}
		if want := "http://" + addr + "/v1/cap/" + su.Token; su.URL != want {
			t.Errorf("signed URL via Host %s: %s, want %s", host, su.URL, want)
		}
		resp, data = sendHost(t, srv, host, key, "POST", "/v1/uploads", `{"name":"u.bin","size_bytes":1}`)
		var up apitype.Upload
		if resp.StatusCode != 201 || json.Unmarshal(data, &up) != nil {
			t.Fatalf("upload via %s: %d %s", host, resp.StatusCode, data)
		}
		if want := "http://" + addr + "/v1/uploads/" + up.ID + "/content?token=" + url.QueryEscape(up.Token); up.URL != want {
			t.Errorf("upload URL via Host %s: %s, want %s", host, up.URL, want)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	for _, tc := range []struct {
		api, host string
		ok        bool
	}{
		{"http://127.0.0.1:7480", "127.0.0.1:7480", true},
		{"http://127.0.0.1:7480", "localhost:7480", true},
		{"http://127.0.0.1:7480", "[::1]:7480", true},
		{"http://127.0.0.1:7480", "127.0.0.1:7481", false},
		{"http://127.0.0.1:7480", "127.0.0.1", false},
		{"http://127.0.0.1:7480", "attacker.test:7480", false},
		{"http://127.0.0.1:7480", "192.168.1.5:7480", false},
		{"http://127.0.0.1:80", "localhost", true}, // port 80 may be left out
		{"http://192.168.1.5:7480", "192.168.1.5:7480", true},
		{"http://192.168.1.5:7480", "localhost:7480", true},
		{"http://192.168.1.5:7480", "192.168.1.6:7480", false},
		{"http://192.168.1.5:7480", "node.lan:7480", false},
		// Listening on every interface, any IP literal with the port is
		// the node itself; a name still is not (rebinding needs a name).
		{"http://0.0.0.0:7480", "192.168.1.5:7480", true},
		{"http://0.0.0.0:7480", "localhost:7480", true},
		{"http://0.0.0.0:7480", "0.0.0.0:7480", true},
		{"http://0.0.0.0:7480", "node.lan:7480", false},
		{"http://0.0.0.0:7480", "192.168.1.5:80", false},
		{"http://[::]:7480", "[fe80::1]:7480", true},
		{"http://[::]:7480", "10.0.0.1:7480", true},
		{"http://[::]:7480", "attacker.test:7480", false},
		{"http://127.0.0.1:7480", "", false},
		{"http://127.0.0.1:7480", "localhost:7480:1", false},
	} {
		if got := hostAllowed(tc.host, false, tc.api); got != tc.ok {
			t.Errorf("API %s, Host %q: allowed %v, want %v", tc.api, tc.host, got, tc.ok)
		}
	}
}

func TestTokenBaseURL(t *testing.T) {
	for api, want := range map[string]string{
		"http://127.0.0.1:7480": "http://127.0.0.1:7480",
		"http://10.1.2.3:7480":  "http://10.1.2.3:7480",
		"http://0.0.0.0:7480":   "http://127.0.0.1:7480",
		"http://[::]:7480":      "http://[::1]:7480",
	} {
		if got := tokenBaseURL(api); got != want {
			t.Errorf("tokenBaseURL(%s) = %s, want %s", api, got, want)
		}
	}
}

// TestAccessListOwnerOnly checks that the access list is the owner's to
// see (rights.go: Share covers seeing it): a grantee may read the
// artifact but not see whom else it is shared with.
func TestAccessListOwnerOnly(t *testing.T) {
	f := newReplicationFixture(t)
	path := "/v1/artifacts/" + f.id + "/access"
	for _, tc := range []struct {
		name, key string
		status    int
	}{
		{"owner", f.admin, 200},
		{"grantee", f.bob, 403},
		{"stranger", f.carol, 404},
		{"no key", "", 401},
	} {
		resp, data := send(t, f.srv, tc.key, "GET", path, nil)
		wantError(t, tc.name, resp.StatusCode, data, tc.status)
		if resp.StatusCode == 200 {
			var acc artmesh.Access
			if json.Unmarshal(data, &acc) != nil || acc.Owner != "admin" || len(acc.Agents) != 1 || acc.Agents[0] != "bob" {
				t.Errorf("owner's access list: %s", data)
			}
		}
	}
	// A grantee still reads the artifact itself.
	resp, data := send(t, f.srv, f.bob, "GET", "/v1/artifacts/"+f.id, nil)
	wantError(t, "grantee reads the artifact", resp.StatusCode, data, 200)
	// An admin that is neither owner nor grantee does not see it either.
	dora := createAgentKey(t, f.srv, f.admin, "dora")
	resp, data = send(t, f.srv, dora, "POST", "/v1/artifacts?name=dora.txt", strings.NewReader("d"))
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, data)
	}
	var a artmesh.Artifact
	json.Unmarshal(data, &a)
	resp, data = send(t, f.srv, f.admin, "GET", "/v1/artifacts/"+string(a.ID)+"/access", nil)
	wantError(t, "admin, not the owner", resp.StatusCode, data, 404)
}

// TestNamesWithControls checks that names with C1 controls or
// bidirectional overrides are refused on every route that names an
// artifact.
func TestNamesWithControls(t *testing.T) {
	srv, key := newTestServer(t)
	for _, name := range []string{
		"invoice\u202Efdp.exe", "a\u202Ab", "a\u202Bb", "a\u202Cb", "a\u202Db",
		"a\u2066b", "a\u2067b", "a\u2068b", "a\u2069b",
		"c1\u0080", "c1\u0085", "c1\u009F",
	} {
		js, _ := json.Marshal(name)
		for _, tc := range []struct {
			what string
			call func() (*http.Response, []byte)
		}{
			{"create", func() (*http.Response, []byte) {
				return send(t, srv, key, "POST", "/v1/artifacts?name="+url.QueryEscape(name), strings.NewReader("x"))
			}},
			{"multipart", func() (*http.Response, []byte) {
				body := "--B\r\nContent-Disposition: form-data; name=\"meta\"\r\n\r\n" + `{"name":` + string(js) + `}` +
					"\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nx\r\n--B--\r\n"
				return send(t, srv, key, "POST", "/v1/artifacts", strings.NewReader(body), "Content-Type", "multipart/form-data; boundary=B")
			}},
			{"snippet", func() (*http.Response, []byte) {
				return send(t, srv, key, "POST", "/v1/snippets", strings.NewReader(`{"name":`+string(js)+`,"content":1}`))
			}},
			{"upload", func() (*http.Response, []byte) {
				return send(t, srv, key, "POST", "/v1/uploads", strings.NewReader(`{"name":`+string(js)+`,"size_bytes":1}`))
			}},
		} {
			resp, data := tc.call()
			wantError(t, fmt.Sprintf("%s %q", tc.what, name), resp.StatusCode, data, 400)
		}
	}
	// Right-to-left text itself is a fine name.
	resp, data := send(t, srv, key, "POST", "/v1/artifacts?name="+url.QueryEscape("تقرير.pdf"), strings.NewReader("x"))
	wantError(t, "an Arabic name", resp.StatusCode, data, 201)
	// Agent ids and group names are letters, digits and ._@- already.
	resp, data = send(t, srv, key, "POST", "/v1/agents", strings.NewReader(`{"id":"bob\u202e"}`))
	wantError(t, "agent id with an override", resp.StatusCode, data, 400)
	resp, data = send(t, srv, key, "PUT", "/v1/groups/"+url.PathEscape("g\u0085"), strings.NewReader(`{"members":[]}`))
	wantError(t, "group name with a C1 control", resp.StatusCode, data, 400)
}

// TestContentSecurityPolicy checks that every response that carries
// content says Content-Security-Policy: sandbox, so content opened in a
// browser runs without the API's origin.
func TestContentSecurityPolicy(t *testing.T) {
	srv, key := newTestServer(t)
	resp, data := send(t, srv, key, "POST", "/v1/artifacts?name=page.html", strings.NewReader("<script>alert(1)</script>"), "Content-Type", "text/html")
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, data)
	}
	var a artmesh.Artifact
	json.Unmarshal(data, &a)
	resp, data = send(t, srv, key, "POST", "/v1/artifacts/"+string(a.ID)+"/signed-url", nil)
	var su apitype.SignedURL
	if resp.StatusCode != 201 || json.Unmarshal(data, &su) != nil {
		t.Fatalf("signed-url: %d %s", resp.StatusCode, data)
	}
	content := "/v1/artifacts/" + string(a.ID) + "/content"
	capPath := strings.TrimPrefix(su.URL, srv.URL)
	for _, tc := range []struct {
		what, key, method, path string
		headers                 []string
		status                  int
	}{
		{"content", key, "GET", content, nil, 200},
		{"content, HEAD", key, "HEAD", content, nil, 200},
		{"content, a range", key, "GET", content, []string{"Range", "bytes=0-3"}, 206},
		{"content, not modified", key, "GET", content, []string{"If-None-Match", `"` + a.CID + `"`}, 304},
		{"content of a version", key, "GET", content + "?version=1", nil, 200},
		{"signed URL", "", "GET", capPath, nil, 200},
		{"signed URL, HEAD", "", "HEAD", capPath, nil, 200},
		{"signed URL, a range", "", "GET", capPath, []string{"Range", "bytes=1-"}, 206},
	} {
		resp, _ := send(t, srv, tc.key, tc.method, tc.path, nil, tc.headers...)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.what, resp.StatusCode, tc.status)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != "sandbox" {
			t.Errorf("%s: Content-Security-Policy %q, want sandbox", tc.what, got)
		}
	}
}
