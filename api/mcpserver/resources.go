package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// resourcePageSize is how many artifacts one resources/list page names.
const resourcePageSize = 100

// ResourceURI returns the resource URI of an artifact's current version,
// artmesh://art_..., or with version above 0 of that version,
// artmesh://art_.../versions/N.
func ResourceURI(id artmesh.ArtifactID, version int) string {
	u := URIScheme + "://" + string(id)
	if version > 0 {
		u += "/versions/" + strconv.Itoa(version)
	}
	return u
}

// parseURI returns the artifact and version (0: the current one) that a
// resource URI names.
func parseURI(uri string) (artmesh.ArtifactID, int, bool) {
	rest, ok := strings.CutPrefix(uri, URIScheme+"://")
	if !ok {
		return "", 0, false
	}
	id, v, hasVersion := strings.Cut(rest, "/versions/")
	if !artmesh.ValidArtifactID(id) {
		return "", 0, false
	}
	if !hasVersion {
		return artmesh.ArtifactID(id), 0, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || strconv.Itoa(n) != v {
		return "", 0, false
	}
	return artmesh.ArtifactID(id), n, true
}

func (h *handlers) addResources(s *mcp.Server) {
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		Name:        "artifact",
		Title:       "An artifact's current version",
		Description: "The content of an artifact you may read, as text when it is UTF-8, else as a blob; at most 1 MiB (use the download tool with a path for more).",
		URITemplate: URIScheme + "://{artifact_id}",
	}, h.readResource)
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		Name:        "artifact_version",
		Title:       "One version of an artifact",
		Description: "The content of one version of an artifact you may read; at most 1 MiB.",
		URITemplate: URIScheme + "://{artifact_id}/versions/{version}",
	}, h.readResource)
	s.AddReceivingMiddleware(h.listResourcesMiddleware)
}

// readResource serves resources/read of an artifact URI.
func (h *handlers) readResource(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	id, version, ok := parseURI(uri)
	if !ok {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	ct, err := h.c.Download(ctx, id, client.DownloadOptions{Version: version})
	if errors.Is(err, artmesh.NotFound) {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	if err != nil {
		return nil, h.failure("resources/read", err)
	}
	defer ct.Body.Close()
	data, err := readInline(ct.Body, ct.Size)
	if err != nil {
		return nil, err
	}
	rc := &mcp.ResourceContents{URI: uri, MIMEType: ct.ContentType}
	if utf8.Valid(data) {
		rc.Text = string(data)
	} else {
		rc.Blob = data
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{rc}}, nil
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
		return nil, h.failure("resources/list", err)
	}
	res := &mcp.ListResourcesResult{Resources: []*mcp.Resource{}}
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
