package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"slices"
	"strings"
	"sync"
	"time"

	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/content"
)

// DefaultContentType is the type of content whose type was not given.
const DefaultContentType = "application/octet-stream"

// CreateInput describes a new artifact; its content comes as a stream.
type CreateInput struct {
	Name        string
	ContentType string // DefaultContentType when empty
	Metadata    artmesh.Metadata
	// Size is the content's declared length, or -1 when unknown. Content of
	// another length is refused and nothing is created.
	Size int64
	// Replicas is how many members must hold the content durably before
	// the write is acknowledged (0: the mesh policy's write_replicas).
	Replicas int
}

// UpdateInput describes a new version of an artifact.
type UpdateInput struct {
	ContentType string           // "" keeps the current type
	Metadata    artmesh.Metadata // merged over the current metadata
	Size        int64            // as in CreateInput
	Replicas    int              // as in CreateInput
}

// NormalizeContentType checks a media type and returns its canonical text
// (lower-case type, parameters kept); empty yields DefaultContentType.
func NormalizeContentType(ct string) (string, error) {
	ct = strings.TrimSpace(ct)
	if ct == "" {
		return DefaultContentType, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") || len(ct) > 255 {
		return "", artmesh.E(artmesh.Invalid, fmt.Sprintf("content type %q is not a valid media type", ct))
	}
	return mime.FormatMediaType(mt, params), nil
}

// optionalContentType normalises a content type given for a new version;
// empty stays empty, which keeps the current type.
func optionalContentType(ct string) (string, error) {
	if ct == "" {
		return "", nil
	}
	return NormalizeContentType(ct)
}

func validateMetadata(m artmesh.Metadata) (artmesh.Metadata, error) {
	if m == nil {
		return artmesh.Metadata{}, nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, artmesh.E(artmesh.Invalid, "metadata must be a JSON object", err)
	}
	return artmesh.ParseMetadata(data)
}

// importFor streams body into the store, enforcing the declared size, the
// node's cap and, for content of unknown size, room: the bytes left in the
// owner's byte quota (negative: no quota).
func (n *Node) importFor(ctx context.Context, body io.Reader, declared, room int64, tee content.Tee) (*content.Imported, error) {
	limit := int64(-1)
	if n.rc.MaxArtifactBytes > 0 {
		if declared > n.rc.MaxArtifactBytes {
			return nil, artmesh.E(artmesh.TooLarge, fmt.Sprintf("content of %d bytes is larger than this node's limit of %d", declared, n.rc.MaxArtifactBytes))
		}
		limit = n.rc.MaxArtifactBytes
	}
	if declared >= 0 {
		limit = declared
	}
	quotaBound := declared < 0 && room >= 0 && (limit < 0 || room < limit)
	if quotaBound {
		limit = room
	}
	im, err := n.content.ImportTee(ctx, body, limit, "", tee)
	if err != nil {
		if quotaBound && errors.Is(err, artmesh.TooLarge) {
			return nil, artmesh.E(artmesh.QuotaExceeded, fmt.Sprintf("the content is larger than the %s left in the owner's byte quota", artmesh.FormatBytes(room)))
		}
		if declared >= 0 && errors.Is(err, artmesh.TooLarge) && (n.rc.MaxArtifactBytes <= 0 || declared <= n.rc.MaxArtifactBytes) {
			return nil, artmesh.E(artmesh.Invalid, fmt.Sprintf("the content is longer than the declared %d bytes", declared))
		}
		return nil, err
	}
	if declared >= 0 && im.Size != declared {
		im.Release()
		return nil, artmesh.E(artmesh.Invalid, fmt.Sprintf("the content is %d bytes, not the declared %d", im.Size, declared))
	}
	return im, nil
}

// CreateArtifact stores the content of body and records a new artifact
// owned by caller. It answers once the content is durable and the catalog
// has applied the artifact here.
func (n *Node) CreateArtifact(ctx context.Context, caller artmesh.Agent, in CreateInput, body io.Reader) (artmesh.Artifact, error) {
	if err := artmesh.ValidateArtifactName(in.Name); err != nil {
		return artmesh.Artifact{}, err
	}
	ct, err := NormalizeContentType(in.ContentType)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	meta, err := validateMetadata(in.Metadata)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	room, err := n.byteRoom(caller.ID, in.Size)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	if p := catalog.PreconditionOf(ctx); p != nil && p.IfNoneMatch {
		// Before the content is read; the catalog checks again.
		if page, err := n.cat.List(caller.ID, artmesh.Filter{Name: in.Name, Limit: 1}); err == nil && len(page.Items) > 0 {
			return artmesh.Artifact{}, artmesh.E(artmesh.PreconditionFailed, fmt.Sprintf(
				"%s already owns an artifact named %q (%s); If-None-Match: * creates a name only once", caller.ID, in.Name, page.Items[0].ID))
		}
	}
	return n.importThen(ctx, "", body, in.Size, room, in.Replicas, func(im *content.Imported, holders []string, sha string) (artmesh.Artifact, error) {
		now := time.Now().UTC()
		return n.cat.CreateArtifact(ctx, catalog.CreateArtifact{
			ID:          artmesh.NewArtifactID(now),
			Name:        in.Name,
			ContentType: ct,
			Owner:       caller.ID,
			Metadata:    meta,
			CID:         im.CID.String(),
			SizeBytes:   im.Size,
			At:          now,
			Holder:      n.peerID.String(),
			Holders:     holders,
			SHA256:      sha,
		})
	})
}

// importThen stores body durably while pushing its blocks to replicas-1
// other members, which take durable copies (replicas 0: the mesh policy's
// write_replicas), then records it with record, passing those members as
// holders, while the import's blocks are still protected from the
// collector. When anything fails, nothing is recorded and the blocks are
// garbage. Content of up to EagerCopyMax bytes is also pushed, as an
// extra copy that costs the write little, to as many more members as the
// factor of artifact id (empty: a new artifact) asks for: those that take
// it are recorded as holders too, so that the version has its factor from
// its first write (see pushFan). room is what the owner's byte quota
// leaves for content of unknown size (negative: no quota; see byteRoom).
// When ctx declares the content's SHA-256 (WithContentDigest), the import
// computes it as it reads, and content with another digest is refused,
// ChecksumMismatch, with nothing recorded; record gets the digest (hex)
// to keep with the version, else "".
func (n *Node) importThen(ctx context.Context, id artmesh.ArtifactID, body io.Reader, size, room int64, replicas int, record func(im *content.Imported, holders []string, sha string) (artmesh.Artifact, error)) (artmesh.Artifact, error) {
	// Refuse before reading a byte, or asking others for copies, when
	// content of a known size cannot fit here (content over the node's
	// limit is refused as too large by importFor).
	if size >= 0 && (n.rc.MaxArtifactBytes <= 0 || size <= n.rc.MaxArtifactBytes) {
		if err := n.bs.CheckSpace(size); err != nil {
			return artmesh.Artifact{}, err
		}
	}
	want, err := n.writeReplicas(replicas)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	// Fail before reading the body when too few members are reachable.
	targets, extra, err := n.replicaTargets(want, n.extraCopies(id, want, size), size)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	var fan *pushFan
	var tee content.Tee
	if len(targets)+len(extra) > 0 {
		if fan, err = n.openPushes(ctx, slices.Concat(targets, extra), len(targets), n.cfg.EagerCopyMax); err != nil {
			return artmesh.Artifact{}, err
		}
		defer fan.abort()
		tee = fan.tee(ctx)
	}
	declared, digest := contentDigestOf(ctx)
	var h hash.Hash
	if digest {
		h = sha256.New()
		body = io.TeeReader(body, h)
	}
	im, err := n.importFor(ctx, body, size, room, tee)
	if err == nil && digest {
		if got := h.Sum(nil); !bytes.Equal(got, declared[:]) {
			im.Release()
			err = artmesh.E(artmesh.ChecksumMismatch, fmt.Sprintf(
				"the content's SHA-256 is %x, not the %x the request declared; nothing was recorded", got, declared))
		}
	}
	if err != nil {
		if fan != nil {
			fan.stop()
			if perr := fan.err(); perr != nil {
				return artmesh.Artifact{}, perr
			}
		}
		return artmesh.Artifact{}, err
	}
	defer im.Release()
	var holders []string
	if fan != nil {
		fctx, cancel := context.WithTimeout(ctx, n.cfg.ReplicateTimeout)
		holders, err = fan.finish(fctx, im.CID)
		cancel()
		if err != nil {
			return artmesh.Artifact{}, err
		}
	}
	n.verified.set(im.CID.String(), struct{}{})
	var sha string
	if digest {
		sha = hex.EncodeToString(declared[:])
	}
	a, err := record(im, holders, sha)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	return a, nil
}

// MaxSnippetBytes caps a snippet's JSON content.
const MaxSnippetBytes = 16 << 20

// CreateSnippet stores JSON content as an application/json artifact.
func (n *Node) CreateSnippet(ctx context.Context, caller artmesh.Agent, name string, content json.RawMessage, meta artmesh.Metadata, replicas int) (artmesh.Artifact, error) {
	if len(content) == 0 {
		return artmesh.Artifact{}, artmesh.E(artmesh.Invalid, "snippet content is required")
	}
	if !json.Valid(content) {
		return artmesh.Artifact{}, artmesh.E(artmesh.Invalid, "snippet content must be JSON")
	}
	if len(content) > MaxSnippetBytes {
		return artmesh.Artifact{}, artmesh.E(artmesh.TooLarge, fmt.Sprintf("snippet content is %d bytes; at most %d are allowed", len(content), MaxSnippetBytes))
	}
	return n.CreateArtifact(ctx, caller, CreateInput{Name: name, ContentType: "application/json", Metadata: meta, Size: int64(len(content)), Replicas: replicas}, bytes.NewReader(content))
}

// readable returns the artifact if caller may read it, and NotFound if it
// does not exist or caller may not see it.
func (n *Node) readable(caller artmesh.Agent, id artmesh.ArtifactID) (artmesh.Artifact, error) {
	return n.authorize(caller, id, artmesh.Read)
}

// authorize returns the artifact if caller holds right on it. An artifact
// the caller may not read is NotFound, so that existence is not leaked; one
// it may read but not change is PermissionDenied.
func (n *Node) authorize(caller artmesh.Agent, id artmesh.ArtifactID, right artmesh.Right) (artmesh.Artifact, error) {
	notFound := artmesh.E(artmesh.NotFound, fmt.Sprintf("artifact %s not found", id))
	if !artmesh.ValidArtifactID(string(id)) {
		return artmesh.Artifact{}, notFound
	}
	a, err := n.cat.Artifact(id)
	if errors.Is(err, artmesh.NotFound) && n.catchUp(context.Background()) {
		a, err = n.cat.Artifact(id)
	}
	if err != nil {
		if errors.Is(err, artmesh.NotFound) {
			return artmesh.Artifact{}, notFound
		}
		return artmesh.Artifact{}, err
	}
	subject := acl.Subject{Owner: a.Owner}
	if a.Owner != caller.ID {
		acc, err := n.cat.Access(id)
		if err != nil {
			if errors.Is(err, artmesh.NotFound) {
				return artmesh.Artifact{}, notFound
			}
			return artmesh.Artifact{}, err
		}
		subject.Agents, subject.Groups = acc.Agents, acc.Groups
	}
	if !acl.Can(caller.ID, caller.Groups, artmesh.Read, subject) {
		return artmesh.Artifact{}, notFound
	}
	if !acl.Can(caller.ID, caller.Groups, right, subject) {
		return artmesh.Artifact{}, artmesh.E(artmesh.PermissionDenied, fmt.Sprintf("only the owner may %s artifact %s", rightVerb(right), id))
	}
	return a, nil
}

func rightVerb(r artmesh.Right) string {
	switch r {
	case artmesh.Write:
		return "update"
	case artmesh.Share:
		return "share or unshare"
	case artmesh.Delete:
		return "delete"
	}
	return "read"
}

// Artifact returns an artifact that caller may read.
func (n *Node) Artifact(_ context.Context, caller artmesh.Agent, id artmesh.ArtifactID) (artmesh.Artifact, error) {
	if d := staleReads(); d > 0 {
		return n.staleArtifact(caller, id, d)
	}
	return n.readable(caller, id)
}

// staleArtifact is the broken read path of test builds (see staleReads):
// it answers with what it read of an artifact up to d ago.
func (n *Node) staleArtifact(caller artmesh.Agent, id artmesh.ArtifactID, d time.Duration) (artmesh.Artifact, error) {
	type read struct {
		a  artmesh.Artifact
		at time.Time
	}
	if v, ok := n.staleCache.Load(id); ok && time.Since(v.(read).at) < d {
		return v.(read).a, nil
	}
	a, err := n.readable(caller, id)
	if err == nil {
		n.staleCache.Store(id, read{a, time.Now()})
	}
	return a, err
}

// Content is an open version's content: a seekable stream and what
// describes it.
type Content struct {
	Artifact artmesh.Artifact
	Version  artmesh.Version
	// Reader reads the bytes; Close it when done.
	Reader uio.DagReader
}

// OpenContent opens a version (0: the current one) of an artifact that
// caller may read.
func (n *Node) OpenContent(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID, version int) (*Content, error) {
	a, err := n.readable(caller, id)
	if err != nil {
		return nil, err
	}
	if version < 0 {
		return nil, artmesh.E(artmesh.Invalid, fmt.Sprintf("version %d is not a version number", version))
	}
	v, err := n.cat.Version(id, version)
	if err != nil {
		if errors.Is(err, artmesh.NotFound) {
			return nil, artmesh.E(artmesh.NotFound, fmt.Sprintf("artifact %s has no version %d", id, version))
		}
		return nil, err
	}
	root, err := cid.Decode(v.CID)
	if err != nil {
		return nil, fmt.Errorf("node: catalog holds a bad cid %q: %w", v.CID, err)
	}
	n.reading.acquire(v.CID) // the collector keeps what is being read
	here := n.verifiedHere(ctx, v.CID)
	if !here && n.bs.CheckSpace(v.SizeBytes) != nil {
		// No room to keep a copy: stream it from a holder without
		// storing it.
		r, err := n.content.OpenThrough(ctx, root, n.fetcher.Through(root), n.cfg.ReadOpenTimeout)
		if err != nil {
			n.reading.release(v.CID)
			return nil, err
		}
		return &Content{Artifact: a, Version: v, Reader: &readingReader{DagReader: r, release: func() { n.reading.release(v.CID) }}}, nil
	}
	n.cache.set(v.CID, time.Now())
	if !here {
		// Not all here (a root block alone proves nothing): stream it
		// from a holder, serving it as it arrives.
		n.fetcher.Ensure(root)
	}
	// Blocks not here (never fetched, or quarantined by a failed check)
	// come from the holders; a read that nobody can serve fails within
	// ReadOpenTimeout, one that stalls within ReadStallTimeout.
	r, err := n.content.OpenVia(ctx, root, n.fetcher.Reader(root, n.cfg.ReadStallTimeout), n.cfg.ReadOpenTimeout)
	if err != nil {
		n.reading.release(v.CID)
		return nil, err
	}
	return &Content{Artifact: a, Version: v, Reader: &readingReader{DagReader: r, release: func() { n.reading.release(v.CID) }}}, nil
}

// readingReader ends a read's protection from the collector when it is
// closed.
type readingReader struct {
	uio.DagReader
	once    sync.Once
	release func()
}

func (r *readingReader) Close() error {
	err := r.DagReader.Close()
	r.once.Do(r.release)
	return err
}

// UpdateArtifact stores body as a new version of an artifact that caller
// owns.
func (n *Node) UpdateArtifact(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID, in UpdateInput, body io.Reader) (artmesh.Artifact, error) {
	a, err := n.authorize(caller, id, artmesh.Write)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	if err := checkPrecondition(ctx, a); err != nil {
		return artmesh.Artifact{}, err
	}
	ct, err := optionalContentType(in.ContentType)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	meta, err := validateMetadata(in.Metadata)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	room, err := n.byteRoom(a.Owner, in.Size)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	return n.importThen(ctx, id, body, in.Size, room, in.Replicas, func(im *content.Imported, holders []string, sha string) (artmesh.Artifact, error) {
		return n.cat.AddVersion(ctx, catalog.AddVersion{
			ArtifactID:  id,
			By:          caller.ID,
			ContentType: ct,
			Metadata:    meta,
			CID:         im.CID.String(),
			SizeBytes:   im.Size,
			At:          time.Now().UTC(),
			Holder:      n.peerID.String(),
			Holders:     holders,
			SHA256:      sha,
		})
	})
}

// UpdateMetadata makes a new version of an artifact that caller owns
// with the current version's content (the same CID: no bytes are read or
// stored) and patch merged into its metadata, as JSON merge patch does one
// level deep: each key of patch replaces the artifact's value, and a key
// whose value is JSON null is removed. The version counts against the
// owner's byte quota as any version does. The write is pinned to the
// content it read: when another version becomes current meanwhile, it
// fails PreconditionFailed and nothing is recorded, so that it never
// brings older content back.
func (n *Node) UpdateMetadata(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID, patch artmesh.Metadata) (artmesh.Artifact, error) {
	a, err := n.authorize(caller, id, artmesh.Write)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	if err := checkPrecondition(ctx, a); err != nil {
		return artmesh.Artifact{}, err
	}
	if len(patch) == 0 {
		return artmesh.Artifact{}, artmesh.E(artmesh.Invalid, "the metadata patch is empty: give at least one key to set, or to remove with null")
	}
	meta, err := validateMetadata(patch)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	// The merged metadata, which every version records whole, is held to
	// the same bound as a patch: patches of new keys, which send no
	// bytes, must not grow it without end.
	if merged, err := json.Marshal(a.Metadata.Merge(meta)); err == nil && len(merged) > artmesh.MaxMetadataBytes {
		return artmesh.Artifact{}, artmesh.E(artmesh.TooLarge, fmt.Sprintf("the artifact's metadata would be %d bytes with this patch; at most %d are allowed: remove keys (null) as you add them", len(merged), artmesh.MaxMetadataBytes))
	}
	cur, err := n.cat.Version(id, a.Version)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	if _, err := n.byteRoom(a.Owner, cur.SizeBytes); err != nil {
		return artmesh.Artifact{}, err
	}
	// The catalog checks in the write's transaction that the content is
	// still current (the caller's If-Match, checked above, held for it).
	pinned := WithPrecondition(ctx, Precondition{IfMatch: []string{cur.CID}})
	out, err := n.cat.AddVersion(pinned, catalog.AddVersion{
		ArtifactID: id,
		By:         caller.ID,
		Metadata:   meta,
		CID:        cur.CID,
		SizeBytes:  cur.SizeBytes,
		At:         time.Now().UTC(),
		SHA256:     cur.SHA256,
	})
	if errors.Is(err, artmesh.PreconditionFailed) && catalog.PreconditionOf(ctx) == nil {
		return artmesh.Artifact{}, artmesh.E(artmesh.PreconditionFailed, fmt.Sprintf(
			"another version of %s became current while its metadata was being updated; nothing was recorded: send the update again", id), err)
	}
	return out, err
}

// Versions lists the versions of an artifact that caller may read, oldest
// first.
func (n *Node) Versions(_ context.Context, caller artmesh.Agent, id artmesh.ArtifactID) ([]artmesh.Version, error) {
	if _, err := n.readable(caller, id); err != nil {
		return nil, err
	}
	return n.cat.Versions(id)
}

// DeleteArtifact deletes an artifact that caller owns, with its versions
// and grants. Its blocks are collected soon after.
func (n *Node) DeleteArtifact(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID) error {
	a, err := n.authorize(caller, id, artmesh.Delete)
	if err != nil {
		return err
	}
	if err := checkPrecondition(ctx, a); err != nil {
		return err
	}
	if err := n.cat.DeleteArtifact(ctx, id); err != nil {
		return err
	}
	return nil
}

// DeleteVersion deletes one version of an artifact that caller owns. The
// only remaining version cannot be deleted (Conflict): delete the artifact.
func (n *Node) DeleteVersion(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID, version int) (artmesh.Artifact, error) {
	a, err := n.authorize(caller, id, artmesh.Write)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	if err := checkPrecondition(ctx, a); err != nil {
		return artmesh.Artifact{}, err
	}
	if version < 1 {
		return artmesh.Artifact{}, artmesh.E(artmesh.Invalid, fmt.Sprintf("%d is not a version number", version))
	}
	a, err = n.cat.DeleteVersion(ctx, catalog.DeleteVersion{ArtifactID: id, Version: version, At: time.Now().UTC()})
	if err != nil {
		if errors.Is(err, artmesh.Conflict) {
			return artmesh.Artifact{}, artmesh.E(artmesh.Conflict, fmt.Sprintf("version %d is the only version of %s: delete the artifact instead", version, id))
		}
		return artmesh.Artifact{}, err
	}
	return a, nil
}

func normalizeFilter(f artmesh.Filter) (artmesh.Filter, error) {
	if f.Limit < 0 || f.Offset < 0 {
		return f, artmesh.E(artmesh.Invalid, "limit and offset must not be negative")
	}
	if f.Cursor != "" && f.Offset > 0 {
		return f, artmesh.E(artmesh.Invalid, "give cursor or offset, not both: a cursor already says where the page starts")
	}
	if f.Limit == 0 {
		f.Limit = artmesh.DefaultListLimit
	}
	if f.Limit > artmesh.MaxListLimit {
		return f, artmesh.E(artmesh.Invalid, fmt.Sprintf("limit %d is over the maximum of %d", f.Limit, artmesh.MaxListLimit))
	}
	return f, nil
}

// List returns a page of caller's own artifacts that match f, newest
// first; its NextCursor, as f.Cursor, continues it. A cursor with an
// offset is Invalid.
func (n *Node) List(_ context.Context, caller artmesh.Agent, f artmesh.Filter) (artmesh.Page[artmesh.Artifact], error) {
	f, err := normalizeFilter(f)
	if err != nil {
		return artmesh.Page[artmesh.Artifact]{}, err
	}
	return n.cat.List(caller.ID, f)
}

// ListShared returns the artifacts that others shared with caller,
// directly or through a group, that match f, newest first.
func (n *Node) ListShared(_ context.Context, caller artmesh.Agent, f artmesh.Filter) (artmesh.Page[artmesh.Artifact], error) {
	f, err := normalizeFilter(f)
	if err != nil {
		return artmesh.Page[artmesh.Artifact]{}, err
	}
	return n.cat.ListShared(caller.ID, f)
}

// Share grants read access to agents and groups; caller must own the
// artifact.
func (n *Node) Share(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID, agents []artmesh.AgentID, groups []string) (artmesh.Access, error) {
	if _, err := n.authorize(caller, id, artmesh.Share); err != nil {
		return artmesh.Access{}, err
	}
	return n.cat.Share(ctx, id, agents, groups)
}

// Unshare removes read access from agents and groups; caller must own the
// artifact.
func (n *Node) Unshare(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID, agents []artmesh.AgentID, groups []string) (artmesh.Access, error) {
	if _, err := n.authorize(caller, id, artmesh.Share); err != nil {
		return artmesh.Access{}, err
	}
	return n.cat.Unshare(ctx, id, agents, groups)
}

// Access returns who may read an artifact that caller may read.
func (n *Node) Access(_ context.Context, caller artmesh.Agent, id artmesh.ArtifactID) (artmesh.Access, error) {
	// The access list is the owner's, as sharing is (rights.go).
	if _, err := n.authorize(caller, id, artmesh.Share); err != nil {
		return artmesh.Access{}, err
	}
	return n.cat.Access(id)
}
