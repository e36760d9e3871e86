package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node"
)

// serveContent sends a version's bytes with the headers API.md promises:
// Content-Type, Content-Length, ETag (the version's CID), Accept-Ranges,
// Content-Disposition, nosniff, and Content-Security-Policy: sandbox; it
// answers Range with 206 and If-None-Match with 304. Every download, by
// API key or by token, goes through here.
func serveContent(w http.ResponseWriter, r *http.Request, c *node.Content) error {
	size := c.Version.SizeBytes
	etag := `"` + c.Version.CID + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Content-Type-Options", "nosniff")
	// Content opened in a browser runs as an opaque origin: no scripts,
	// forms or plugins with the API's origin, which would reach the API.
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("Cache-Control", "private, max-age=0, must-revalidate")
	h.Set("Last-Modified", c.Version.CreatedAt.UTC().Format(http.TimeFormat))
	h.Set("Artifact-Version", strconv.Itoa(c.Version.Version))
	if sum, err := hex.DecodeString(c.Version.SHA256); err == nil && len(sum) == sha256.Size {
		// RFC 9530's digest of the whole representation, which a client
		// checks once it has all of it (range responses included).
		h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	}

	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	rangeHeader := r.Header.Get("Range")
	if ir := r.Header.Get("If-Range"); ir != "" && strings.TrimPrefix(ir, "W/") != etag {
		rangeHeader = "" // the client's copy is stale: send it all
	}
	br, partial, err := parseRange(rangeHeader, size)
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		return err
	}
	ct := c.Version.ContentType
	if ct == "" {
		ct = node.DefaultContentType
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", contentDisposition(c.Artifact.Name))
	status := http.StatusOK
	start, length := int64(0), size
	if partial {
		start, length = br.Start, br.Length
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, size))
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if start > 0 {
		if _, err := c.Reader.Seek(start, io.SeekStart); err != nil {
			h.Del("Content-Length")
			h.Del("Content-Range")
			return readError("seeking in content", err)
		}
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	// The first bytes are read before the header goes out: content that
	// cannot be read (a block that failed its check with no other copy,
	// a holder that does not answer) is refused with its error, 503 for
	// content nobody can serve now, instead of a 200 cut short at once.
	first := make([]byte, min(length, firstChunk))
	if _, err := io.ReadFull(c.Reader, first); err != nil {
		h.Del("Content-Length")
		h.Del("Content-Range")
		return readError("reading content", err)
	}
	w.WriteHeader(status)
	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w)}
	if _, err := dw.Write(first); err != nil {
		return nil
	}
	rest := length - int64(len(first))
	// Errors after the header are the connection's: the client sees a short
	// body, which Content-Length tells it about. The rest of a whole file
	// goes out block by block (the DAG reader's WriteTo); of a range,
	// through a large buffer, not io.Copy's 32 KiB.
	if start+length == size {
		_, _ = c.Reader.WriteTo(dw)
		return nil
	}
	_, _ = io.CopyBuffer(dw, io.LimitReader(c.Reader, rest), make([]byte, 1<<20))
	return nil
}

// readError is the error of content that could not be read before the
// header went out.
func readError(what string, err error) error {
	if artmesh.KindOf(err) == artmesh.Other && !errors.Is(err, io.ErrUnexpectedEOF) {
		// boxo's DAG reader does not keep the kind of its block source's
		// error: a block that is not here and could not be fetched (the
		// reason a stored version does not read).
		return artmesh.E(artmesh.Op("api.serveContent"), artmesh.Unavailable,
			"this node cannot read the content now: no member serves the blocks it lacks; try again later", err)
	}
	return artmesh.E(artmesh.Op("api.serveContent"), what, err)
}

// firstChunk is how much of a download is read before its header is
// sent: about one block of the default chunking.
const firstChunk = 256 << 10

// contentDisposition returns the Content-Disposition of a download of an
// artifact called name, in RFC 6266's form for every client: an ASCII
// filename= (each character outside printable ASCII, and each quote or
// backslash, becomes "_"), and, when that is not the name itself, the
// exact name as filename*=UTF-8”<percent-encoded> (RFC 8187), which
// clients that know it prefer.
func contentDisposition(name string) string {
	var fb strings.Builder
	for _, r := range name {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			fb.WriteByte('_')
			continue
		}
		fb.WriteRune(r)
	}
	fallback := fb.String()
	if fallback == "" {
		fallback = "download"
	}
	v := `attachment; filename="` + fallback + `"`
	if fallback == name || name == "" {
		return v
	}
	var ext strings.Builder
	for i := 0; i < len(name); i++ {
		b := name[i]
		if isAttrChar(b) {
			ext.WriteByte(b)
			continue
		}
		fmt.Fprintf(&ext, "%%%02X", b)
	}
	return v + "; filename*=UTF-8''" + ext.String()
}

// isAttrChar reports whether b may stand unencoded in an RFC 8187
// ext-value (attr-char).
func isAttrChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", b) >= 0
}

// etagMatches reports whether an If-None-Match list names etag.
func etagMatches(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// deadlineWriter extends the write deadline as data goes out.
type deadlineWriter struct {
	w    io.Writer
	rc   *http.ResponseController
	last time.Time
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(d.last) > time.Second {
		_ = d.rc.SetWriteDeadline(now.Add(streamTimeout))
		d.last = now
	}
	return d.w.Write(p)
}
