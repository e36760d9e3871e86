package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/artmesh/artmesh"
)

// DownloadOptions selects what Download returns.
type DownloadOptions struct {
	// Version is the version to read; 0 means the current one.
	Version int
	// Offset and Length select a byte range: Length bytes from Offset, or
	// everything from Offset when Length is 0. With both 0 the whole
	// content is sent. A range is answered with a partial Content.
	Offset, Length int64
	// IfRange is the CID of the version the caller's partial copy came
	// from, sent as If-Range with a range: when the version asked for has
	// another CID, the node ignores the range and sends the whole content
	// (a Content that is not Partial), so a resumed download never mixes
	// two versions.
	IfRange string
	// IfNoneMatch is a CID the caller already holds; when it is the
	// version's, the answer is a Content with NotModified set and an empty
	// body.
	IfNoneMatch string
}

// Content is a streamed download. The caller must close Body.
type Content struct {
	Body        io.ReadCloser
	Size        int64  // bytes in Body (Content-Length); -1 when not sent
	TotalSize   int64  // bytes of the whole version; -1 when not known
	ContentType string // the version's type
	CID         string // the version's CID, from the ETag
	Version     int    // the version sent, from Artifact-Version; 0 when not sent
	Filename    string // from Content-Disposition; "" when not sent
	Partial     bool   // the answer is a byte range (206)
	Offset      int64  // where Body starts in the content, for a partial answer
	NotModified bool   // IfNoneMatch named this version (304); Body is empty
	// SHA256 is the version's hex SHA-256 when the node recorded one
	// (Repr-Digest). A whole download's Body then checks it: at the end of
	// content with another digest, Read fails with
	// artmesh.ChecksumMismatch instead of io.EOF.
	SHA256 string
}

// Download opens the content of the artifact id
// (GET /v1/artifacts/{id}/content[?version=N]) and returns it as a stream.
func (c *Client) Download(ctx context.Context, id artmesh.ArtifactID, opt DownloadOptions) (*Content, error) {
	r := request{op: "client.Download", method: http.MethodGet, path: "/v1/artifacts/" + escape(string(id)) + "/content"}
	if opt.Version > 0 {
		r.query = url.Values{"version": {strconv.Itoa(opt.Version)}}
	}
	return c.download(ctx, r, opt)
}

// DownloadSigned opens content through a capability token
// (GET /v1/cap/{token}), without the client's API key. capability is
// either the token itself, fetched from this client's node, or the full
// URL that CreateSignedURL returned, fetched from wherever it points.
// opt.Version is ignored: the token names what it grants.
func (c *Client) DownloadSigned(ctx context.Context, capability string, opt DownloadOptions) (*Content, error) {
	r := request{op: "client.DownloadSigned", method: http.MethodGet, noAuth: true}
	if strings.Contains(capability, "/") {
		r.rawURL = capability
	} else {
		r.path = "/v1/cap/" + escape(capability)
	}
	return c.download(ctx, r, opt)
}

func (c *Client) download(ctx context.Context, r request, opt DownloadOptions) (*Content, error) {
	r.header = http.Header{}
	if opt.Offset < 0 || opt.Length < 0 {
		return nil, artmesh.E(artmesh.Op(r.op), artmesh.Invalid, "a byte range needs a non-negative offset and length")
	}
	if opt.Offset > 0 || opt.Length > 0 {
		rng := fmt.Sprintf("bytes=%d-", opt.Offset)
		if opt.Length > 0 {
			rng += strconv.FormatInt(opt.Offset+opt.Length-1, 10)
		}
		r.header.Set("Range", rng)
		if opt.IfRange != "" {
			r.header.Set("If-Range", `"`+opt.IfRange+`"`)
		}
	}
	if opt.IfNoneMatch != "" {
		r.header.Set("If-None-Match", `"`+opt.IfNoneMatch+`"`)
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	h := resp.Header
	ct := &Content{
		Body:        resp.Body,
		Size:        resp.ContentLength,
		TotalSize:   resp.ContentLength,
		ContentType: h.Get("Content-Type"),
		CID:         strings.Trim(strings.TrimPrefix(h.Get("ETag"), "W/"), `"`),
		Partial:     resp.StatusCode == http.StatusPartialContent,
		NotModified: resp.StatusCode == http.StatusNotModified,
	}
	if v, err := strconv.Atoi(h.Get("Artifact-Version")); err == nil {
		ct.Version = v
	}
	if _, params, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil {
		ct.Filename = params["filename"]
	}
	if ct.NotModified {
		resp.Body.Close()
		ct.Body, ct.Size, ct.TotalSize = http.NoBody, 0, -1
	}
	if sum := reprDigest(h.Get("Repr-Digest")); sum != nil {
		ct.SHA256 = hex.EncodeToString(sum)
		if !ct.Partial && !ct.NotModified && r.method != http.MethodHead {
			ct.Body = &checkedBody{ReadCloser: ct.Body, h: sha256.New(), want: sum}
		}
	}
	if ct.Partial {
		ct.TotalSize = -1
		var start, end, total int64
		if _, err := fmt.Sscanf(h.Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &total); err == nil {
			ct.Offset, ct.TotalSize = start, total
		}
	}
	return ct, nil
}

// reprDigest returns the SHA-256 a Repr-Digest value (RFC 9530) gives, or
// nil.
func reprDigest(v string) []byte {
	for _, member := range strings.Split(v, ",") {
		alg, val, ok := strings.Cut(strings.TrimSpace(member), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(alg), "sha-256") {
			continue
		}
		sum, err := base64.StdEncoding.DecodeString(strings.Trim(strings.TrimSpace(val), ":"))
		if err == nil && len(sum) == sha256.Size {
			return sum
		}
	}
	return nil
}

// checkedBody hashes a whole download as it is read and turns its end
// into an error when the content is not what the node recorded.
type checkedBody struct {
	io.ReadCloser
	h    hash.Hash
	want []byte
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF {
		if got := b.h.Sum(nil); !bytes.Equal(got, b.want) {
			return n, artmesh.E(artmesh.Op("client.Download"), artmesh.ChecksumMismatch,
				fmt.Sprintf("the downloaded content's SHA-256 is %x, not the %x the node recorded", got, b.want))
		}
	}
	return n, err
}
