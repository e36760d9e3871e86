package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
	"github.com/artmesh/artmesh/node"
)

// MetadataHeader carries an artifact's metadata as a JSON object.
const MetadataHeader = "Artifact-Metadata"

func artifactID(r *http.Request) artmesh.ArtifactID {
	return artmesh.ArtifactID(r.PathValue("id"))
}

// metadataFromHeader parses the Artifact-Metadata header, if any.
func metadataFromHeader(r *http.Request) (artmesh.Metadata, error) {
	v := r.Header.Get(MetadataHeader)
	if v == "" {
		return nil, nil
	}
	m, err := artmesh.ParseMetadata([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("%s header: %w", MetadataHeader, err)
	}
	return m, nil
}

// decodeJSON reads a JSON body of at most limit bytes into v, refusing
// unknown fields and trailing data.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return artmesh.E(artmesh.TooLarge, fmt.Sprintf("the request body is larger than the %d bytes this route allows", limit))
		}
		if errors.Is(err, io.EOF) {
			return artmesh.E(artmesh.Invalid, "the request body is empty; a JSON object is required")
		}
		return artmesh.E(artmesh.Invalid, "the request body is not valid JSON for this route: "+err.Error())
	}
	if dec.More() {
		return artmesh.E(artmesh.Invalid, "the request body has data after the JSON object")
	}
	return nil
}

// decodeOptionalJSON is decodeJSON for routes whose body may be left out
// (no Content-Length body at all); a body that is sent must be valid.
func decodeOptionalJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return decodeJSON(w, r, maxJSONBody, v)
}

// streamBody returns the request body as a reader that extends the read
// deadline as data arrives.
func streamBody(w http.ResponseWriter, r *http.Request) io.Reader {
	rc := http.NewResponseController(w)
	return &deadlineReader{r: r.Body, rc: rc}
}

type deadlineReader struct {
	r    io.Reader
	rc   *http.ResponseController
	last time.Time
}

// Abort makes a Read blocked on the connection return at once, so that an
// import that gave up is not held by a slow client.
func (d *deadlineReader) Abort() { _ = d.rc.SetReadDeadline(time.Now()) }

func (d *deadlineReader) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(d.last) > time.Second {
		_ = d.rc.SetReadDeadline(now.Add(streamTimeout))
		d.last = now
	}
	return d.r.Read(p)
}

// declaredSize is the body's Content-Length, or -1 when it is not known.
func declaredSize(r *http.Request) int64 {
	if r.ContentLength >= 0 {
		return r.ContentLength
	}
	return -1
}

func (s *Server) createArtifact(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	r, err := conditional(r, true)
	if err != nil {
		return err
	}
	if r, _, err = declaredDigest(r); err != nil {
		return err
	}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		return s.createMultipart(w, r, caller, params["boundary"])
	}
	meta, err := metadataFromHeader(r)
	if err != nil {
		return err
	}
	replicas, err := replicasParam(r)
	if err != nil {
		return err
	}
	in := node.CreateInput{
		Name:        r.URL.Query().Get("name"),
		ContentType: r.Header.Get("Content-Type"),
		Metadata:    meta,
		Size:        declaredSize(r),
		Replicas:    replicas,
	}
	if in.Name == "" {
		return artmesh.E(artmesh.Invalid, "the name query parameter is required: POST /v1/artifacts?name=NAME")
	}
	a, err := s.n.CreateArtifact(r.Context(), caller, in, streamBody(w, r))
	if err != nil {
		return err
	}
	writeArtifact(w, http.StatusCreated, a)
	return nil
}

// multipartMeta is the JSON of the meta part of a multipart create.
type multipartMeta struct {
	Name        string           `json:"name"`
	ContentType string           `json:"content_type"`
	Metadata    artmesh.Metadata `json:"metadata"`
}

// createMultipart takes a multipart/form-data create: a "meta" part (JSON)
// and then a "file" part, streamed.
func (s *Server) createMultipart(w http.ResponseWriter, r *http.Request, caller artmesh.Agent, boundary string) error {
	if boundary == "" {
		return artmesh.E(artmesh.Invalid, "multipart/form-data without a boundary")
	}
	body := streamBody(w, r)
	mr := multipart.NewReader(body, boundary)
	var meta multipartMeta
	haveMeta := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return artmesh.E(artmesh.Invalid, "the multipart body has no file part")
		}
		if err != nil {
			return artmesh.E(artmesh.Invalid, "malformed multipart body", err)
		}
		switch part.FormName() {
		case "meta":
			data, err := io.ReadAll(io.LimitReader(part, artmesh.MaxMetadataBytes+4096))
			if err != nil {
				return artmesh.E(artmesh.Invalid, "reading the meta part", err)
			}
			if len(data) > artmesh.MaxMetadataBytes+4096-1 {
				return artmesh.E(artmesh.TooLarge, "the meta part is too large")
			}
			dec := json.NewDecoder(strings.NewReader(string(data)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&meta); err != nil {
				return artmesh.E(artmesh.Invalid, "the meta part must be a JSON object with name, content_type and metadata: "+err.Error())
			}
			if meta.Metadata != nil {
				raw, _ := json.Marshal(meta.Metadata)
				if meta.Metadata, err = artmesh.ParseMetadata(raw); err != nil {
					return err
				}
			}
			haveMeta = true
		case "file":
			name := meta.Name
			if name == "" {
				name = r.URL.Query().Get("name")
			}
			if name == "" {
				name = part.FileName()
			}
			ct := meta.ContentType
			if ct == "" && haveMeta {
				ct = part.Header.Get("Content-Type")
			} else if ct == "" {
				ct = part.Header.Get("Content-Type")
			}
			replicas, err := replicasParam(r)
			if err != nil {
				return err
			}
			in := node.CreateInput{Name: name, ContentType: ct, Metadata: meta.Metadata, Size: -1, Replicas: replicas}
			if in.Name == "" {
				return artmesh.E(artmesh.Invalid, "the artifact needs a name: give it in the meta part or as ?name=")
			}
			a, err := s.n.CreateArtifact(r.Context(), caller, in, abortablePart{Reader: part, body: body})
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusCreated, a)
			return nil
		default:
			// Unknown parts are skipped, as form handlers do.
			if _, err := io.Copy(io.Discard, io.LimitReader(part, 1<<20)); err != nil {
				return artmesh.E(artmesh.Invalid, "malformed multipart body", err)
			}
		}
	}
}

// abortablePart is a multipart part whose blocked Read an import can cut
// short through the request body.
type abortablePart struct {
	io.Reader
	body io.Reader
}

func (p abortablePart) Abort() {
	if a, ok := p.body.(interface{ Abort() }); ok {
		a.Abort()
	}
}

func (s *Server) createSnippet(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	r, err := conditional(r, true)
	if err != nil {
		return err
	}
	if r, _, err = declaredDigest(r); err != nil {
		return err
	}
	replicas, err := replicasParam(r)
	if err != nil {
		return err
	}
	var req apitype.SnippetRequest
	if err := decodeJSON(w, r, maxSnippetBody, &req); err != nil {
		return err
	}
	a, err := s.n.CreateSnippet(r.Context(), caller, req.Name, req.Content, req.Metadata, replicas)
	if err != nil {
		return err
	}
	writeArtifact(w, http.StatusCreated, a)
	return nil
}

func (s *Server) getArtifact(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	a, err := s.n.Artifact(r.Context(), caller, artifactID(r))
	if err != nil {
		return err
	}
	writeArtifact(w, http.StatusOK, a)
	return nil
}

// replicasParam reads ?replicas=N: how many members must hold a write
// durably before it is acknowledged (0 when absent: the mesh policy's).
func replicasParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("replicas")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, artmesh.E(artmesh.Invalid, fmt.Sprintf("replicas %q must be a whole number from 1", v))
	}
	return n, nil
}

// versionParam reads ?version=N (0 when absent).
func versionParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("version")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, artmesh.E(artmesh.Invalid, fmt.Sprintf("version %q must be a whole number from 1", v))
	}
	return n, nil
}

func (s *Server) getContent(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	version, err := versionParam(r)
	if err != nil {
		return err
	}
	c, err := s.n.OpenContent(r.Context(), caller, artifactID(r), version)
	if err != nil {
		return err
	}
	defer c.Reader.Close()
	return serveContent(w, r, c)
}

func (s *Server) updateContent(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	r, err := conditional(r, false)
	if err != nil {
		return err
	}
	if r, _, err = declaredDigest(r); err != nil {
		return err
	}
	meta, err := metadataFromHeader(r)
	if err != nil {
		return err
	}
	replicas, err := replicasParam(r)
	if err != nil {
		return err
	}
	in := node.UpdateInput{ContentType: r.Header.Get("Content-Type"), Metadata: meta, Size: declaredSize(r), Replicas: replicas}
	a, err := s.n.UpdateArtifact(r.Context(), caller, artifactID(r), in, streamBody(w, r))
	if err != nil {
		return err
	}
	writeArtifact(w, http.StatusCreated, a)
	return nil
}

// updateMetadata makes a new version with the current content and the
// body's metadata merged in (PATCH /v1/artifacts/{id}).
func (s *Server) updateMetadata(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	r, err := conditional(r, false)
	if err != nil {
		return err
	}
	var req apitype.MetadataPatchRequest
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	if req.Metadata == nil {
		return artmesh.E(artmesh.Invalid, `the body must be {"metadata": {...}}: an object of the keys to set, a key set to null to remove it`)
	}
	a, err := s.n.UpdateMetadata(r.Context(), caller, artifactID(r), req.Metadata)
	if err != nil {
		return err
	}
	writeArtifact(w, http.StatusCreated, a)
	return nil
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	vs, err := s.n.Versions(r.Context(), caller, artifactID(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(vs))
	return nil
}

func (s *Server) deleteArtifact(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	r, err := conditional(r, false)
	if err != nil {
		return err
	}
	if err := s.n.DeleteArtifact(r.Context(), caller, artifactID(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deleteVersion(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	r, err := conditional(r, false)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		// An unknown artifact is still a 404, whatever the version says.
		if _, aerr := s.n.Artifact(r.Context(), caller, artifactID(r)); aerr != nil {
			return aerr
		}
		return artmesh.E(artmesh.Invalid, fmt.Sprintf("version %q must be a whole number from 1", r.PathValue("n")))
	}
	if _, err := s.n.DeleteVersion(r.Context(), caller, artifactID(r), n); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseFilter reads the listing query: content_type, name,
// metadata.KEY=VALUE (repeatable, at most MaxMetaFilters), limit, offset,
// cursor.
// A query that does not parse is refused, never read as empty: Go's
// parser stops at 10,000 parameters and skips malformed ones.
func parseFilter(r *http.Request) (artmesh.Filter, error) {
	var f artmesh.Filter
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return f, err
	}
	for key, vals := range q {
		switch {
		case key == "content_type":
			f.ContentType = vals[0]
		case key == "name":
			f.Name = vals[0]
		case key == "limit" || key == "offset":
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 0 {
				return f, artmesh.E(artmesh.Invalid, fmt.Sprintf("%s %q must be a whole number", key, vals[0]))
			}
			if key == "limit" {
				if n == 0 || n > artmesh.MaxListLimit {
					return f, artmesh.E(artmesh.Invalid, fmt.Sprintf("limit must be from 1 to %d", artmesh.MaxListLimit))
				}
				f.Limit = n
			} else {
				f.Offset = n
			}
		case key == "cursor":
			f.Cursor = vals[0]
		case strings.HasPrefix(key, "metadata."):
			mk := strings.TrimPrefix(key, "metadata.")
			if mk == "" {
				return f, artmesh.E(artmesh.Invalid, "a metadata filter needs a key: metadata.KEY=VALUE")
			}
			if len(f.Meta)+len(vals) > artmesh.MaxMetaFilters {
				return f, artmesh.E(artmesh.Invalid, fmt.Sprintf("at most %d metadata filters are allowed in one listing", artmesh.MaxMetaFilters))
			}
			for _, v := range vals {
				f.Meta = append(f.Meta, artmesh.MetaMatch{Key: mk, Value: v})
			}
		case key == "consistent":
		default:
			return f, artmesh.E(artmesh.Invalid, fmt.Sprintf("unknown query parameter %q: filters are content_type, name, metadata.KEY, limit, cursor, offset", key))
		}
	}
	return f, nil
}

func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	f, err := parseFilter(r)
	if err != nil {
		return err
	}
	page, err := s.n.List(r.Context(), caller, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) listShared(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	f, err := parseFilter(r)
	if err != nil {
		return err
	}
	page, err := s.n.ListShared(r.Context(), caller, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) share(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req apitype.ShareRequest
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	acc, err := s.n.Share(r.Context(), caller, artifactID(r), req.Agents, req.Groups)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, acc)
	return nil
}

func (s *Server) unshare(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req apitype.ShareRequest
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	acc, err := s.n.Unshare(r.Context(), caller, artifactID(r), req.Agents, req.Groups)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, acc)
	return nil
}

// access serves the access list, which only the owner may see: rights.go
// puts seeing it under Share, which only the owner holds. A grantee gets
// a 403 (it may read the artifact, so its existence is no secret to it),
// anyone else the 404 of an artifact they may not read.
func (s *Server) access(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	acc, err := s.n.Access(r.Context(), caller, artifactID(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, acc)
	return nil
}
