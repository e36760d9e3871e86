package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// startFakeQuota answers the quota routes and records each request as
// "METHOD /path body".
func startFakeQuota(t *testing.T) (last func() string, env map[string]string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		line := strings.TrimSpace(r.Method + " " + r.URL.Path + " " + strings.TrimSpace(string(body)))
		mu.Lock()
		seen = append(seen, line)
		mu.Unlock()
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/agents/bob/quota", "PUT /v1/agents/bob/quota":
			io.WriteString(w, `{"agent":"bob","admin":false,"usage":{"bytes":1073741824,"staged":536870912,"uploads":2,"streams":1},
				"limits":{"bytes":10737418240,"staged":1073741824,"uploads":10,"streams":-1},
				"override":{"bytes":10737418240,"streams":-1},"defaults":{"staged":1073741824,"uploads":10}}`)
		case "GET /v1/agents/carol/quota":
			w.WriteHeader(403)
			io.WriteString(w, `{"error":{"code":"permission_denied","message":"only an admin agent may see another agent's quota"}}`)
		case "GET /v1/mesh/quota", "PUT /v1/mesh/quota":
			io.WriteString(w, `{"staged":1073741824,"uploads":10}`)
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no such route"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	last = func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return ""
		}
		return seen[len(seen)-1]
	}
	return last, map[string]string{envAPI: srv.URL, envAPIKey: "k1"}
}

func TestQuotaCmds(t *testing.T) {
	last, env := startFakeQuota(t)
	for _, tt := range []struct {
		name       string
		args       []string
		code       int
		sent, said string
	}{
		{"show", []string{"agent", "quota", "bob"}, 0, "GET /v1/agents/bob/quota", "agent bob\n" +
			"         USED       LIMIT      FROM\n" +
			"bytes    1.5 GiB    10.0 GiB   agent\n" +
			"staged   512.0 MiB  1.0 GiB    mesh default\n" +
			"uploads  2          10         mesh default\n" +
			"streams  1          unlimited  agent\n"},
		{"set", []string{"agent", "quota", "bob", "--bytes", "10GiB", "--staged", "1GiB", "--uploads", "10", "--streams", "8"}, 0,
			`PUT /v1/agents/bob/quota {"bytes":10737418240,"staged":1073741824,"uploads":10,"streams":8}`, "agent bob\n"},
		{"back to default and unlimited", []string{"agent", "quota", "bob", "--bytes", "default", "--streams", "unlimited"}, 0,
			`PUT /v1/agents/bob/quota {"bytes":0,"streams":-1}`, "agent bob\n"},
		{"json", []string{"--json", "agent", "quota", "bob"}, 0, "GET /v1/agents/bob/quota", `"uploads": 2`},
		{"refused", []string{"agent", "quota", "carol"}, exitPermission, "GET /v1/agents/carol/quota", "only an admin agent may see"},
		{"bad size", []string{"agent", "quota", "bob", "--bytes", "lots"}, exitUsage, "", "--bytes"},
		{"zero count", []string{"agent", "quota", "bob", "--uploads", "-3"}, exitUsage, "", "--uploads"},
		{"no agent", []string{"agent", "quota"}, exitUsage, "", "accepts 1 arg"},
		{"mesh show", []string{"mesh", "quota"}, 0, "GET /v1/mesh/quota", "uploads: 10"},
		{"mesh set", []string{"mesh", "quota", "--streams", "8", "--bytes", "none"}, 0,
			`PUT /v1/mesh/quota {"bytes":0,"streams":8}`, "staged:  1.0 GiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := last()
			code, out, errOut := runCLI(t, env, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.said) {
				t.Errorf("exit %d, %q %q; want %d and %q", code, out, errOut, tt.code, tt.said)
			}
			if got := last(); tt.sent == "" && got != before || tt.sent != "" && got != tt.sent {
				t.Errorf("sent %q, want %q", got, tt.sent)
			}
		})
	}
}
