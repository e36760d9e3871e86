package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// schemaOptions are the options of every tool's schema inference: a
// json.RawMessage (metadata values, snippet content) is any JSON value.
func schemaOptions() *jsonschema.ForOptions {
	return &jsonschema.ForOptions{TypeSchemas: map[reflect.Type]*jsonschema.Schema{
		reflect.TypeFor[json.RawMessage](): {},
	}}
}

// addTool adds the tool name whose arguments are In and whose structured
// result is Out. An error of fn becomes a result with IsError set.
func addTool[In, Out any](s *mcp.Server, h *handlers, t *mcp.Tool, fn func(context.Context, In) (Out, error)) {
	in, err := jsonschema.For[In](schemaOptions())
	if err != nil {
		panic(fmt.Sprintf("mcpserver: input schema of %s: %v", t.Name, err))
	}
	out, err := jsonschema.For[Out](schemaOptions())
	if err != nil {
		panic(fmt.Sprintf("mcpserver: output schema of %s: %v", t.Name, err))
	}
	t.InputSchema, t.OutputSchema = in, out
	name := t.Name
	mcp.AddTool(s, t, func(ctx context.Context, _ *mcp.CallToolRequest, arg In) (*mcp.CallToolResult, Out, error) {
		res, err := fn(ctx, arg)
		if err != nil {
			var zero Out
			return nil, zero, h.failure(name, err)
		}
		return nil, res, nil
	})
}

// readOnly marks a tool that changes nothing.
func readOnly() *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true}
}

// Tool arguments. The names are the Python SDK's parameters.

type createArgs struct {
	Name           string           `json:"name,omitempty" jsonschema:"the artifact's name (need not be unique); default with path: the file's base name"`
	Data           *string          `json:"data,omitempty" jsonschema:"the content as text (stored as UTF-8 bytes); give data or path, not both"`
	Path           string           `json:"path,omitempty" jsonschema:"a local file to store, streamed from disk (relative paths are from the server's working directory); give data or path, not both"`
	ContentType    string           `json:"content_type,omitempty" jsonschema:"the content's type; default: guessed from the name's extension, else text/plain for data and application/octet-stream for a file"`
	Metadata       artmesh.Metadata `json:"metadata,omitempty" jsonschema:"a JSON object stored with the artifact"`
	Replicas       int              `json:"replicas,omitempty" jsonschema:"answer only once this many mesh members hold the content durably (default: the mesh policy)"`
	IdempotencyKey string           `json:"idempotency_key,omitempty" jsonschema:"a key of your own for this write (1-255 printable characters): sent again with the same key and arguments, it takes effect once and answers as the first time, for 24 h (default: a fresh key, which the server's own retries reuse)"`
}

type snippetArgs struct {
	Name           string           `json:"name" jsonschema:"the artifact's name"`
	Content        json.RawMessage  `json:"content" jsonschema:"any JSON value; stored as compact application/json"`
	Metadata       artmesh.Metadata `json:"metadata,omitempty" jsonschema:"a JSON object stored with the artifact"`
	Replicas       int              `json:"replicas,omitempty" jsonschema:"answer only once this many mesh members hold the content durably (default: the mesh policy)"`
	IdempotencyKey string           `json:"idempotency_key,omitempty" jsonschema:"a key of your own for this write (1-255 printable characters): sent again with the same key and arguments, it takes effect once and answers as the first time, for 24 h (default: a fresh key, which the server's own retries reuse)"`
}

type idArgs struct {
	ArtifactID string `json:"artifact_id" jsonschema:"the artifact's id (art_ and 26 characters)"`
}

type listArgs struct {
	MetadataFilter artmesh.Metadata `json:"metadata_filter,omitempty" jsonschema:"{key: value} pairs that must all match: a string matches a string value, anything else a value with the same compact JSON (e.g. {\"year\": 2025})"`
	ContentType    string           `json:"content_type,omitempty" jsonschema:"exactly this content type"`
	Name           string           `json:"name,omitempty" jsonschema:"exactly this name"`
	Limit          int              `json:"limit,omitempty" jsonschema:"page size, 1 to 1000 (default 50)"`
	Offset         int              `json:"offset,omitempty" jsonschema:"how many matches to skip (costs what it skips: prefer cursor)"`
	Cursor         string           `json:"cursor,omitempty" jsonschema:"the next_cursor of the previous page, to continue after it"`
}

type downloadArgs struct {
	ArtifactID string `json:"artifact_id" jsonschema:"the artifact's id"`
	Version    int    `json:"version,omitempty" jsonschema:"the version to read (default: the current one)"`
	Path       string `json:"path,omitempty" jsonschema:"a local file to write the content to (streamed; replaced atomically once complete). Without it UTF-8 content of at most 1 MiB is returned as text, and other content as a signed URL that serves it without a key"`
}

type updateArgs struct {
	ArtifactID     string           `json:"artifact_id" jsonschema:"the artifact's id"`
	Data           *string          `json:"data,omitempty" jsonschema:"the new version's content as text; give data or path, not both"`
	Path           string           `json:"path,omitempty" jsonschema:"a local file to store as the new version, streamed from disk; give data or path, not both"`
	Metadata       artmesh.Metadata `json:"metadata,omitempty" jsonschema:"merged into the artifact's metadata (a null value removes a key) and recorded on the version"`
	ContentType    string           `json:"content_type,omitempty" jsonschema:"the new version's type (default: the artifact's current type)"`
	Replicas       int              `json:"replicas,omitempty" jsonschema:"answer only once this many mesh members hold the content durably"`
	IfMatch        string           `json:"if_match,omitempty" jsonschema:"the cid of the version this change was made from: the update happens only if that is still the current version (else precondition_failed)"`
	IdempotencyKey string           `json:"idempotency_key,omitempty" jsonschema:"a key of your own for this write (1-255 printable characters): sent again with the same key and arguments, it takes effect once and answers as the first time, for 24 h (default: a fresh key, which the server's own retries reuse)"`
}

type shareArgs struct {
	ArtifactID string   `json:"artifact_id" jsonschema:"the artifact's id (you must own it)"`
	WithAgents []string `json:"with_agents,omitempty" jsonschema:"agent ids that may read it"`
	WithGroups []string `json:"with_groups,omitempty" jsonschema:"groups whose members may read it"`
}

type unshareArgs struct {
	ArtifactID string   `json:"artifact_id" jsonschema:"the artifact's id (you must own it)"`
	Agents     []string `json:"agents,omitempty" jsonschema:"agent ids to take access from"`
	Groups     []string `json:"groups,omitempty" jsonschema:"groups to take access from"`
}

type signedURLArgs struct {
	ArtifactID string `json:"artifact_id" jsonschema:"the artifact's id"`
	ExpiresIn  int64  `json:"expires_in,omitempty" jsonschema:"seconds the URL works, at most 604800 (7 days); default 3600"`
	Version    int    `json:"version,omitempty" jsonschema:"pin the URL to this version (default: whichever is current when it is used)"`
}

type deleteVersionArgs struct {
	ArtifactID string `json:"artifact_id" jsonschema:"the artifact's id"`
	Version    int    `json:"version" jsonschema:"the version to delete; the only version left cannot be"`
}

// Tool results.

type versionsResult struct {
	Items []artmesh.Version `json:"items" jsonschema:"every version, oldest first"`
}

type downloadResult struct {
	ArtifactID  string  `json:"artifact_id"`
	Version     int     `json:"version" jsonschema:"the version read"`
	CID         string  `json:"cid" jsonschema:"the version's content id"`
	ContentType string  `json:"content_type"`
	SizeBytes   int64   `json:"size_bytes"`
	Path        string  `json:"path,omitempty" jsonschema:"the file written, as an absolute path"`
	Text        *string `json:"text,omitempty" jsonschema:"the content, when no path was given and it is UTF-8 text of at most 1 MiB"`
	// URL and ExpiresAt stand for content too large or not text enough
	// to return inline: a signed URL of the version read.
	URL       string     `json:"url,omitempty" jsonschema:"a signed URL that serves the content without an API key until expires_at: given instead of text when the content is over 1 MiB or not UTF-8"`
	ExpiresAt *time.Time `json:"expires_at,omitempty" jsonschema:"when url stops working"`
	SHA256    string     `json:"sha256,omitempty" jsonschema:"the content's SHA-256 (hex), when the node recorded one"`
}

type deleteResult struct {
	ArtifactID string `json:"artifact_id"`
	Version    int    `json:"version,omitempty"`
	Deleted    bool   `json:"deleted"`
}

// toolDef is one tool of the table: its description, and how it is added
// to a server.
type toolDef struct {
	tool *mcp.Tool
	add  func(s *mcp.Server, t *mcp.Tool)
}

// tool makes the table entry of a tool whose handler is fn.
func tool[In, Out any](h *handlers, t *mcp.Tool, fn func(context.Context, In) (Out, error)) toolDef {
	return toolDef{tool: t, add: func(s *mcp.Server, t *mcp.Tool) { addTool(s, h, t, fn) }}
}

// toolTable is every tool the server serves, in the order it lists them.
// It is built afresh on each call (addTool fills in the schemas of the
// tools it is given), and is the one list that both the server and
// `artmesh mcp --help` (through Tools) read, so that the help cannot
// leave a tool out.
func (h *handlers) toolTable() []toolDef {
	return []toolDef{
		tool(h, &mcp.Tool{Name: "create", Description: "Store a new artifact from text (data) or a local file (path). Returns the artifact, at version 1."}, h.create),
		tool(h, &mcp.Tool{Name: "create_snippet", Description: "Store any JSON value as an application/json artifact. Returns the artifact."}, h.createSnippet),
		tool(h, &mcp.Tool{Name: "get", Description: "The artifact: name, owner, content type, size, CID, current version, metadata.", Annotations: readOnly()}, h.get),
		tool(h, &mcp.Tool{Name: "list", Description: "Your own artifacts, newest first, with filters and paging: pass a page's next_cursor as cursor for the next (absent on the last page); total is given only without filters.", Annotations: readOnly()}, h.list(false)),
		tool(h, &mcp.Tool{Name: "list_shared", Description: "Artifacts other agents shared with you (directly or through a group), newest first; same filters as list.", Annotations: readOnly()}, h.list(true)),
		tool(h, &mcp.Tool{Name: "download", Description: "Read an artifact's content: to a local file (path); without one, as text for UTF-8 content of at most 1 MiB, else as a signed URL that serves it without a key (for an hour)."}, h.download),
		tool(h, &mcp.Tool{Name: "list_versions", Description: "Every version of the artifact, oldest first.", Annotations: readOnly()}, h.listVersions),
		tool(h, &mcp.Tool{Name: "update", Description: "Make text (data) or a local file (path) the artifact's new version; metadata is merged. Owner only."}, h.update),
		tool(h, &mcp.Tool{Name: "share", Description: "Let agents and groups read the artifact. Owner only. Returns who may read it now."}, h.share),
		tool(h, &mcp.Tool{Name: "unshare", Description: "Take back read access; signed URLs granted through it stop working. Owner only."}, h.unshare),
		tool(h, &mcp.Tool{Name: "get_signed_url", Description: "A URL that serves the content with no API key, on any node of the mesh, until it expires."}, h.signedURL),
		tool(h, &mcp.Tool{Name: "delete", Description: "Delete the artifact with all its versions, grants and signed URLs. Owner only."}, h.delete),
		tool(h, &mcp.Tool{Name: "watch", Description: "Wait up to wait_seconds for changes to artifacts you may read (created, updated, deleted, version deleted, shared, unshared) and return them with the last_event_id to pass to the next watch call, so that a loop of calls misses nothing.", Annotations: readOnly()}, h.watch),
		tool(h, &mcp.Tool{Name: "delete_version", Description: "Delete one version of the artifact; the only version left cannot be deleted. Owner only."}, h.deleteVersion),
	}
}

func (h *handlers) addTools(s *mcp.Server) {
	for _, d := range h.toolTable() {
		d.add(s, d.tool)
	}
}

// Tools returns the tools that a server made by New serves, in order, with
// their names, descriptions and annotations (not their schemas), for
// documentation such as `artmesh mcp --help`.
func Tools() []*mcp.Tool {
	table := (&handlers{}).toolTable()
	out := make([]*mcp.Tool, len(table))
	for i, d := range table {
		out[i] = d.tool
	}
	return out
}

// checkID refuses an argument that is not an artifact id.
func checkID(id string) (artmesh.ArtifactID, error) {
	if !artmesh.ValidArtifactID(id) {
		return "", invalid("artifact_id %q is not an artifact id (art_ followed by 26 characters)", id)
	}
	return artmesh.ArtifactID(id), nil
}

// localPath resolves a path argument: ~/ is the home folder, and a
// relative path is from the working directory.
func localPath(p string) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", invalid("path %q: no home folder to expand ~ to: %v", p, err)
		}
		p = filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", invalid("path %q: %v", p, err)
	}
	return abs, nil
}

// source is the content of a create or update: a reader, its size (-1
// when unknown) and, for a file, its closer and name.
type source struct {
	r     io.Reader
	size  int64
	close func()
	base  string // the file's base name; "" for data
}

// openSource returns the content that data or path name.
func openSource(data *string, path string) (source, error) {
	switch {
	case data != nil && path != "":
		return source{}, invalid("give data or path, not both")
	case data != nil:
		return source{r: strings.NewReader(*data), size: int64(len(*data)), close: func() {}}, nil
	case path == "":
		return source{}, invalid("give the content as data (text) or path (a local file)")
	}
	abs, err := localPath(path)
	if err != nil {
		return source{}, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return source{}, invalid("path %q cannot be read: %v", path, errors.Unwrap(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return source{}, invalid("path %q cannot be read: %v", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return source{}, invalid("path %q is not a regular file", path)
	}
	return source{r: f, size: st.Size(), close: func() { f.Close() }, base: filepath.Base(abs)}, nil
}

// guessType is the content type of a create that gives none: the one the
// name's extension suggests, else text/plain for text, else "" (the node's
// application/octet-stream).
func guessType(name string, text bool) string {
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	if text {
		return "text/plain; charset=utf-8"
	}
	return ""
}

func checkReplicas(n int) error {
	if n < 0 {
		return invalid("replicas must be 0 (the mesh policy) or more, not %d", n)
	}
	return nil
}

func (h *handlers) create(ctx context.Context, a createArgs) (artmesh.Artifact, error) {
	if err := checkReplicas(a.Replicas); err != nil {
		return artmesh.Artifact{}, err
	}
	src, err := openSource(a.Data, a.Path)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	defer src.close()
	name := a.Name
	if name == "" {
		if src.base == "" {
			return artmesh.Artifact{}, invalid("give the artifact a name")
		}
		name = src.base
	}
	ct := a.ContentType
	if ct == "" {
		ct = guessType(name, a.Data != nil)
	}
	art, err := h.c.CreateArtifact(keyed(ctx, a.IdempotencyKey), src.r, client.CreateOptions{
		Name: name, ContentType: ct, Metadata: a.Metadata, Size: src.size, Replicas: a.Replicas,
	})
	return normalize(art), err
}

func (h *handlers) createSnippet(ctx context.Context, a snippetArgs) (artmesh.Artifact, error) {
	if err := checkReplicas(a.Replicas); err != nil {
		return artmesh.Artifact{}, err
	}
	if len(a.Content) == 0 {
		return artmesh.Artifact{}, invalid("give the snippet's content, any JSON value")
	}
	art, err := h.c.CreateSnippet(keyed(ctx, a.IdempotencyKey), a.Name, a.Content, a.Metadata, client.Replicas(a.Replicas))
	return normalize(art), err
}

func (h *handlers) get(ctx context.Context, a idArgs) (artmesh.Artifact, error) {
	id, err := checkID(a.ArtifactID)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	art, err := h.c.Artifact(ctx, id)
	return normalize(art), err
}

func (h *handlers) list(shared bool) func(context.Context, listArgs) (artmesh.Page[artmesh.Artifact], error) {
	return func(ctx context.Context, a listArgs) (artmesh.Page[artmesh.Artifact], error) {
		if a.Limit < 0 || a.Offset < 0 {
			return artmesh.Page[artmesh.Artifact]{}, invalid("limit and offset must not be negative")
		}
		f := artmesh.Filter{ContentType: a.ContentType, Name: a.Name, Limit: a.Limit, Offset: a.Offset, Cursor: a.Cursor}
		keys := make([]string, 0, len(a.MetadataFilter))
		for k := range a.MetadataFilter {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f.Meta = append(f.Meta, artmesh.MetaMatch{Key: k, Value: artmesh.MetaText(a.MetadataFilter[k])})
		}
		var p artmesh.Page[artmesh.Artifact]
		var err error
		if shared {
			p, err = h.c.ListShared(ctx, f)
		} else {
			p, err = h.c.ListArtifacts(ctx, f)
		}
		if err != nil {
			return artmesh.Page[artmesh.Artifact]{}, err
		}
		if p.Items == nil {
			p.Items = []artmesh.Artifact{}
		}
		for i := range p.Items {
			p.Items[i] = normalize(p.Items[i])
		}
		return p, nil
	}
}

// normalize gives an artifact an empty metadata object instead of null, as
// its schema says.
func normalize(a artmesh.Artifact) artmesh.Artifact {
	if a.Metadata == nil {
		a.Metadata = artmesh.Metadata{}
	}
	return a
}

func (h *handlers) download(ctx context.Context, a downloadArgs) (downloadResult, error) {
	id, err := checkID(a.ArtifactID)
	if err != nil {
		return downloadResult{}, err
	}
	if a.Version < 0 {
		return downloadResult{}, invalid("version must be 1 or more (0 or absent: the current one)")
	}
	var dest string
	if a.Path != "" {
		if dest, err = localPath(a.Path); err != nil {
			return downloadResult{}, err
		}
		if st, err := os.Stat(dest); err == nil && st.IsDir() {
			return downloadResult{}, invalid("path %q is a folder: give a file name", a.Path)
		}
	}
	ct, err := h.c.Download(ctx, id, client.DownloadOptions{Version: a.Version})
	if err != nil {
		return downloadResult{}, err
	}
	defer ct.Body.Close()
	res := downloadResult{ArtifactID: string(id), Version: ct.Version, CID: ct.CID, ContentType: ct.ContentType}
	if res.Version == 0 {
		res.Version = a.Version
	}
	if dest != "" {
		n, err := writeFile(dest, ct.Body, ct.Size)
		if err != nil {
			return downloadResult{}, err
		}
		res.Path, res.SizeBytes = dest, n
		return res, nil
	}
	res.SHA256 = ct.SHA256
	var data []byte
	if ct.Size <= MaxInlineBytes {
		if data, err = io.ReadAll(io.LimitReader(ct.Body, MaxInlineBytes+1)); err != nil {
			return downloadResult{}, fmt.Errorf("reading the content: %w", err)
		}
	}
	if ct.Size > MaxInlineBytes || len(data) > MaxInlineBytes || !utf8.Valid(data) {
		// Not as text: megabytes, or bytes that are not text, would be
		// base64 in the answer. A signed URL of the version read instead.
		su, size, err := h.versionLink(ctx, id, res.Version, ct)
		if err != nil {
			return downloadResult{}, err
		}
		res.URL, res.ExpiresAt, res.SizeBytes = su.URL, &su.ExpiresAt, size
		return res, nil
	}
	text := string(data)
	res.Text, res.SizeBytes = &text, int64(len(data))
	return res, nil
}

// writeFile streams body into a hidden temporary file next to dest, syncs
// it and renames it to dest, so that dest never holds a partial file; the
// file is readable by its owner only (mode 0600), as artifacts are
// private to the agents they are shared with. want is the expected
// length, -1 when unknown.
func writeFile(dest string, body io.Reader, want int64) (int64, error) {
	dir, base := filepath.Split(dest)
	f, err := os.CreateTemp(dir, "."+base+".*.artmesh-part")
	if err != nil {
		return 0, invalid("cannot write to %q: %v", dest, errors.Unwrap(err))
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, body)
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", dest, err)
	}
	if want >= 0 && n != want {
		return 0, &toolError{code: artmesh.Unavailable.String(), msg: fmt.Sprintf("the content ended after %d of %d bytes; nothing was written to %s", n, want, dest)}
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", dest, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", dest, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return 0, invalid("cannot write to %q: %v", dest, errors.Unwrap(err))
	}
	ok = true
	return n, nil
}

func (h *handlers) listVersions(ctx context.Context, a idArgs) (versionsResult, error) {
	id, err := checkID(a.ArtifactID)
	if err != nil {
		return versionsResult{}, err
	}
	vs, err := h.c.Versions(ctx, id)
	if err != nil {
		return versionsResult{}, err
	}
	if vs == nil {
		vs = []artmesh.Version{}
	}
	for i := range vs {
		if vs[i].Metadata == nil {
			vs[i].Metadata = artmesh.Metadata{}
		}
	}
	return versionsResult{Items: vs}, nil
}

func (h *handlers) update(ctx context.Context, a updateArgs) (artmesh.Artifact, error) {
	id, err := checkID(a.ArtifactID)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	if err := checkReplicas(a.Replicas); err != nil {
		return artmesh.Artifact{}, err
	}
	src, err := openSource(a.Data, a.Path)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	defer src.close()
	uctx := keyed(ctx, a.IdempotencyKey)
	if a.IfMatch != "" {
		uctx = client.WithIfMatch(uctx, a.IfMatch)
	}
	art, err := h.c.UpdateArtifact(uctx, id, src.r, client.UpdateOptions{
		ContentType: a.ContentType, Metadata: a.Metadata, Size: src.size, Replicas: a.Replicas,
	})
	return normalize(art), err
}

// agentIDs converts agent id arguments.
func agentIDs(ids []string) []artmesh.AgentID {
	out := make([]artmesh.AgentID, len(ids))
	for i, id := range ids {
		out[i] = artmesh.AgentID(id)
	}
	return out
}

// access gives an access answer empty lists instead of null.
func access(acc artmesh.Access) artmesh.Access {
	if acc.Agents == nil {
		acc.Agents = []artmesh.AgentID{}
	}
	if acc.Groups == nil {
		acc.Groups = []string{}
	}
	return acc
}

func (h *handlers) share(ctx context.Context, a shareArgs) (artmesh.Access, error) {
	id, err := checkID(a.ArtifactID)
	if err != nil {
		return artmesh.Access{}, err
	}
	if len(a.WithAgents) == 0 && len(a.WithGroups) == 0 {
		return artmesh.Access{}, invalid("give with_agents or with_groups to share with")
	}
	acc, err := h.c.Share(ctx, id, agentIDs(a.WithAgents), a.WithGroups)
	return access(acc), err
}

func (h *handlers) unshare(ctx context.Context, a unshareArgs) (artmesh.Access, error) {
	id, err := checkID(a.ArtifactID)
	if err != nil {
		return artmesh.Access{}, err
	}
	if len(a.Agents) == 0 && len(a.Groups) == 0 {
		return artmesh.Access{}, invalid("give agents or groups to take access from")
	}
	acc, err := h.c.Unshare(ctx, id, agentIDs(a.Agents), a.Groups)
	return access(acc), err
}

// maxExpiresIn is the longest a signed URL may work, as API.md caps it.
const maxExpiresIn = 7 * 24 * 3600

func (h *handlers) signedURL(ctx context.Context, a signedURLArgs) (client.SignedURL, error) {
	id, err := checkID(a.ArtifactID)
	if err != nil {
		return client.SignedURL{}, err
	}
	if a.ExpiresIn < 0 || a.ExpiresIn > maxExpiresIn {
		return client.SignedURL{}, invalid("expires_in must be 1 to %d seconds (0 or absent: 3600), not %d", maxExpiresIn, a.ExpiresIn)
	}
	if a.Version < 0 {
		return client.SignedURL{}, invalid("version must be 1 or more (0 or absent: the current one)")
	}
	exp := a.ExpiresIn
	if exp == 0 {
		exp = 3600
	}
	return h.c.CreateSignedURL(ctx, id, client.SignedURLOptions{ExpiresIn: time.Duration(exp) * time.Second, Version: a.Version})
}

func (h *handlers) delete(ctx context.Context, a idArgs) (deleteResult, error) {
	id, err := checkID(a.ArtifactID)
	if err != nil {
		return deleteResult{}, err
	}
	if err := h.c.DeleteArtifact(ctx, id); err != nil {
		return deleteResult{}, err
	}
	return deleteResult{ArtifactID: string(id), Deleted: true}, nil
}

func (h *handlers) deleteVersion(ctx context.Context, a deleteVersionArgs) (deleteResult, error) {
	id, err := checkID(a.ArtifactID)
	if err != nil {
		return deleteResult{}, err
	}
	if a.Version < 1 {
		return deleteResult{}, invalid("version must be 1 or more")
	}
	if err := h.c.DeleteVersion(ctx, id, a.Version); err != nil {
		return deleteResult{}, err
	}
	return deleteResult{ArtifactID: string(id), Version: a.Version, Deleted: true}, nil
}

// keyed returns ctx carrying a tool caller's idempotency key, if it gave
// one (else the client makes a fresh one for the write).
func keyed(ctx context.Context, key string) context.Context {
	if key == "" {
		return ctx
	}
	return client.WithIdempotencyKey(ctx, key)
}
