package apitype

import (
	"time"

	"github.com/artmesh/artmesh"
)

// The states of an upload session, in UploadStatus.State.
const (
	UploadOpen      = "open"      // taking bytes
	UploadReceived  = "received"  // every declared byte arrived; waiting for confirm
	UploadConfirmed = "confirmed" // became an artifact or version
)

// UploadRequest is the body of POST /v1/uploads: it declares an upload
// session.
type UploadRequest struct {
	Name        string           `json:"name,omitempty"`
	ContentType string           `json:"content_type,omitempty"`
	SizeBytes   int64            `json:"size_bytes"` // the content's exact length
	Metadata    artmesh.Metadata `json:"metadata,omitempty"`
	// ArtifactID, when set, makes the upload a new version of that
	// artifact instead of a new artifact.
	ArtifactID artmesh.ArtifactID `json:"artifact_id,omitempty"`
	// ExpiresIn is how long the session stays open unconfirmed, in
	// seconds; 0 means the node's default (24 hours). At most 7 days.
	ExpiresIn int64 `json:"expires_in,omitempty"`
}

// UploadStatus describes an upload session: the answer of
// GET /v1/uploads/{id} and of PUT /v1/uploads/{id}/content, and the core
// of Upload.
type UploadStatus struct {
	ID            string             `json:"id"` // "upl_..."
	Name          string             `json:"name"`
	ContentType   string             `json:"content_type"`
	SizeBytes     int64              `json:"size_bytes"`            // the declared size
	ReceivedBytes int64              `json:"received_bytes"`        // bytes the node holds
	State         string             `json:"state"`                 // UploadOpen, UploadReceived or UploadConfirmed
	ExpiresAt     time.Time          `json:"expires_at"`            // unconfirmed uploads expire then
	ArtifactID    artmesh.ArtifactID `json:"artifact_id,omitempty"` // the artifact it updates, or became once confirmed
	CID           string             `json:"cid,omitempty"`         // the content's CID once all of it is received
	// Token is the write token of the session, sent only in the answer
	// that opens it (Upload), never again.
	Token string `json:"token,omitempty"`
}

// Upload is the answer of POST /v1/uploads: the new session and where its
// bytes go.
type Upload struct {
	UploadStatus
	// URL is where the bytes go, carrying the write token:
	// .../v1/uploads/{id}/content?token=...
	URL string `json:"url,omitempty"`
}

// ConfirmRequest is the body of POST /v1/uploads/{id}/confirm, which may
// also be left out.
type ConfirmRequest struct {
	// SHA256 is the content's SHA-256 in hex, checked when not empty.
	SHA256 string `json:"sha256,omitempty"`
}
