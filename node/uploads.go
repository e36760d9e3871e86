package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node/uploads"
)

// Upload sessions let a process without an API key send the bytes of a
// large file through an upload URL, resumably, and the owner confirm it
// into an artifact. The bytes that arrive are appended to a staging file
// under <repo>/uploads and made durable at the end of every PUT (package
// node/uploads), so that a broken upload resumes where it stopped, across
// restarts of the daemon. When the last byte arrives the node imports the
// file into the block store (the upload becomes "received", its CID
// recorded in the catalog) and removes it; confirming is then a single
// catalog write. The node decides who may write and confirm which upload
// and proposes every change of its state; the staging area only holds
// bytes.

// Upload lifetimes.
const (
	DefaultUploadTTL = 24 * time.Hour
	MaxUploadTTL     = 7 * 24 * time.Hour
	// UploadsDir holds the staging files of open uploads.
	UploadsDir = uploads.Dir
)

// UploadInput declares an upload session.
type UploadInput struct {
	Name        string             `json:"name"`
	ContentType string             `json:"content_type"`
	SizeBytes   int64              `json:"size_bytes"`
	Metadata    artmesh.Metadata   `json:"metadata"`
	ArtifactID  artmesh.ArtifactID `json:"artifact_id"`
	ExpiresIn   int64              `json:"expires_in"`
}

// UploadStatus describes an upload session.
type UploadStatus struct {
	ID            string             `json:"id"`
	Name          string             `json:"name"`
	ContentType   string             `json:"content_type"`
	SizeBytes     int64              `json:"size_bytes"`
	ReceivedBytes int64              `json:"received_bytes"`
	State         string             `json:"state"`
	ExpiresAt     time.Time          `json:"expires_at"`
	ArtifactID    artmesh.ArtifactID `json:"artifact_id,omitempty"`
	CID           string             `json:"cid,omitempty"`
	// Token authorises writing the bytes; set only when the session is made.
	Token string `json:"token,omitempty"`
}

// newStaging returns the staging area of the node's repo, which imports
// into the node's content store.
func (n *Node) newStaging() *uploads.Area {
	return uploads.New(uploads.Config{
		Dir: filepath.Join(n.cfg.Repo, UploadsDir),
		Import: func(ctx context.Context, r io.Reader, limit int64) (uploads.Imported, error) {
			im, err := n.content.Import(ctx, r, limit, "")
			if err != nil {
				return uploads.Imported{}, err
			}
			return uploads.Imported{CID: im.CID, Size: im.Size, Release: im.Release}, nil
		},
	})
}

// received returns how many bytes of an open upload are staged.
func (n *Node) received(u catalog.Upload) int64 {
	switch u.State {
	case catalog.StateReceived, catalog.StateConfirmed:
		return u.SizeBytes
	}
	return n.staging.Size(u.ID)
}

func (n *Node) uploadStatus(u catalog.Upload) UploadStatus {
	artifact := u.ArtifactID
	if u.Result != "" {
		artifact = u.Result // the artifact the confirm created or updated
	}
	return UploadStatus{
		ID: u.ID, Name: u.Name, ContentType: u.ContentType, SizeBytes: u.SizeBytes,
		ReceivedBytes: n.received(u), State: u.State, ExpiresAt: u.ExpiresAt,
		ArtifactID: artifact, CID: u.CID,
	}
}

// CreateUpload opens an upload session owned by caller and returns it with
// the token that authorises writing its bytes. With an ArtifactID the
// upload becomes a new version of that artifact, which caller must own.
func (n *Node) CreateUpload(ctx context.Context, caller artmesh.Agent, in UploadInput) (UploadStatus, error) {
	if in.SizeBytes < 0 {
		return UploadStatus{}, artmesh.E(artmesh.Invalid, "size_bytes must not be negative")
	}
	if n.rc.MaxArtifactBytes > 0 && in.SizeBytes > n.rc.MaxArtifactBytes {
		return UploadStatus{}, artmesh.E(artmesh.TooLarge, fmt.Sprintf("size_bytes %d is larger than this node's limit of %d", in.SizeBytes, n.rc.MaxArtifactBytes))
	}
	if err := n.checkUploadQuota(caller.ID, in.SizeBytes); err != nil {
		return UploadStatus{}, err
	}
	if err := n.bs.CheckSpace(in.SizeBytes); err != nil {
		return UploadStatus{}, err
	}
	ct := ""
	var err error
	if in.ArtifactID != "" {
		if _, err := n.authorize(caller, in.ArtifactID, artmesh.Write); err != nil {
			return UploadStatus{}, err
		}
		if ct, err = optionalContentType(in.ContentType); err != nil {
			return UploadStatus{}, err
		}
		if in.Name != "" {
			if err := artmesh.ValidateArtifactName(in.Name); err != nil {
				return UploadStatus{}, err
			}
		}
	} else {
		if err := artmesh.ValidateArtifactName(in.Name); err != nil {
			return UploadStatus{}, err
		}
		if ct, err = NormalizeContentType(in.ContentType); err != nil {
			return UploadStatus{}, err
		}
	}
	meta, err := validateMetadata(in.Metadata)
	if err != nil {
		return UploadStatus{}, err
	}
	if in.ExpiresIn < 0 || time.Duration(in.ExpiresIn)*time.Second > MaxUploadTTL {
		return UploadStatus{}, artmesh.E(artmesh.Invalid, fmt.Sprintf("expires_in must be from 1 to %d seconds", int64(MaxUploadTTL/time.Second)))
	}
	life := DefaultUploadTTL
	if in.ExpiresIn > 0 {
		life = time.Duration(in.ExpiresIn) * time.Second
	}
	now := time.Now().UTC().Truncate(time.Second)
	id := artmesh.NewUploadID(now)
	// The upload first, then its token: a request sent again with its
	// idempotency key gets the upload its first send made (the key goes
	// with the first catalog write), with a token minted afresh for it.
	u, err := n.cat.CreateUpload(ctx, catalog.CreateUpload{Upload: catalog.Upload{
		ID: id, Owner: caller.ID, Name: in.Name, ContentType: ct, SizeBytes: in.SizeBytes,
		Metadata: meta, ArtifactID: in.ArtifactID, ExpiresAt: now.Add(life),
	}, At: now})
	if err != nil {
		return UploadStatus{}, err
	}
	// Sent again, the create answers the upload as it is now (bytes
	// received, confirmed), not as it was made; one dropped since is gone.
	if u, err = n.cat.Upload(u.ID); err != nil {
		if errors.Is(err, artmesh.NotFound) {
			return UploadStatus{}, artmesh.E(artmesh.NotFound, fmt.Sprintf("upload %s, which this Idempotency-Key opened, was aborted or expired: open a new one with a new key", u.ID), err)
		}
		return UploadStatus{}, err
	}
	tok, err := n.mint(ctx, acl.Claims{Action: acl.ActionWrite, Agent: caller.ID, Target: u.ID, NotBefore: now, Expires: u.ExpiresAt})
	if err != nil {
		return UploadStatus{}, err
	}
	st := n.uploadStatus(u)
	st.Token = tok
	return st, nil
}

// writableUpload checks a write token for upload id and returns the
// upload, which must still take bytes.
func (n *Node) writableUpload(ctx context.Context, token, id string) (catalog.Upload, error) {
	c, err := n.verifyToken(ctx, token, acl.ActionWrite)
	if err != nil {
		return catalog.Upload{}, err
	}
	if c.Target != id {
		return catalog.Upload{}, artmesh.E(artmesh.PermissionDenied, fmt.Sprintf("this token is for upload %s, not %s", c.Target, id))
	}
	u, err := n.cat.Upload(id)
	if err != nil {
		if errors.Is(err, artmesh.NotFound) {
			return catalog.Upload{}, artmesh.E(artmesh.NotFound, fmt.Sprintf("upload %s not found: it was abandoned or has expired", id))
		}
		return catalog.Upload{}, err
	}
	if !time.Now().Before(u.ExpiresAt) {
		return catalog.Upload{}, artmesh.E(artmesh.Expired, fmt.Sprintf("upload %s expired at %s", id, u.ExpiresAt.Format(time.RFC3339)))
	}
	return u, nil
}

// UploadOffset tells how many bytes of an upload the node holds, for a
// client resuming it, and its declared size.
func (n *Node) UploadOffset(ctx context.Context, token, id string) (received, size int64, err error) {
	u, err := n.writableUpload(ctx, token, id)
	if err != nil {
		return 0, 0, err
	}
	if u.State == catalog.StateConfirmed {
		return 0, 0, artmesh.E(artmesh.Conflict, fmt.Sprintf("upload %s is already confirmed", id))
	}
	return n.received(u), u.SizeBytes, nil
}

// ErrOffsetMismatch is the Conflict of a write that does not start where
// the node's copy ends; its Offset says where to resume.
type ErrOffsetMismatch = uploads.ErrOffsetMismatch

// WriteUpload appends body to an upload. start is where the body begins
// (-1 when the request named no range: then it must be the first write),
// total the total size the request stated (-1 when none). Every byte that
// arrives is kept, even when the body breaks off. When the upload is
// complete it is imported and becomes received.
func (n *Node) WriteUpload(ctx context.Context, token, id string, start, total int64, body io.Reader) (UploadStatus, error) {
	u, err := n.writableUpload(ctx, token, id)
	if err != nil {
		return UploadStatus{}, err
	}
	// The write it makes acts for the upload's token (see catalog.Credential).
	ctx = catalog.WithCredential(ctx, catalog.Credential{Token: token})
	staged := n.staging.Lock(id)
	defer staged.Unlock()
	if u, err = n.cat.Upload(id); err != nil {
		return UploadStatus{}, err
	}
	if u.State != catalog.StateOpen {
		return UploadStatus{}, artmesh.E(artmesh.Conflict, fmt.Sprintf("upload %s is %s: it takes no more bytes", id, u.State))
	}
	// The content must fit in the block store once it is all here.
	if err := n.bs.CheckSpace(u.SizeBytes); err != nil {
		return UploadStatus{}, err
	}
	var want *[32]byte
	if sum, ok := contentDigestOf(ctx); ok {
		want = &sum
	}
	have, err := staged.AppendChecked(start, total, u.SizeBytes, body, want)
	if err != nil {
		return UploadStatus{}, err
	}
	if have < u.SizeBytes {
		return n.uploadStatus(u), nil
	}
	return n.receive(ctx, staged, u)
}

// receive imports a complete staging file and records the upload as
// received.
func (n *Node) receive(ctx context.Context, staged *uploads.Staged, u catalog.Upload) (UploadStatus, error) {
	// Every byte is here: the import and its record go on if the client
	// goes away now (a Ctrl-C as the last bytes went), so that the upload
	// is received rather than left open with all of its bytes.
	ctx = context.WithoutCancel(ctx)
	rec, err := staged.Import(ctx, u.SizeBytes)
	if err != nil {
		return UploadStatus{}, err
	}
	defer rec.Release()
	u, err = n.cat.UploadReceived(ctx, catalog.UploadReceived{ID: u.ID, Holder: n.peerID.String(), CID: rec.CID.String(), SHA256: rec.SHA256, Size: rec.Size, At: time.Now().UTC()})
	if err != nil {
		return UploadStatus{}, err
	}
	if err := staged.Remove(); err != nil {
		n.log.Warn("removing a staging file", "upload", u.ID, "err", err)
	}
	return n.uploadStatus(u), nil
}

// ownUpload returns an upload that caller owns; others' uploads are
// NotFound.
func (n *Node) ownUpload(caller artmesh.Agent, id string) (catalog.Upload, error) {
	u, err := n.cat.Upload(id)
	if err != nil || u.Owner != caller.ID {
		return catalog.Upload{}, artmesh.E(artmesh.NotFound, fmt.Sprintf("upload %s not found", id))
	}
	return u, nil
}

// Upload describes an upload that caller owns.
func (n *Node) Upload(_ context.Context, caller artmesh.Agent, id string) (UploadStatus, error) {
	u, err := n.ownUpload(caller, id)
	if err != nil {
		return UploadStatus{}, err
	}
	return n.uploadStatus(u), nil
}

// Uploads returns caller's uploads that are not confirmed yet (open, or
// received and waiting for a confirm), oldest expiry first: what an interrupted
// client can resume, confirm or abandon. Uploads are few (each agent may
// hold a quota of them open, and each expires), so they are read whole.
func (n *Node) Uploads(_ context.Context, caller artmesh.Agent) ([]UploadStatus, error) {
	all, err := n.cat.Uploads()
	if err != nil {
		return nil, err
	}
	out := []UploadStatus{}
	for _, u := range all {
		if u.Owner == caller.ID && u.State != catalog.StateConfirmed {
			out = append(out, n.uploadStatus(u))
		}
	}
	slices.SortFunc(out, func(a, b UploadStatus) int {
		return cmp.Or(a.ExpiresAt.Compare(b.ExpiresAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// ConfirmUpload turns a received upload that caller owns into its
// artifact or version, after checking its SHA-256 when one is given.
// With replicas (0: the mesh policy's write_replicas) above the number of
// members that hold the received bytes, more members take copies first.
func (n *Node) ConfirmUpload(ctx context.Context, caller artmesh.Agent, id, sha string, replicas int) (artmesh.Artifact, error) {
	u, err := n.ownUpload(caller, id)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	switch u.State {
	case catalog.StateOpen:
		return artmesh.Artifact{}, artmesh.E(artmesh.Conflict, fmt.Sprintf("upload %s has received %d of its %d bytes: send the rest before confirming", id, n.received(u), u.SizeBytes))
	case catalog.StateConfirmed:
		return artmesh.Artifact{}, artmesh.E(artmesh.Conflict, fmt.Sprintf("upload %s is already confirmed", id))
	}
	if sha != "" && !strings.EqualFold(sha, u.SHA256) {
		return artmesh.Artifact{}, artmesh.E(artmesh.ChecksumMismatch, fmt.Sprintf("the upload's SHA-256 is %s, not %s; nothing was recorded", u.SHA256, sha))
	}
	if u.ArtifactID != "" {
		if _, err := n.authorize(caller, u.ArtifactID, artmesh.Write); err != nil {
			return artmesh.Artifact{}, err
		}
	}
	want, err := n.writeReplicas(replicas)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	have, err := n.cat.Holders(u.CID)
	if err != nil {
		return artmesh.Artifact{}, err
	}
	var holders []string
	if want > len(have) && len(have) > 0 {
		targets, _, err := n.replicaTargets(want, 0, u.SizeBytes, have...)
		if err != nil {
			return artmesh.Artifact{}, err
		}
		root, err := cid.Decode(u.CID)
		if err != nil {
			return artmesh.Artifact{}, fmt.Errorf("node: upload %s has a bad cid: %w", id, err)
		}
		source := have[0]
		if slices.Contains(have, n.peerID.String()) {
			source = ""
		}
		if holders, err = n.replicate(ctx, root, source, targets); err != nil {
			return artmesh.Artifact{}, err
		}
	}
	now := time.Now().UTC()
	return n.cat.ConfirmUpload(ctx, catalog.ConfirmUpload{ID: id, NewID: artmesh.NewArtifactID(now), At: now, Holders: holders})
}

// AbandonUpload forgets an upload that caller owns; its bytes are
// collected.
func (n *Node) AbandonUpload(ctx context.Context, caller artmesh.Agent, id string) error {
	if _, err := n.ownUpload(caller, id); err != nil {
		return err
	}
	staged := n.staging.Lock(id)
	defer staged.Unlock()
	if err := n.cat.DeleteUpload(ctx, id); err != nil {
		return err
	}
	return staged.Remove()
}

// janitor expires uploads and forgets expired tokens (when this node
// leads the catalog), and removes staging files of uploads that are no
// longer open (on every node).
func (n *Node) janitor(ctx context.Context) {
	now := time.Now().UTC()
	if n.cat.IsLeader() {
		if gone, err := n.cat.ExpireUploads(ctx, now); err != nil {
			n.log.Warn("expiring uploads", "err", err)
		} else if len(gone) > 0 {
			n.log.Info("expired uploads", "count", len(gone))
		}
		if _, err := n.cat.PurgeTokens(ctx, now.Add(-n.skew-time.Minute)); err != nil {
			n.log.Warn("purging tokens", "err", err)
		}
	}
	// Staging files are swept against committed state only: once caught
	// up, and after a read-index barrier, as the collector does. A node
	// behind the leader (an emptied Raft folder being rebuilt) would
	// otherwise take the open uploads it has not heard of yet for gone
	// and delete their bytes.
	if !n.caughtUp.Load() || n.Consistent(ctx) != nil {
		return
	}
	open := func(id string) bool {
		u, err := n.cat.Upload(id)
		return err == nil && u.State == catalog.StateOpen
	}
	if _, err := n.staging.Sweep(open); err != nil {
		n.log.Warn("removing staging files", "err", err)
	}
}
