package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// TestSeedWorkflowAcrossHosts plays the seed's workflow on three nodes: a
// data-loader agent on A downloads an input artifact by id, a processor
// agent on B reads it and writes its result as an artifact, an
// artifact-saver agent on C saves that result as processed-<input id>.json
// and shares it with a group, and a member of that group on A lists and
// downloads it.
func TestSeedWorkflowAcrossHosts(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	b := joinDaemon(t, a, t.TempDir())
	c := joinDaemon(t, a, t.TempDir())
	keys := map[string]string{}
	for _, ag := range []struct {
		id     string
		groups []string
	}{{"owner", nil}, {"data-loader", []string{"pipeline"}}, {"processor", []string{"pipeline"}}, {"artifact-saver", []string{"pipeline"}}, {"analyst", []string{"analysts"}}} {
		var out struct {
			APIKey string `json:"api_key"`
		}
		a.call(t, "POST", "/v1/agents", map[string]any{"id": ag.id, "groups": ag.groups}, 201, &out)
		keys[ag.id] = out.APIKey
	}
	// The input, owned by "owner" on A and shared with the pipeline.
	var input artifact
	a.callAs(t, keys["owner"], "POST", "/v1/snippets", map[string]any{"name": "input.json", "content": map[string]any{"rows": []int{1, 2, 3}}}, 201, &input)
	a.callAs(t, keys["owner"], "POST", "/v1/artifacts/"+input.ID+"/share", map[string]any{"groups": []string{"pipeline"}}, 200, nil)

	// data-loader on A downloads the input by id.
	loaded := a.downloadAs(t, keys["data-loader"], "/v1/artifacts/"+input.ID+"/content?consistent=true")
	var in struct {
		Rows []int `json:"rows"`
	}
	if err := json.Unmarshal(loaded, &in); err != nil || len(in.Rows) != 3 {
		t.Fatalf("data-loader read %q", loaded)
	}
	// processor on B reads the input and writes its result.
	got := b.downloadAs(t, keys["processor"], "/v1/artifacts/"+input.ID+"/content?consistent=true")
	if !bytes.Equal(got, loaded) {
		t.Fatal("processor on B read other bytes")
	}
	sum := 0
	for _, r := range in.Rows {
		sum += r
	}
	var output artifact
	b.callAs(t, keys["processor"], "POST", "/v1/snippets", map[string]any{"name": "output.json", "content": map[string]any{"sum": sum}}, 201, &output)
	b.callAs(t, keys["processor"], "POST", "/v1/artifacts/"+output.ID+"/share", map[string]any{"groups": []string{"pipeline"}}, 200, nil)

	// artifact-saver on C saves it under its final name and shares it.
	result := c.downloadAs(t, keys["artifact-saver"], "/v1/artifacts/"+output.ID+"/content?consistent=true")
	var saved artifact
	name := fmt.Sprintf("processed-%s.json", input.ID)
	c.callAs(t, keys["artifact-saver"], "POST", "/v1/artifacts?name="+name, result, 201, &saved, "Content-Type", "application/json",
		"Artifact-Metadata", `{"input": "`+input.ID+`"}`)
	c.callAs(t, keys["artifact-saver"], "POST", "/v1/artifacts/"+saved.ID+"/share", map[string]any{"groups": []string{"analysts"}}, 200, nil)

	// An analyst on A lists and downloads it.
	var shared artifactPage
	a.callAs(t, keys["analyst"], "GET", "/v1/shared?consistent=true&name="+name, nil, 200, &shared)
	if len(shared.Items) != 1 || shared.Items[0].ID != saved.ID || shared.Items[0].Owner != "artifact-saver" {
		t.Fatalf("analyst's shared list: %+v", shared)
	}
	final := a.downloadAs(t, keys["analyst"], "/v1/artifacts/"+saved.ID+"/content")
	if string(final) != string(result) || !bytes.Contains(final, []byte(`"sum":6`)) {
		t.Fatalf("analyst downloaded %q", final)
	}
}

// downloadAs GETs path with key and returns the body, failing unless 200.
func (d *daemon) downloadAs(t *testing.T, key, path string) []byte {
	t.Helper()
	resp := d.do(t, key, "GET", path, nil)
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, buf.String())
	}
	return buf.Bytes()
}
