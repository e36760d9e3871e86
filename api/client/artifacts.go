package client

import (
	"context"
	"encoding/json"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// CreateOptions describes the artifact that CreateArtifact makes.
type CreateOptions struct {
	Name        string           // required
	ContentType string           // the artifact's type; "" lets the node choose (application/octet-stream)
	Metadata    artmesh.Metadata // optional user metadata
	// Size is the exact length of the content when known, sent as
	// Content-Length so that the node can check it; -1 (or 0) when
	// unknown: the body is then sent chunked, to its end.
	Size int64
	// Replicas is how many members must hold the content durably before
	// the node answers (?replicas=N); 0 leaves it to the mesh policy's
	// write_replicas. When that many members cannot take copies, the
	// create fails with Unavailable and nothing is recorded.
	Replicas int
}

// WriteOption is an option of a write that has no options struct
// (CreateSnippet, ConfirmUpload).
type WriteOption func(*writeOptions)

type writeOptions struct {
	replicas int
}

// Replicas makes a write answer only once n members hold its content
// durably (?replicas=N), as CreateOptions.Replicas does for CreateArtifact.
// 0 leaves it to the mesh policy.
func Replicas(n int) WriteOption {
	return func(o *writeOptions) { o.replicas = n }
}

func applyWriteOptions(opts []WriteOption) writeOptions {
	var o writeOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// replicasQuery adds ?replicas=N to q (nil for none) when n is above 0.
func replicasQuery(q url.Values, n int) url.Values {
	if n <= 0 {
		return q
	}
	if q == nil {
		q = url.Values{}
	}
	q.Set("replicas", strconv.Itoa(n))
	return q
}

// CreateArtifact stores the bytes read from r as a new artifact
// (POST /v1/artifacts?name=N), streaming them to the node. r is read to its
// end but not closed.
func (c *Client) CreateArtifact(ctx context.Context, r io.Reader, opt CreateOptions) (artmesh.Artifact, error) {
	const op = "client.CreateArtifact"
	h, err := contentHeader(op, opt.ContentType, opt.Metadata)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	var a artmesh.Artifact
	err = c.call(ctx, request{
		op: op, method: http.MethodPost, path: "/v1/artifacts",
		query: replicasQuery(url.Values{"name": {opt.Name}}, opt.Replicas), header: h, body: r, size: opt.Size,
	}, nil, &a)
	return a, err
}

// contentHeader returns the Content-Type and Artifact-Metadata headers of
// a create or update.
func contentHeader(op, contentType string, m artmesh.Metadata) (http.Header, error) {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	if len(m) > 0 {
		v, err := metadataHeader(m)
		if err != nil {
			return nil, artmesh.E(artmesh.Op(op), artmesh.Invalid, "encoding the metadata", err)
		}
		h.Set(MetadataHeader, v)
	}
	return h, nil
}

// CreateSnippet stores content, any JSON value (a json.RawMessage is sent
// as it is), as a new application/json artifact named name
// (POST /v1/snippets). Replicas(n) is the one option.
func (c *Client) CreateSnippet(ctx context.Context, name string, content any, meta artmesh.Metadata, opts ...WriteOption) (artmesh.Artifact, error) {
	const op = "client.CreateSnippet"
	o := applyWriteOptions(opts)
	raw, err := json.Marshal(content)
	if err != nil {
		return artmesh.Artifact{}, artmesh.E(artmesh.Op(op), artmesh.Invalid, "encoding the request", err)
	}
	var a artmesh.Artifact
	err = c.call(ctx, request{op: op, method: http.MethodPost, path: "/v1/snippets", query: replicasQuery(nil, o.replicas)},
		apitype.SnippetRequest{Name: name, Content: raw, Metadata: meta}, &a)
	return a, err
}

// Artifact returns the artifact id as of its current version
// (GET /v1/artifacts/{id}).
func (c *Client) Artifact(ctx context.Context, id artmesh.ArtifactID) (artmesh.Artifact, error) {
	var a artmesh.Artifact
	err := c.call(ctx, request{op: "client.Artifact", method: http.MethodGet, path: "/v1/artifacts/" + escape(string(id))}, nil, &a)
	return a, err
}

// UpdateOptions describes the new version that UpdateArtifact makes.
type UpdateOptions struct {
	ContentType string           // the new version's type; "" keeps the current one
	Metadata    artmesh.Metadata // merged into the artifact's metadata; a null value removes a key
	Size        int64            // as in CreateOptions: the exact length, or -1 (or 0) when unknown
	Replicas    int              // as in CreateOptions: members that must hold the version first; 0 for the mesh policy
}

// UpdateArtifact stores the bytes read from r as a new version of the
// artifact id (PUT /v1/artifacts/{id}/content) and returns the artifact as
// of that version. r is read to its end but not closed.
func (c *Client) UpdateArtifact(ctx context.Context, id artmesh.ArtifactID, r io.Reader, opt UpdateOptions) (artmesh.Artifact, error) {
	const op = "client.UpdateArtifact"
	h, err := contentHeader(op, opt.ContentType, opt.Metadata)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	var a artmesh.Artifact
	err = c.call(ctx, request{
		op: op, method: http.MethodPut, path: "/v1/artifacts/" + escape(string(id)) + "/content",
		query: replicasQuery(nil, opt.Replicas), header: h, body: r, size: opt.Size,
	}, nil, &a)
	return a, err
}

// UpdateMetadata changes the metadata of the artifact id without sending
// content (PATCH /v1/artifacts/{id}): the node makes a new version with
// the current version's content (the same CID) and patch merged into the
// artifact's metadata, and returns the artifact as of that version. Each
// key of patch replaces the artifact's value for that key (any JSON value:
// json.RawMessage(`"v"`) for a string); a key whose value is JSON null
// (json.RawMessage("null")) is removed. patch must hold at least one key.
//
// Only the owner may (PermissionDenied for an agent it is shared with).
// WithIfMatch(ctx, etag) makes it conditional on the current content, as
// for UpdateArtifact; a version that became current meanwhile makes it
// fail PreconditionFailed with nothing recorded. Like every write it is
// sent with an Idempotency-Key (WithIdempotencyKey, or a fresh one).
func (c *Client) UpdateMetadata(ctx context.Context, id artmesh.ArtifactID, patch artmesh.Metadata) (artmesh.Artifact, error) {
	const op = "client.UpdateMetadata"
	if len(patch) == 0 {
		return artmesh.Artifact{}, artmesh.E(artmesh.Op(op), artmesh.Invalid, "no metadata to change: give at least one key to set, or to remove with null")
	}
	var a artmesh.Artifact
	err := c.call(ctx, request{op: op, method: http.MethodPatch, path: "/v1/artifacts/" + escape(string(id))},
		apitype.MetadataPatchRequest{Metadata: patch}, &a)
	return a, err
}

// Versions returns the version chain of the artifact id, oldest first
// (GET /v1/artifacts/{id}/versions).
func (c *Client) Versions(ctx context.Context, id artmesh.ArtifactID) ([]artmesh.Version, error) {
	var out apitype.Items[artmesh.Version]
	err := c.call(ctx, request{op: "client.Versions", method: http.MethodGet, path: "/v1/artifacts/" + escape(string(id)) + "/versions"}, nil, &out)
	return out.Items, err
}

// DeleteArtifact deletes the artifact id with all its versions, grants and
// outstanding tokens (DELETE /v1/artifacts/{id}).
func (c *Client) DeleteArtifact(ctx context.Context, id artmesh.ArtifactID) error {
	return c.call(ctx, request{op: "client.DeleteArtifact", method: http.MethodDelete, path: "/v1/artifacts/" + escape(string(id))}, nil, nil)
}

// DeleteVersion deletes version n of the artifact id
// (DELETE /v1/artifacts/{id}/versions/{n}). Deleting the only version left
// is a Conflict.
func (c *Client) DeleteVersion(ctx context.Context, id artmesh.ArtifactID, n int) error {
	return c.call(ctx, request{
		op: "client.DeleteVersion", method: http.MethodDelete,
		path: "/v1/artifacts/" + escape(string(id)) + "/versions/" + strconv.Itoa(n),
	}, nil, nil)
}

// ListArtifacts returns one page of the caller's own artifacts, newest
// first, that match f (GET /v1/artifacts). A zero Limit means the node's
// default (50). The page's NextCursor, given as f.Cursor, continues the
// listing; it is empty on the last page. Total is set only for a listing
// without filters.
func (c *Client) ListArtifacts(ctx context.Context, f artmesh.Filter) (artmesh.Page[artmesh.Artifact], error) {
	var p artmesh.Page[artmesh.Artifact]
	err := c.call(ctx, request{op: "client.ListArtifacts", method: http.MethodGet, path: "/v1/artifacts", query: filterQuery(f)}, nil, &p)
	return p, err
}

// ListShared returns one page of the artifacts shared with the caller,
// directly or through a group, that match f (GET /v1/shared).
func (c *Client) ListShared(ctx context.Context, f artmesh.Filter) (artmesh.Page[artmesh.Artifact], error) {
	var p artmesh.Page[artmesh.Artifact]
	err := c.call(ctx, request{op: "client.ListShared", method: http.MethodGet, path: "/v1/shared", query: filterQuery(f)}, nil, &p)
	return p, err
}

// AllArtifacts yields every artifact of the caller's own that matches f,
// newest first, one page (f.Limit) at a time: it follows each page's
// NextCursor. The first error is yielded last.
func (c *Client) AllArtifacts(ctx context.Context, f artmesh.Filter) iter.Seq2[artmesh.Artifact, error] {
	return allPages(ctx, f, c.ListArtifacts)
}

// AllShared yields every artifact shared with the caller that matches f,
// as AllArtifacts does for ListShared.
func (c *Client) AllShared(ctx context.Context, f artmesh.Filter) iter.Seq2[artmesh.Artifact, error] {
	return allPages(ctx, f, c.ListShared)
}

// allPages yields the items of list's pages, following their cursors.
func allPages(ctx context.Context, f artmesh.Filter, list func(context.Context, artmesh.Filter) (artmesh.Page[artmesh.Artifact], error)) iter.Seq2[artmesh.Artifact, error] {
	return func(yield func(artmesh.Artifact, error) bool) {
		for {
			p, err := list(ctx, f)
			if err != nil {
				yield(artmesh.Artifact{}, err)
				return
			}
			for _, a := range p.Items {
				if !yield(a, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			f.Cursor, f.Offset = p.NextCursor, 0
		}
	}
}

// filterQuery encodes a listing filter as API.md names its parameters.
func filterQuery(f artmesh.Filter) url.Values {
	q := url.Values{}
	if f.ContentType != "" {
		q.Set("content_type", f.ContentType)
	}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	for _, m := range f.Meta {
		q.Add("metadata."+m.Key, m.Value)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Offset > 0 {
		q.Set("offset", strconv.Itoa(f.Offset))
	}
	if f.Cursor != "" {
		q.Set("cursor", f.Cursor)
	}
	return q
}
