package api

import (
	"encoding/json"
	"io"
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

// TestRootRedirectsBrowsers checks GET /: a browser (Accept names
// text/html) is sent to the web view; an API client gets the API's 404.
func TestRootRedirectsBrowsers(t *testing.T) {
	srv, _ := newTestServer(t)
	c := *srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct {
		method, accept string
		status         int
		location       string
	}{
		{"GET", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", http.StatusFound, "/ui/"},
		{"HEAD", "text/html", http.StatusFound, "/ui/"},
		{"GET", "*/*", http.StatusNotFound, ""},
		{"GET", "application/json", http.StatusNotFound, ""},
		{"GET", "", http.StatusNotFound, ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+"/", nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
			t.Errorf("%s / Accept %q: %d Location %q, want %d %q", tc.method, tc.accept, resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location)
		}
		if v := resp.Header.Get("Vary"); v != "Accept" {
			t.Errorf("%s / Accept %q: Vary %q, want Accept", tc.method, tc.accept, v)
		}
		if tc.status == http.StatusNotFound {
			var e apitype.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "not_found" {
				t.Errorf("GET / Accept %q: body %s, want the not_found error shape", tc.accept, body)
			}
		}
	}
	// Any other path stays the API's 404, whatever the client accepts.
	req, _ := http.NewRequest("GET", srv.URL+"/nothing", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing as a browser: %d, want 404", resp.StatusCode)
	}
}
