package api

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
	"github.com/artmesh/artmesh/node"
)

// baseURL is the base of the URLs that tokens travel in: the node's API
// address (tokenBaseURL), never the request's Host, which whoever sends
// the request chooses.
func (s *Server) baseURL() string { return tokenBaseURL(s.n.APIURL()) }

// tokenBaseURL returns the API URL to put in a token's URL: apiURL, with
// an unspecified listen address (0.0.0.0, ::) replaced by the loopback
// address, as the CLI does: that is where a local agent reaches the node.
func tokenBaseURL(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return strings.TrimRight(apiURL, "/")
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && ip.IsUnspecified() {
		lo := "127.0.0.1"
		if ip.Is6() {
			lo = "::1"
		}
		if u.Port() == "" {
			u.Host = lo
			if ip.Is6() {
				u.Host = "[" + lo + "]"
			}
		} else {
			u.Host = net.JoinHostPort(lo, u.Port())
		}
	}
	return u.Scheme + "://" + u.Host
}

func (s *Server) createSignedURL(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req apitype.SignedURLRequest
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		return err
	}
	su, err := s.n.CreateSignedURL(r.Context(), caller, artifactID(r), req.ExpiresIn, req.Version)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apitype.SignedURL{
		URL: s.baseURL() + "/v1/cap/" + su.Token, Token: su.Token, TokenID: su.TokenID, ExpiresAt: su.ExpiresAt,
	})
	return nil
}

// listSignedURLs lists an artifact's live signed URLs, without their
// tokens (GET /v1/artifacts/{id}/signed-urls).
func (s *Server) listSignedURLs(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	infos, err := s.n.SignedURLs(r.Context(), caller, artifactID(r))
	if err != nil {
		return err
	}
	out := make([]apitype.SignedURLInfo, len(infos))
	for i, x := range infos {
		out[i] = apitype.SignedURLInfo(x)
	}
	writeJSON(w, http.StatusOK, apitype.Items[apitype.SignedURLInfo]{Items: out})
	return nil
}

// getCap serves the content a read token grants, as /content would, with
// no other credential.
func (s *Server) getCap(w http.ResponseWriter, r *http.Request) {
	c, err := s.n.OpenCapContent(r.Context(), r.PathValue("token"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	defer c.Reader.Close()
	if err := serveContent(w, r, c); err != nil {
		writeError(w, r, s.log, err)
	}
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	if err := s.n.RevokeToken(r.Context(), caller, r.PathValue("token_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// createUpload opens an upload session. apitype's UploadRequest and
// UploadStatus have node's fields, so they convert; wire_test.go checks
// that their JSON tags agree too.
func (s *Server) createUpload(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req apitype.UploadRequest
	if err := decodeJSON(w, r, maxJSONBody, &req); err != nil {
		return err
	}
	st, err := s.n.CreateUpload(r.Context(), caller, node.UploadInput(req))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apitype.Upload{
		UploadStatus: apitype.UploadStatus(st),
		URL:          s.baseURL() + "/v1/uploads/" + st.ID + "/content?token=" + url.QueryEscape(st.Token),
	})
	return nil
}

func (s *Server) getUpload(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	st, err := s.n.Upload(r.Context(), caller, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apitype.UploadStatus(st))
	return nil
}

func (s *Server) listUploads(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	us, err := s.n.Uploads(r.Context(), caller)
	if err != nil {
		return err
	}
	out := make([]apitype.UploadStatus, len(us))
	for i, u := range us {
		out[i] = apitype.UploadStatus(u)
	}
	writeJSON(w, http.StatusOK, items(out))
	return nil
}

func (s *Server) deleteUpload(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	if err := s.n.AbandonUpload(r.Context(), caller, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) confirmUpload(w http.ResponseWriter, r *http.Request, caller artmesh.Agent) error {
	var req apitype.ConfirmRequest
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		return err
	}
	replicas, err := replicasParam(r)
	if err != nil {
		return err
	}
	// On a confirm, a declared digest is the whole content's, as S3's
	// x-amz-checksum-sha256 is on CompleteMultipartUpload.
	_, sum, err := declaredDigest(r)
	if err != nil {
		return err
	}
	if sum != nil {
		if req.SHA256 != "" && !strings.EqualFold(req.SHA256, hex.EncodeToString(sum)) {
			return artmesh.E(artmesh.Invalid, "the body's sha256 and the declared digest differ")
		}
		req.SHA256 = hex.EncodeToString(sum)
	}
	a, err := s.n.ConfirmUpload(r.Context(), caller, r.PathValue("id"), req.SHA256, replicas)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

// headUpload tells a client resuming an upload how many bytes the node
// holds, in Upload-Offset, and the declared size, in Upload-Length.
func (s *Server) headUpload(w http.ResponseWriter, r *http.Request) {
	have, size, err := s.n.UploadOffset(r.Context(), r.URL.Query().Get("token"), r.PathValue("id"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Upload-Offset", strconv.FormatInt(have, 10))
	w.Header().Set("Upload-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// putUpload takes bytes of an upload: the whole content, or with
// Content-Range: bytes S-E/TOTAL the part from S on.
func (s *Server) putUpload(w http.ResponseWriter, r *http.Request) {
	r, _, err := declaredDigest(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	start, total, err := parseContentRange(r.Header.Get("Content-Range"), r.ContentLength)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	st, err := s.n.WriteUpload(r.Context(), r.URL.Query().Get("token"), r.PathValue("id"), start, total, streamBody(w, r))
	if err != nil {
		var om *node.ErrOffsetMismatch
		if errors.As(err, &om) {
			w.Header().Set("Upload-Offset", strconv.FormatInt(om.Offset, 10))
		}
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Upload-Offset", strconv.FormatInt(st.ReceivedBytes, 10))
	writeJSON(w, http.StatusOK, apitype.UploadStatus(st))
}

// parseContentRange reads an upload's Content-Range: "bytes S-E/TOTAL".
// Without one the body starts at 0 (start -1, total -1). The range must
// agree with the body's length when that is known. "bytes */TOTAL" with
// an empty body sends no bytes and starts at TOTAL: it finishes an upload
// whose bytes all arrived but which the node did not take in (the
// connection broke as the last ones came, the node restarted meanwhile).
func parseContentRange(h string, length int64) (start, total int64, err error) {
	if h == "" {
		return -1, -1, nil
	}
	bad := artmesh.E(artmesh.Invalid, fmt.Sprintf("Content-Range %q: use bytes FIRST-LAST/TOTAL (or bytes */TOTAL with no body)", h))
	spec, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, bad
	}
	if tot, ok := strings.CutPrefix(spec, "*/"); ok {
		t, err := parseDigits(tot)
		if err != nil || length > 0 {
			return 0, 0, bad
		}
		return t, t, nil
	}
	rng, tot, ok := strings.Cut(spec, "/")
	if !ok {
		return 0, 0, bad
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, bad
	}
	s, err1 := parseDigits(first)
	e, err2 := parseDigits(last)
	t, err3 := parseDigits(tot)
	if err1 != nil || err2 != nil || err3 != nil || e < s || e >= t {
		return 0, 0, bad
	}
	if length >= 0 && length != e-s+1 {
		return 0, 0, artmesh.E(artmesh.Invalid, fmt.Sprintf("Content-Range %q names %d bytes but the body has %d", h, e-s+1, length))
	}
	return s, t, nil
}
