package api

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/node"
)

// conditional returns r carrying the precondition of its If-Match and
// If-None-Match headers, which the catalog checks in the write's own
// transaction (412 precondition_failed when it does not hold). A create
// takes If-None-Match: * (the caller owns no artifact of that name yet);
// an update or a deletion takes If-Match with the ETags (version CIDs)
// one of which must be the current version's, or *.
func conditional(r *http.Request, create bool) (*http.Request, error) {
	ifMatch, ifNone := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	var p node.Precondition
	switch {
	case create && ifMatch != "":
		return nil, artmesh.E(artmesh.Invalid, "If-Match applies to an existing artifact: a create takes If-None-Match: *")
	case create && ifNone != "":
		if strings.TrimSpace(ifNone) != "*" {
			return nil, artmesh.E(artmesh.Invalid, "a create takes If-None-Match: * only (create only if you own no artifact of that name)")
		}
		p.IfNoneMatch = true
	case !create && ifNone != "":
		return nil, artmesh.E(artmesh.Invalid, "If-None-Match applies to a create: an update or a deletion takes If-Match")
	case !create && ifMatch != "":
		p.IfMatch = node.ParseETags(ifMatch)
	default:
		return r, nil
	}
	return r.WithContext(node.WithPrecondition(r.Context(), p)), nil
}

// writeArtifact sends an artifact with its current version's ETag.
func writeArtifact(w http.ResponseWriter, status int, a artmesh.Artifact) {
	if a.CID != "" {
		w.Header().Set("ETag", `"`+a.CID+`"`)
	}
	writeJSON(w, status, a)
}

// declaredDigest returns r carrying the SHA-256 its content declares in
// Content-Digest (RFC 9530: sha-256=:BASE64:) or x-amz-checksum-sha256
// (BASE64), which the node checks as it reads the content (400
// checksum_mismatch, nothing recorded, when it differs), and the digest
// itself (nil when none was declared).
func declaredDigest(r *http.Request) (*http.Request, []byte, error) {
	var found []byte
	if v := r.Header.Get("Content-Digest"); v != "" {
		for _, member := range strings.Split(v, ",") {
			alg, val, ok := strings.Cut(strings.TrimSpace(member), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(alg), "sha-256") {
				continue
			}
			sum, err := base64Digest(strings.Trim(strings.TrimSpace(val), ":"))
			if err != nil {
				return nil, nil, artmesh.E(artmesh.Invalid, "Content-Digest: sha-256 takes a base64 SHA-256 between colons, as sha-256=:BASE64:")
			}
			found = sum
		}
		if found == nil {
			return nil, nil, artmesh.E(artmesh.Invalid, "Content-Digest: this node checks sha-256 only: send sha-256=:BASE64:")
		}
	}
	if v := r.Header.Get("X-Amz-Checksum-Sha256"); v != "" {
		sum, err := base64Digest(strings.TrimSpace(v))
		if err != nil {
			return nil, nil, artmesh.E(artmesh.Invalid, "x-amz-checksum-sha256 takes a base64 SHA-256")
		}
		if found != nil && !bytes.Equal(found, sum) {
			return nil, nil, artmesh.E(artmesh.Invalid, "Content-Digest and x-amz-checksum-sha256 declare different digests")
		}
		found = sum
	}
	if found == nil {
		return r, nil, nil
	}
	return r.WithContext(node.WithContentDigest(r.Context(), [32]byte(found))), found, nil
}

func base64Digest(s string) ([]byte, error) {
	sum, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(sum) != 32 {
		return nil, errors.New("not a base64 SHA-256")
	}
	return sum, nil
}
