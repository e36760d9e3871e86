package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// UploadRequest declares an upload session (POST /v1/uploads).
type UploadRequest = apitype.UploadRequest

// The states of an upload session.
const (
	UploadOpen      = apitype.UploadOpen      // taking bytes
	UploadReceived  = apitype.UploadReceived  // every declared byte arrived; waiting for confirm
	UploadConfirmed = apitype.UploadConfirmed // became an artifact or version
)

// Upload is an open upload session, as CreateUpload returns it: its
// UploadStatus, with the write Token, and the URL (carrying that token)
// that PutUpload sends the bytes to.
type Upload = apitype.Upload

// UploadStatus describes an upload session to its owner
// (GET /v1/uploads/{id}).
type UploadStatus = apitype.UploadStatus

// CreateUpload opens an upload session for content of a declared size
// (POST /v1/uploads). Send the bytes with PutUpload, then ConfirmUpload.
func (c *Client) CreateUpload(ctx context.Context, req UploadRequest) (Upload, error) {
	var u Upload
	err := c.call(ctx, request{op: "client.CreateUpload", method: http.MethodPost, path: "/v1/uploads"}, req, &u)
	return u, err
}

// UploadOffset asks how many bytes of an upload the node holds
// (HEAD on the upload URL), so that a broken upload can resume there. It
// reads the Upload-Offset header, or else Content-Length.
func (c *Client) UploadOffset(ctx context.Context, uploadURL string) (int64, error) {
	const op = "client.UploadOffset"
	resp, err := c.send(ctx, request{op: op, method: http.MethodHead, rawURL: uploadURL, noAuth: true})
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	v := resp.Header.Get("Upload-Offset")
	if v == "" {
		if resp.ContentLength < 0 {
			return 0, fmt.Errorf("%s: the node did not say how many bytes it has", op)
		}
		return resp.ContentLength, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: bad Upload-Offset %q", op, v)
	}
	return n, nil
}

// PutUpload sends the bytes of an upload from offset to the end, total
// bytes in all (PUT on the upload URL, which carries its own token). With
// offset 0 the body is the whole content; with a larger offset it
// continues a broken upload with Content-Range: bytes offset-(total-1)/total,
// and r must yield exactly the bytes from offset on. With offset equal to
// total it sends no bytes (bytes */total): that finishes an upload whose
// bytes all arrived but which the node did not take in. r is not closed.
func (c *Client) PutUpload(ctx context.Context, uploadURL string, r io.Reader, offset, total int64) error {
	const op = "client.PutUpload"
	if offset < 0 || total < 0 || offset > total {
		return artmesh.E(artmesh.Op(op), artmesh.Invalid, fmt.Sprintf("offset %d is outside the upload's %d bytes", offset, total))
	}
	req := request{op: op, method: http.MethodPut, rawURL: uploadURL, noAuth: true, body: r, size: total - offset}
	switch {
	case offset > 0 && offset == total:
		// No bytes: finish an upload that holds them all (bytes */TOTAL).
		req.header = http.Header{"Content-Range": {fmt.Sprintf("bytes */%d", total)}}
		req.body = http.NoBody
	case offset > 0:
		req.header = http.Header{"Content-Range": {fmt.Sprintf("bytes %d-%d/%d", offset, total-1, total)}}
	}
	return c.call(ctx, req, nil, nil)
}

// ConfirmUpload ends the upload id (POST /v1/uploads/{id}/confirm): the node
// checks the size, and the SHA-256 (hex) when sha256 is not empty, then
// creates the artifact or version and returns the artifact. Replicas(n)
// makes it answer only once n members hold the content; a confirm refused
// for want of members leaves the upload received, to be confirmed again.
func (c *Client) ConfirmUpload(ctx context.Context, id, sha256 string, opts ...WriteOption) (artmesh.Artifact, error) {
	o := applyWriteOptions(opts)
	var a artmesh.Artifact
	err := c.call(ctx, request{op: "client.ConfirmUpload", method: http.MethodPost, path: "/v1/uploads/" + escape(id) + "/confirm", query: replicasQuery(nil, o.replicas)},
		apitype.ConfirmRequest{SHA256: sha256}, &a)
	return a, err
}

// GetUpload describes the upload id, which the caller must own
// (GET /v1/uploads/{id}).
func (c *Client) GetUpload(ctx context.Context, id string) (UploadStatus, error) {
	var st UploadStatus
	err := c.call(ctx, request{op: "client.GetUpload", method: http.MethodGet, path: "/v1/uploads/" + escape(id)}, nil, &st)
	return st, err
}

// Uploads returns the caller's uploads that are not confirmed yet (open,
// or received and waiting for a confirm), oldest expiry first (GET /v1/uploads).
func (c *Client) Uploads(ctx context.Context) ([]UploadStatus, error) {
	var out apitype.Items[UploadStatus]
	err := c.call(ctx, request{op: "client.Uploads", method: http.MethodGet, path: "/v1/uploads"}, nil, &out)
	return out.Items, err
}

// AbortUpload abandons the upload id, which the caller must own
// (DELETE /v1/uploads/{id}); the node collects its bytes.
func (c *Client) AbortUpload(ctx context.Context, id string) error {
	return c.call(ctx, request{op: "client.AbortUpload", method: http.MethodDelete, path: "/v1/uploads/" + escape(id)}, nil, nil)
}
