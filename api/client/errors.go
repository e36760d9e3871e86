package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// Error is an error response of the API. It matches its kind with
// errors.Is (errors.Is(err, artmesh.NotFound)), and artmesh.KindOf and
// artmesh.Message see through it to the kind and the server's message.
type Error struct {
	Op         string        // the client method, such as "client.Artifact"
	Status     int           // the HTTP status
	Code       string        // the API error code, such as "not_found"; "" when the body was not the API's error shape
	Message    string        // the server's message, for a person
	RetryAfter time.Duration // from Retry-After, for 503 answers; 0 when absent
}

// Kind returns the error's kind: that of its code, or else of its status.
func (e *Error) Kind() artmesh.Kind {
	if k := artmesh.KindFromCode(e.Code); k != artmesh.Other {
		return k
	}
	return kindOfStatus(e.Status)
}

// Error returns the operation and the server's message.
func (e *Error) Error() string {
	return e.Op + ": " + e.Message
}

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(artmesh.Kind)
	return ok && k == e.Kind()
}

// Unwrap returns the error as an *artmesh.Error with the kind and message,
// so that artmesh.KindOf and artmesh.Message work on client errors.
func (e *Error) Unwrap() error {
	return &artmesh.Error{Kind: e.Kind(), Msg: e.Message}
}

// kindOfStatus maps a status to the kind the API sends it for.
func kindOfStatus(status int) artmesh.Kind {
	switch status {
	case http.StatusBadRequest:
		return artmesh.Invalid
	case http.StatusUnauthorized:
		return artmesh.Unauthenticated
	case http.StatusForbidden:
		return artmesh.PermissionDenied
	case http.StatusNotFound:
		return artmesh.NotFound
	case http.StatusConflict:
		return artmesh.Conflict
	case http.StatusGone:
		return artmesh.Expired
	case http.StatusRequestEntityTooLarge:
		return artmesh.TooLarge
	case http.StatusRequestedRangeNotSatisfiable:
		return artmesh.RangeNotSatisfiable
	case http.StatusServiceUnavailable:
		return artmesh.Unavailable
	case http.StatusInsufficientStorage:
		return artmesh.InsufficientStorage
	case http.StatusTooManyRequests:
		return artmesh.TooMany
	case http.StatusUnprocessableEntity:
		return artmesh.IdempotencyKeyReused
	case http.StatusPreconditionFailed:
		return artmesh.PreconditionFailed
	}
	return artmesh.Other
}

// errorFromResponse builds the *Error of a non-2xx response, reading at
// most maxErrorBody bytes of its body.
func errorFromResponse(op string, resp *http.Response) error {
	e := &Error{Op: op, Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body apitype.ErrorBody
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("HTTP %s", resp.Status)
		if text := strings.TrimSpace(string(data)); text != "" && e.Code == "" {
			if len(text) > 200 {
				text = text[:200] + "..."
			}
			e.Message += ": " + text
		}
	}
	return e
}

// retryAfter parses a Retry-After value: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
