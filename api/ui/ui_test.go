package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusTeapot) // a status no file answers with
	})
	h := New(notFound)
	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string
		contains     string
	}{
		{"GET", "/ui/", 200, "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"GET", "/ui/index.html", 200, "text/html; charset=utf-8", `<link rel="stylesheet" href="app.css">`},
		{"GET", "/ui/app.js", 200, "text/javascript; charset=utf-8", "sessionStorage"},
		{"GET", "/ui/app.css", 200, "text/css; charset=utf-8", "progress"},
		{"GET", "/ui/icon.svg", 200, "image/svg+xml", "<svg"},
		{"HEAD", "/ui/app.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/ui/missing.js", http.StatusTeapot, "", "nope"},
		{"GET", "/ui/static/app.js", http.StatusTeapot, "", "nope"},
		{"GET", "/other", http.StatusTeapot, "", "nope"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if !strings.Contains(rec.Body.String(), tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
			if tc.method == "HEAD" && rec.Body.Len() != 0 {
				t.Errorf("HEAD sent a body of %d bytes", rec.Body.Len())
			}
			if tc.status != 200 {
				return
			}
			want := map[string]string{
				"Content-Type":            tc.ctype,
				"Content-Security-Policy": CSP,
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-cache",
			}
			for k, v := range want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if etag := rec.Header().Get("ETag"); len(etag) != 34 {
				t.Errorf("ETag %q, want a quoted 32-digit hash", etag)
			}
		})
	}
}

// TestHandlerRevalidates checks that a browser's copy is revalidated with
// the file's ETag: 304 when it is current, the file when it is not.
func TestHandlerRevalidates(t *testing.T) {
	h := New(http.NotFoundHandler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/app.js", nil))
	etag := rec.Header().Get("ETag")
	for _, tc := range []struct {
		inm    string
		status int
	}{
		{etag, http.StatusNotModified},
		{`"0123"`, http.StatusOK},
	} {
		req := httptest.NewRequest("GET", "/ui/app.js", nil)
		req.Header.Set("If-None-Match", tc.inm)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("If-None-Match %s: status %d, want %d", tc.inm, rec.Code, tc.status)
		}
	}
}

func TestRedirect(t *testing.T) {
	rec := httptest.NewRecorder()
	Redirect(rec, httptest.NewRequest("GET", "/ui", nil))
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != Prefix {
		t.Errorf("GET /ui: %d Location %q, want 301 to %s", rec.Code, rec.Header().Get("Location"), Prefix)
	}
}

// TestCSPStrict checks the policy's parts that keep content and injected
// markup from running with the node's origin.
func TestCSPStrict(t *testing.T) {
	for _, part := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(CSP, part) {
			t.Errorf("CSP lacks %q", part)
		}
	}
	if strings.Contains(CSP, "unsafe") {
		t.Errorf("CSP allows something unsafe: %s", CSP)
	}
}

func TestAcceptsHTML(t *testing.T) {
	for _, tc := range []struct {
		accept string
		want   bool
	}{
		// What browsers send for a navigation.
		{"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", true},
		{"text/*", true},
		{"TEXT/HTML", true},
		{"application/json, text/html;q=0.1", true},
		// API clients and curl.
		{"", false},
		{"*/*", false},
		{"application/json", false},
		{"text/html;q=0", false},
		{"text/html;q=nope", false},
		{"text/plain", false},
	} {
		if got := AcceptsHTML(tc.accept); got != tc.want {
			t.Errorf("AcceptsHTML(%q) = %v, want %v", tc.accept, got, tc.want)
		}
	}
}
