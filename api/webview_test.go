package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/artmesh/artmesh/api/apitype"
	"github.com/artmesh/artmesh/api/ui"
)

// TestWebViewRoutes checks the web view as the server mounts it: its files
// need no key and carry the strict CSP, /ui leads to /ui/, and anything
// else under /ui/ is the API's 404 in its error shape.
func TestWebViewRoutes(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, tc := range []struct {
		method, path string
		status       int
		csp          string
	}{
		{"GET", "/ui/", 200, ui.CSP},
		{"GET", "/ui", 200, ui.CSP}, // the client follows the 301
		{"GET", "/ui/app.js", 200, ui.CSP},
		{"GET", "/ui/nothing-here", 404, ""},
		{"POST", "/ui/", 404, ""},
	} {
		resp, body := send(t, srv, "", tc.method, tc.path, nil)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.status, body)
			continue
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != tc.csp {
			t.Errorf("%s %s: CSP %q, want %q", tc.method, tc.path, got, tc.csp)
		}
		if tc.status == 404 {
			var e apitype.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "not_found" {
				t.Errorf("%s %s: body %s, want the not_found error shape", tc.method, tc.path, body)
			}
		}
	}
	// Without following, /ui is a permanent redirect to /ui/.
	c := *srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(srv.URL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d Location %q, want 301 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
}
