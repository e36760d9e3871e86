package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// resourcePageSize is how many artifacts one resources/list page names.
const resourcePageSize = 100

// LinkExpiry is how long the signed URL of a resource read too large to
// return inline works: an hour, the node's default, long enough to fetch
// hundreds of MiB and short enough that a URL left in a transcript soon
// stops working.
const LinkExpiry = time.Hour

// LinkMIMEType is the MIME type of the content a resource read returns in
// place of content larger than MaxInlineBytes: text/uri-list (RFC 2483),
// whose comment lines (#) say what the URL serves, followed by the URL.
const LinkMIMEType = "text/uri-list"

// LinkMetaKey is the _meta key of such a content, whose value holds the
// same facts for programs: url, expires_at, size_bytes, content_type,
// version, cid and, when the node recorded one, sha256.
const LinkMetaKey = "artmesh/link"

// The resource templates, as resources/templates/list gives them.
const (
	artifactTemplate = URIScheme + "://artifacts/{artifact_id}"
	versionTemplate  = URIScheme + "://artifacts/{artifact_id}/versions/{version}"
)

// ResourceURI returns the resource URI of an artifact's current version,
// artmesh://artifacts/art_..., or with version above 0 of that version,
// artmesh://artifacts/art_.../versions/N.
func ResourceURI(id artmesh.ArtifactID, version int) string {
	u := URIScheme + "://artifacts/" + string(id)
	if version > 0 {
		u += "/versions/" + strconv.Itoa(version)
	}
	return u
}

// parseURI returns the artifact and version (0: the current one) that a
// resource URI names, or why it names none. Besides the templates' shapes
// it reads the shapes of earlier releases, artmesh://art_... and
// artmesh://art_.../versions/N (legacy is then true), so that URIs a
// client kept still work; resources/list and the templates give only the
// current shapes.
func parseURI(uri string) (id artmesh.ArtifactID, version int, legacy bool, err error) {
	rest, ok := strings.CutPrefix(uri, URIScheme+"://")
	if !ok {
		return "", 0, false, fmt.Errorf("%q is not an %s:// URI: use %s or %s", uri, URIScheme, artifactTemplate, versionTemplate)
	}
	rest, ok = strings.CutPrefix(rest, "artifacts/")
	legacy = !ok
	idText, v, hasVersion := strings.Cut(rest, "/versions/")
	if !artmesh.ValidArtifactID(idText) {
		return "", 0, false, fmt.Errorf("%q does not name an artifact id (art_ followed by 26 characters): use %s or %s", uri, artifactTemplate, versionTemplate)
	}
	if !hasVersion {
		return artmesh.ArtifactID(idText), 0, legacy, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || strconv.Itoa(n) != v {
		return "", 0, false, fmt.Errorf("%q: the version must be a whole number from 1, not %q", uri, v)
	}
	return artmesh.ArtifactID(idText), n, legacy, nil
}

// invalidURI is the error of a URI that names no artifact: -32602, invalid
// params, with the URI in its data.
func invalidURI(uri string, err error) error {
	data, _ := json.Marshal(map[string]string{"uri": uri, "code": artmesh.Invalid.String()})
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "Invalid params: " + err.Error(), Data: data}
}

// rpcError turns the error of a client call made for a protocol method
// (not a tool) into a JSON-RPC error with a standard code, never the code 0
// that the SDK gives an error without one: not_found (which the node also
// answers for an artifact the agent may not read) is the SDK's "Resource
// not found" for uri, invalid_argument is -32602, invalid params, and any
// other failure (unavailable, permission_denied, ...) is -32603, internal
// error. The data holds the API's error code and the URI, the message
// "<code>: <message>" as a tool error's text.
func (h *handlers) rpcError(op, uri string, err error) error {
	var je *jsonrpc.Error
	if errors.As(err, &je) {
		return je
	}
	if uri != "" && artmesh.KindOf(err) == artmesh.NotFound {
		return mcp.ResourceNotFoundError(uri)
	}
	var te *toolError
	if !errors.As(h.failure(op, err), &te) {
		return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
	}
	code := int64(jsonrpc.CodeInternalError)
	if te.code == artmesh.Invalid.String() {
		code = jsonrpc.CodeInvalidParams
	}
	fields := map[string]string{"code": te.code}
	if uri != "" {
		fields["uri"] = uri
	}
	data, _ := json.Marshal(fields)
	return &jsonrpc.Error{Code: code, Message: te.Error(), Data: data}
}

func (h *handlers) addResources(s *mcp.Server) {
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		Name:  "artifact",
		Title: "An artifact's current version",
		Description: fmt.Sprintf("The content of an artifact you may read: as text when it is UTF-8, else as a blob, up to %d bytes; "+
			"larger content comes back as a signed URL (%s, valid %v) with its size, type, CID and sha256. Subscribe to hear of its changes.",
			MaxInlineBytes, LinkMIMEType, LinkExpiry),
		URITemplate: artifactTemplate,
	}, h.readResource)
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		Name:        "artifact_version",
		Title:       "One version of an artifact",
		Description: fmt.Sprintf("The content of one version of an artifact you may read; as for the artifact, up to %d bytes inline, else a signed URL.", MaxInlineBytes),
		URITemplate: versionTemplate,
	}, h.readResource)
	s.AddReceivingMiddleware(h.listResourcesMiddleware, h.legacyURIMiddleware)
}

// legacyURIMiddleware reads the URIs of earlier releases
// (artmesh://art_...), which no template matches, with the same handler.
func (h *handlers) legacyURIMiddleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		rr, ok := req.(*mcp.ReadResourceRequest)
		if method != "resources/read" || !ok || rr.Params == nil {
			return next(ctx, method, req)
		}
		if _, _, legacy, err := parseURI(rr.Params.URI); err != nil || !legacy {
			return next(ctx, method, req)
		}
		return h.readResource(ctx, rr)
	}
}

// readResource serves resources/read of an artifact URI: the content
// inline up to MaxInlineBytes, else a signed link to it.
func (h *handlers) readResource(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	id, version, _, err := parseURI(uri)
	if err != nil {
		return nil, invalidURI(uri, err)
	}
	ct, err := h.c.Download(ctx, id, client.DownloadOptions{Version: version})
	if err != nil {
		return nil, h.rpcError("resources/read", uri, err)
	}
	defer ct.Body.Close()
	// Artifacts are private to the agents they are shared with.
	res := &mcp.ReadResourceResult{Cacheable: mcp.Cacheable{CacheScope: "private"}}
	var data []byte
	if ct.Size <= MaxInlineBytes {
		data, err = io.ReadAll(io.LimitReader(ct.Body, MaxInlineBytes+1))
		if err != nil {
			return nil, h.rpcError("resources/read", uri, fmt.Errorf("reading the content: %w", err))
		}
	}
	if ct.Size > MaxInlineBytes || len(data) > MaxInlineBytes {
		rc, err := h.link(ctx, uri, id, version, ct)
		if err != nil {
			return nil, h.rpcError("resources/read", uri, err)
		}
		res.Contents = []*mcp.ResourceContents{rc}
		return res, nil
	}
	rc := &mcp.ResourceContents{URI: uri, MIMEType: ct.ContentType}
	if utf8.Valid(data) {
		rc.Text = string(data)
	} else {
		rc.Blob = data
	}
	res.Contents = []*mcp.ResourceContents{rc}
	return res, nil
}

// link returns the content of a resource read whose content ct is larger
// than MaxInlineBytes: a signed URL of the version read, which serves it
// without a key for LinkExpiry, rather than megabytes of base64 in the
// answer. ct is closed unread.
func (h *handlers) link(ctx context.Context, uri string, id artmesh.ArtifactID, version int, ct *client.Content) (*mcp.ResourceContents, error) {
	ct.Body.Close()
	if ct.Version > 0 {
		version = ct.Version
	}
	su, size, err := h.versionLink(ctx, id, version, ct)
	if err != nil {
		return nil, err
	}
	meta := map[string]any{
		"url": su.URL, "expires_at": su.ExpiresAt, "size_bytes": size, "content_type": ct.ContentType,
		"version": version, "cid": ct.CID,
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %d bytes of %s, more than the %d a read returns inline.\n", uri, size, ct.ContentType, MaxInlineBytes)
	fmt.Fprintf(&b, "# GET the URL below (no API key needed) until %s.\n", su.ExpiresAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "# version %d, cid %s", version, ct.CID)
	if ct.SHA256 != "" {
		fmt.Fprintf(&b, ", sha256 %s", ct.SHA256)
		meta["sha256"] = ct.SHA256
	}
	fmt.Fprintf(&b, "\n%s\n", su.URL)
	return &mcp.ResourceContents{URI: uri, MIMEType: LinkMIMEType, Text: b.String(), Meta: mcp.Meta{LinkMetaKey: meta}}, nil
}

// versionLink signs a URL that serves the version ct was read from (or
// version, when the answer named none) for LinkExpiry, pinned to it so
// that the size and digests given with it stay true, and returns it with
// the version's whole size.
func (h *handlers) versionLink(ctx context.Context, id artmesh.ArtifactID, version int, ct *client.Content) (client.SignedURL, int64, error) {
	if ct.Version > 0 {
		version = ct.Version
	}
	su, err := h.c.CreateSignedURL(ctx, id, client.SignedURLOptions{ExpiresIn: LinkExpiry, Version: version})
	size := ct.TotalSize
	if size < 0 {
		size = ct.Size
	}
	return su, size, err
}

// listResourcesMiddleware answers resources/list with the agent's
// artifacts: its own, newest first, then those shared with it. The cursor
// is "own:OFFSET" or "shared:OFFSET".
func (h *handlers) listResourcesMiddleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method != "resources/list" {
			return next(ctx, method, req)
		}
		cursor := ""
		if lr, ok := req.(*mcp.ListResourcesRequest); ok && lr.Params != nil {
			cursor = lr.Params.Cursor
		}
		return h.listResources(ctx, cursor)
	}
}

func (h *handlers) listResources(ctx context.Context, cursor string) (*mcp.ListResourcesResult, error) {
	// A cursor is "own:" or "shared:" followed by the listing's own
	// cursor, empty to start that listing.
	shared, after := false, ""
	if cursor != "" {
		which, c, _ := strings.Cut(cursor, ":")
		_, err := artmesh.DecodeCursor(c)
		if (which != "own" && which != "shared") || (c != "" && err != nil) {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("invalid cursor %q", cursor)}
		}
		shared, after = which == "shared", c
	}
	f := artmesh.Filter{Limit: resourcePageSize, Cursor: after}
	var p artmesh.Page[artmesh.Artifact]
	var err error
	if shared {
		p, err = h.c.ListShared(ctx, f)
	} else {
		p, err = h.c.ListArtifacts(ctx, f)
	}
	if err != nil {
		return nil, h.rpcError("resources/list", "", err)
	}
	res := &mcp.ListResourcesResult{Resources: []*mcp.Resource{}, Cacheable: mcp.Cacheable{CacheScope: "private"}}
	for _, a := range p.Items {
		desc := fmt.Sprintf("version %d, %d bytes, owned by %s", a.Version, a.SizeBytes, a.Owner)
		if shared {
			desc = "shared with you: " + desc
		}
		res.Resources = append(res.Resources, &mcp.Resource{
			URI: ResourceURI(a.ID, 0), Name: a.Name, MIMEType: a.ContentType, Size: a.SizeBytes, Description: desc,
		})
	}
	switch {
	case p.NextCursor != "" && shared:
		res.NextCursor = "shared:" + p.NextCursor
	case p.NextCursor != "":
		res.NextCursor = "own:" + p.NextCursor
	case !shared:
		res.NextCursor = "shared:"
	}
	return res, nil
}
