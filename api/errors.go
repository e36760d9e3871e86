package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// statusOf maps an error kind to its one HTTP status.
func statusOf(k artmesh.Kind) int {
	switch k {
	case artmesh.Invalid, artmesh.ChecksumMismatch:
		return http.StatusBadRequest
	case artmesh.Unauthenticated:
		return http.StatusUnauthorized
	case artmesh.PermissionDenied:
		return http.StatusForbidden
	case artmesh.NotFound:
		return http.StatusNotFound
	case artmesh.Conflict:
		return http.StatusConflict
	case artmesh.Expired:
		return http.StatusGone
	case artmesh.TooLarge:
		return http.StatusRequestEntityTooLarge
	case artmesh.RangeNotSatisfiable:
		return http.StatusRequestedRangeNotSatisfiable
	case artmesh.Unavailable, artmesh.OutcomeUnknown:
		return http.StatusServiceUnavailable
	case artmesh.InsufficientStorage, artmesh.QuotaExceeded:
		return http.StatusInsufficientStorage
	case artmesh.TooMany:
		return http.StatusTooManyRequests
	case artmesh.IdempotencyKeyReused:
		return http.StatusUnprocessableEntity
	case artmesh.PreconditionFailed:
		return http.StatusPreconditionFailed
	}
	return http.StatusInternalServerError
}

// writeError sends err in the API's error shape with the status of its
// kind. Internal errors are logged and their text is not sent.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	kind := artmesh.KindOf(err)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		kind = artmesh.TooLarge
		err = artmesh.E(artmesh.TooLarge, "the request body is larger than this route allows")
	}
	status := statusOf(kind)
	msg := artmesh.Message(err)
	if status == http.StatusInternalServerError {
		log.Error("request failed", "method", r.Method, "path", redactPath(r.URL.Path), "err", err)
		msg = "internal error; the node's log has the details"
	}
	if status == http.StatusServiceUnavailable {
		// The answer says what is unavailable; the cause (a dial error, a
		// refusal from the leader) is for the operator.
		log.Warn("request unavailable", "method", r.Method, "path", redactPath(r.URL.Path), "err", err)
	}
	if kind == artmesh.InsufficientStorage {
		// The client is told; the operator has a disk to look after.
		log.Warn("request refused: the disk is full", "method", r.Method, "path", redactPath(r.URL.Path), "err", msg)
	}
	h := w.Header()
	h.Del("Content-Disposition")
	h.Del("ETag")
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	if kind == artmesh.Unauthenticated {
		h.Set("WWW-Authenticate", `Bearer realm="artmesh"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apitype.ErrorBody{Error: apitype.ErrorDetail{Code: kind.String(), Message: msg}})
}

// writeJSON sends v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// items wraps an unpaged list in the API's {"items": [...]} shape.
func items[T any](list []T) apitype.Items[T] {
	return apitype.Items[T]{Items: list}
}
