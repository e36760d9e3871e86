package api

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/artmesh/artmesh"
)

// TestNoteReadinessLogsChangesOnce: a run of /readyz answers logs one
// line, at Info, each time the answer changes between ready and not ready,
// and nothing for the polls in between.
func TestNoteReadinessLogsChangesOnce(t *testing.T) {
	catchingUp := artmesh.E(artmesh.Unavailable, "this node is catching up with the mesh's catalog")
	noLeader := artmesh.E(artmesh.Unavailable, "the catalog has no leader")
	for _, tc := range []struct {
		name    string
		answers []error
		want    []string
	}{
		{"ready from the first poll", []error{nil, nil, nil},
			[]string{"level=INFO msg=\"node ready: its catalog has a leader and has caught up\""}},
		{"catching up, then ready", []error{catchingUp, catchingUp, catchingUp, nil, nil},
			[]string{
				"level=INFO msg=\"node not ready\" reason=\"this node is catching up with the mesh's catalog\"",
				"level=INFO msg=\"node ready: its catalog has a leader and has caught up\"",
			}},
		{"a new reason while not ready is the same state", []error{catchingUp, noLeader, noLeader},
			[]string{"level=INFO msg=\"node not ready\" reason=\"this node is catching up with the mesh's catalog\""}},
		{"ready, leader lost, ready again", []error{nil, noLeader, noLeader, nil},
			[]string{
				"level=INFO msg=\"node ready: its catalog has a leader and has caught up\"",
				"level=INFO msg=\"node not ready\" reason=\"the catalog has no leader\"",
				"level=INFO msg=\"node ready: its catalog has a leader and has caught up\"",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := &Server{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				Level: slog.LevelDebug,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			}))}
			for _, err := range tc.answers {
				s.noteReadiness(err)
			}
			got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
