package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
)

// TestWriteErrorKinds: each kind goes out with its one status and code;
// both 503s (a write that certainly did not happen, and one that may
// have) carry Retry-After, and keep their own codes.
func TestWriteErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		kind       artmesh.Kind
		status     int
		code       string
		retryAfter string
	}{
		{artmesh.Unavailable, 503, "unavailable", "1"},
		{artmesh.OutcomeUnknown, 503, "outcome_unknown", "1"},
		{artmesh.NotFound, 404, "not_found", ""},
		{artmesh.TooMany, 429, "too_many", ""},
		{artmesh.QuotaExceeded, 507, "quota_exceeded", ""},
	} {
		t.Run(tc.code, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/v1/artifacts", nil)
			writeError(w, r, slog.New(slog.DiscardHandler), artmesh.E(tc.kind, "what happened"))
			data, _ := io.ReadAll(w.Result().Body)
			var body apitype.ErrorBody
			if err := json.Unmarshal(data, &body); err != nil {
				t.Fatal(err)
			}
			if w.Code != tc.status || body.Error.Code != tc.code || body.Error.Message != "what happened" || w.Header().Get("Retry-After") != tc.retryAfter {
				t.Fatalf("status %d, body %s, Retry-After %q; want %d %s %q", w.Code, data, w.Header().Get("Retry-After"), tc.status, tc.code, tc.retryAfter)
			}
		})
	}
}
