package api

import (
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
