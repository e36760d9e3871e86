// Package ui is the node's web view, served at /ui/: one page of plain
// HTML, CSS and JavaScript, embedded in the binary, so that a node needs no
// build step and no Node.js to show it.
//
// The page signs in with an agent's API key, which it keeps in the tab's
// session storage only, and calls the node's /v1 API with that key in an
// Authorization: Bearer header, never in a URL. The static files need no
// key. They are served with a strict Content-Security-Policy (scripts,
// styles and fetches from this origin only, no inline script or style, no
// framing), nosniff, and Cache-Control: no-cache with a content ETag, so a
// browser revalidates each load and a new binary's files show at once.
//
// Content is never rendered inside the page: a download asks the node for a
// short-lived signed URL and follows it as a download, and the content
// routes answer with Content-Disposition: attachment, nosniff and a sandbox
// CSP.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is the path the web view is served under.
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every file of the web view: only
// this origin's scripts, styles, images and fetches; no inline script or
// style, no plugins, no frames in or out, no forms posted anywhere.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; frame-src 'none'; frame-ancestors 'none'; " +
	"base-uri 'none'; form-action 'none'"

// file is one embedded file, ready to serve.
type file struct {
	data  []byte
	ctype string
	etag  string
}

// Handler serves the web view's files under Prefix. It answers GET and
// HEAD; a path that names no file goes to notFound.
type Handler struct {
	files    map[string]file // by path under Prefix; "" is index.html
	notFound http.Handler
}

// New returns the web view's handler; notFound answers paths that name no
// file of it (the API's 404 in its error shape).
func New(notFound http.Handler) *Handler {
	h := &Handler{files: map[string]file{}, notFound: notFound}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the folder
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.files[p] = file{data: data, ctype: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // reading an embedded FS does not fail
	}
	h.files[""] = h.files["index.html"]
	return h
}

// ServeHTTP serves one file of the web view.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	f, found := h.files[name]
	if !ok || !found {
		h.notFound.ServeHTTP(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Content-Type", f.ctype)
	hd.Set("ETag", f.etag)
	// ServeContent answers If-None-Match with 304 and HEAD without a body.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}

// Root answers GET / (and HEAD): a browser, whose Accept names text/html,
// is sent to the web view with 302 Found; any other client (an API client
// or curl, which send */* or application/json) gets notFound, the API's
// 404 in its error shape, so that a typo in an API base URL stays a clear
// error rather than an HTML page. The answer varies with Accept.
func Root(notFound http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept")
		if !AcceptsHTML(r.Header.Get("Accept")) {
			notFound.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		http.Redirect(w, r, Prefix, http.StatusFound)
	})
}

// AcceptsHTML reports whether an Accept header names text/html (or
// text/*) with a quality above 0; a bare */* does not count, so that
// clients that take anything get the API's answer.
func AcceptsHTML(accept string) bool {
	for _, rng := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(rng))
		if err != nil || (mt != "text/html" && mt != "text/*") {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
				continue
			}
		}
		return true
	}
	return false
}

// Redirect sends /ui to /ui/, where the page's relative links resolve.
func Redirect(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
}
