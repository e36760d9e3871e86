package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeReplication answers the replication routes and records each
// request's method, path, query and body.
type fakeReplication struct {
	mu   sync.Mutex
	seen []string // "METHOD /path?query body"
}

func (f *fakeReplication) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		return ""
	}
	return f.seen[len(f.seen)-1]
}

const (
	peerA = "12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAholderA1"
	peerB = "12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBholderB2"
)

func startFakeReplication(t *testing.T) (*fakeReplication, map[string]string) {
	t.Helper()
	f := &fakeReplication{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		line := r.Method + " " + r.URL.Path
		if r.URL.RawQuery != "" {
			line += "?" + r.URL.RawQuery
		}
		if len(body) > 0 && !strings.HasPrefix(r.Header.Get("Content-Type"), "text/") && r.Header.Get("Content-Type") != "" {
			line += " " + strings.TrimSpace(string(body))
		}
		f.mu.Lock()
		f.seen = append(f.seen, line)
		f.mu.Unlock()
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/artifacts", "POST /v1/snippets", "PUT /v1/artifacts/art_1/content":
			w.WriteHeader(201)
			io.WriteString(w, fakeArtifact)
		case "GET /v1/artifacts": // put's check of the name: not in use
			io.WriteString(w, `{"items":[],"limit":1,"offset":0}`)
		case "GET /v1/mesh/policy":
			io.WriteString(w, `{"replication_factor":2,"write_replicas":1}`)
		case "PUT /v1/mesh/policy":
			if strings.Contains(string(body), `"replication_factor":9`) {
				w.WriteHeader(400)
				io.WriteString(w, `{"error":{"code":"invalid_argument","message":"replication_factor 9 is more than the 3 members of the mesh"}}`)
				return
			}
			io.WriteString(w, `{"replication_factor":3,"write_replicas":2}`)
		case "PUT /v1/artifacts/art_1/replication":
			io.WriteString(w, strings.TrimSpace(string(body)))
		case "GET /v1/artifacts/art_1/placement":
			io.WriteString(w, `{"items":[{"version":1,"cid":"bafy1","factor":2,"holders":["`+peerA+`","`+peerB+`"],"allocated":["`+peerA+`","`+peerB+`"],"state":"ok"},
				{"version":2,"cid":"bafy2","factor":2,"holders":["`+peerA+`"],"allocated":["`+peerA+`","`+peerB+`"],"state":"repairing"}]}`)
		case "GET /v1/node":
			io.WriteString(w, `{"peer_id":"`+peerA+`","addresses":["/ip4/127.0.0.1/tcp/7481"],"version":"0.1.0"}`)
		case "GET /v1/mesh/members":
			io.WriteString(w, `{"items":[{"peer_id":"`+peerA+`","addresses":["/ip4/127.0.0.1/tcp/7481"],"role":"voter","reachable":true,"leader":true,"bytes_held":1572864,"under_replicated":3}]}`)
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no such route"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return f, map[string]string{envAPI: srv.URL, envAPIKey: "k1"}
}

func TestReplicasFlag(t *testing.T) {
	f, env := startFakeReplication(t)
	file := filepath.Join(t.TempDir(), "data.json")
	os.WriteFile(file, []byte(`{"a":[1]}`), 0o600)
	for _, tt := range []struct {
		name string
		args []string
		code int
		sent string // the start of the last request
	}{
		{"put", []string{"put", file, "--replicas", "2"}, 0, "POST /v1/artifacts?name=data.json&replicas=2"},
		{"put without", []string{"put", file}, 0, "POST /v1/artifacts?name=data.json "},
		{"update", []string{"update", "art_1", file, "--replicas", "3"}, 0, "PUT /v1/artifacts/art_1/content?replicas=3"},
		{"snippet", []string{"snippet", "s", "[1]", "--replicas", "2"}, 0, `POST /v1/snippets?replicas=2 {"name":"s","content":[1]}`},
		{"snippet without", []string{"snippet", "s", "[1]"}, 0, `POST /v1/snippets {"name":"s","content":[1]}`},
		{"negative", []string{"put", file, "--replicas", "-1"}, 2, ""},
		{"not a number", []string{"snippet", "s", "1", "--replicas", "two"}, 2, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := f.last()
			code, _, errOut := runCLI(t, env, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errOut)
			}
			got := f.last()
			if tt.sent == "" {
				if got != before {
					t.Errorf("a refused command sent %q", got)
				}
				return
			}
			if !strings.HasPrefix(got+" ", tt.sent) {
				t.Errorf("sent %q, want %q", got, tt.sent)
			}
		})
	}
}

func TestUploadReplicas(t *testing.T) {
	fu := &fakeUploads{t: t, state: "open"}
	var mu sync.Mutex
	var confirms []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/confirm") {
			mu.Lock()
			confirms = append(confirms, r.URL.RawQuery)
			mu.Unlock()
		}
		fu.serve(w, r)
	}))
	t.Cleanup(srv.Close)
	fu.url = srv.URL
	path, _ := testFile(t, 3000)
	code, out, errOut := runUploadCLI(t, fu, "upload", path, "--replicas", "2")
	if code != 0 || !strings.HasPrefix(out, "art_up\n") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if len(confirms) != 1 || confirms[0] != "replicas=2" {
		t.Errorf("confirm queries %q, want one replicas=2", confirms)
	}
	if code, _, errOut := runUploadCLI(t, fu, "upload", path, "--replicas", "-2"); code != 2 || !strings.Contains(errOut, "--replicas must be 1 or more") {
		t.Errorf("--replicas -2: exit %d, %s", code, errOut)
	}
}

func TestPlacementCmd(t *testing.T) {
	f, env := startFakeReplication(t)
	code, out, errOut := runCLI(t, env, "placement", "art_1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if f.last() != "GET /v1/artifacts/art_1/placement" {
		t.Errorf("sent %q", f.last())
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "VERSION") || !strings.Contains(lines[0], "HOLDERS") {
		t.Fatalf("table:\n%s", out)
	}
	for i, want := range [][]string{{"1", "2", "ok", "…holderA1, …holderB2"}, {"2", "2", "repairing (1 of 2)", "…holderA1"}} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %d %q lacks %q", i+1, lines[i+1], w)
			}
		}
		if strings.Contains(lines[i+1], "12D3KooW") {
			t.Errorf("row %d has a whole peer id: %q", i+1, lines[i+1])
		}
	}
	code, out, _ = runCLI(t, env, "--json", "placement", "art_1")
	var got struct {
		Items []struct {
			Holders   []string `json:"holders"`
			Allocated []string `json:"allocated"`
		} `json:"items"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Items) != 2 || got.Items[0].Holders[1] != peerB || len(got.Items[1].Allocated) != 2 {
		t.Errorf("--json: exit %d, %s", code, out)
	}
}

func TestReplicationCmd(t *testing.T) {
	f, env := startFakeReplication(t)
	for _, tt := range []struct {
		args       []string
		code       int
		sent, said string
	}{
		{[]string{"replication", "art_1", "3"}, 0, `PUT /v1/artifacts/art_1/replication {"factor":3}`, "kept on 3 members"},
		{[]string{"replication", "art_1", "0"}, 0, `PUT /v1/artifacts/art_1/replication {"factor":0}`, "follows the mesh policy"},
		{[]string{"replication", "art_1", "--", "-1"}, 2, "", "N must be a whole number"},
		{[]string{"replication", "art_1", "many"}, 2, "", "N must be a whole number"},
		{[]string{"replication", "art_1"}, 2, "", "accepts 2 arg(s)"},
		{[]string{"replication", "art_x", "1"}, 3, `PUT /v1/artifacts/art_x/replication {"factor":1}`, "artmesh: no such route"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			before := f.last()
			code, out, errOut := runCLI(t, env, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.said) {
				t.Errorf("exit %d, %q %q; want %d and %q", code, out, errOut, tt.code, tt.said)
			}
			if got := f.last(); tt.sent == "" && got != before || tt.sent != "" && got != tt.sent {
				t.Errorf("sent %q, want %q", got, tt.sent)
			}
		})
	}
}

func TestMeshPolicyCmd(t *testing.T) {
	f, env := startFakeReplication(t)
	for _, tt := range []struct {
		args       []string
		code       int
		sent, said string
	}{
		{[]string{"mesh", "policy"}, 0, "GET /v1/mesh/policy", "replication factor: 2"},
		{[]string{"mesh", "policy", "--write-replicas", "2"}, 0, `PUT /v1/mesh/policy {"write_replicas":2}`, "write replicas:     2"},
		{[]string{"mesh", "policy", "--replication-factor", "3", "--write-replicas", "2"}, 0, `PUT /v1/mesh/policy {"replication_factor":3,"write_replicas":2}`, "replication factor: 3"},
		{[]string{"mesh", "policy", "--replication-factor", "9"}, 2, `PUT /v1/mesh/policy {"replication_factor":9}`, "artmesh: replication_factor 9 is more than the 3 members of the mesh\n"},
		{[]string{"--json", "mesh", "policy"}, 0, "GET /v1/mesh/policy", `"write_replicas": 1`},
		{[]string{"mesh", "policy", "--write-replicas", "x"}, 2, "", "invalid argument"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			before := f.last()
			code, out, errOut := runCLI(t, env, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.said) {
				t.Errorf("exit %d, %q %q; want %d and %q", code, out, errOut, tt.code, tt.said)
			}
			if got := f.last(); tt.sent == "" && got != before || tt.sent != "" && got != tt.sent {
				t.Errorf("sent %q, want %q", got, tt.sent)
			}
		})
	}
}

func TestMeshMembersColumns(t *testing.T) {
	_, env := startFakeReplication(t)
	code, out, errOut := runCLI(t, env, "mesh", "members")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "THIS PEER ROLE REACHABLE LEADER HELD UNDER-REPLICATED ADDRESSES" {
		t.Fatalf("table:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) != 9 || f[0] != "*" || f[1] != peerA || f[2] != "voter" || f[3] != "yes" || f[4] != "yes" ||
		f[5] != "1.5" || f[6] != "MiB" || f[7] != "3" || f[8] != "/ip4/127.0.0.1/tcp/7481" {
		t.Errorf("row %q", lines[1])
	}
}
