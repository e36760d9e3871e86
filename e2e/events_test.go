package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artmesh/artmesh/api/client"
)

// sseEvent is one event of a Server-Sent Events stream.
type sseEvent struct {
	ID, Name string
	Data     struct {
		ID         string   `json:"id"`
		Type       string   `json:"type"`
		ArtifactID string   `json:"artifact_id"`
		Name       string   `json:"name"`
		Owner      string   `json:"owner"`
		Version    int      `json:"version"`
		Actor      string   `json:"actor"`
		Agents     []string `json:"agents"`
		Groups     []string `json:"groups"`
		After      string   `json:"after"` // of a reset
	}
}

// short is the part of an event the tests compare.
func (e sseEvent) short() string {
	return fmt.Sprintf("%s %s v%d", e.Name, e.Data.ArtifactID, e.Data.Version)
}

// sseStream reads GET /v1/events into a channel until the test ends or
// close is called.
type sseStream struct {
	events chan sseEvent
	cancel context.CancelFunc
	done   chan struct{}
}

// watch opens the event stream of the agent whose key is key, with query
// (may be empty) and Last-Event-ID lastID (none if empty).
func (d *daemon) watch(t *testing.T, key, query, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", d.url+"/v1/events?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET /v1/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{events: make(chan sseEvent, 100), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var data []byte
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					if err := json.Unmarshal(data, &ev.Data); err != nil {
						ev.Name = "malformed data: " + string(data)
					}
					select {
					case s.events <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Name = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = append(data, line[6:]...)
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	<-s.done
}

// next returns the next event, failing the test if none comes within 10 s.
func (s *sseStream) next(t *testing.T, what string) sseEvent {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("no event within 10 s: waiting for %s", what)
		return sseEvent{}
	}
}

// expect reads len(want) events and checks them against want, in order,
// and that their ids rise; it returns the last id.
func (s *sseStream) expect(t *testing.T, who string, want ...string) string {
	t.Helper()
	var got []string
	last := uint64(0)
	id := ""
	for range want {
		ev := s.next(t, fmt.Sprintf("%s's event %d of %v (got %v)", who, len(got)+1, want, got))
		n, err := strconv.ParseUint(ev.ID, 10, 64)
		if err != nil || n <= last || ev.Data.ID != ev.ID || (ev.Name != "reset" && ev.Data.Type != ev.Name) {
			t.Fatalf("%s: event %+v: ids must be rising catalog indexes, the same in id and data", who, ev)
		}
		last, id = n, ev.ID
		got = append(got, ev.short())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s saw\n  %s\nwant\n  %s", who, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return id
}

// TestEventFeed is the change feed as agents see it: a watcher sees
// exactly the events about artifacts it may read (directly or through a
// group), in order, an agent without access sees none, and a reconnect
// with Last-Event-ID after the node restarts loses and repeats nothing.
func TestEventFeed(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	keys := map[string]string{}
	for _, id := range []string{"alice", "bob", "carol"} {
		var a struct {
			APIKey string `json:"api_key"`
		}
		d.call(t, "POST", "/v1/agents", map[string]any{"id": id}, 201, &a)
		keys[id] = a.APIKey
	}
	d.call(t, "PUT", "/v1/groups/team", map[string]any{"members": []string{"alice"}}, 200, nil)

	alice := d.watch(t, keys["alice"], "", "")
	carol := d.watch(t, keys["carol"], "", "")
	bob := d.watch(t, keys["bob"], "", "")

	var x, y artifact
	d.callAs(t, keys["bob"], "POST", "/v1/artifacts?name=x.bin", bytes.NewReader([]byte("x1")), 201, &x)
	d.callAs(t, keys["bob"], "PUT", "/v1/artifacts/"+x.ID+"/content", bytes.NewReader([]byte("x2")), 201, nil)
	d.callAs(t, keys["bob"], "POST", "/v1/artifacts/"+x.ID+"/share", map[string]any{"agents": []string{"alice"}}, 200, nil)
	d.callAs(t, keys["bob"], "PUT", "/v1/artifacts/"+x.ID+"/content", bytes.NewReader([]byte("x3")), 201, nil)
	d.callAs(t, keys["bob"], "POST", "/v1/artifacts?name=y.bin", bytes.NewReader([]byte("y1")), 201, &y)
	d.callAs(t, keys["bob"], "POST", "/v1/artifacts/"+y.ID+"/share", map[string]any{"groups": []string{"team"}}, 200, nil)
	// Sharing again what is shared changes nothing, and makes no event.
	d.callAs(t, keys["bob"], "POST", "/v1/artifacts/"+y.ID+"/share", map[string]any{"groups": []string{"team"}}, 200, nil)

	X, Y := x.ID, y.ID
	lastSeen := alice.expect(t, "alice",
		"artifact.shared "+X+" v2",
		"artifact.updated "+X+" v3",
		"artifact.shared "+Y+" v1",
	)
	alice.close()

	// The owner sees everything about its artifacts, and the grants a
	// share added.
	bob.expect(t, "bob",
		"artifact.created "+X+" v1",
		"artifact.updated "+X+" v2",
		"artifact.shared "+X+" v2",
		"artifact.updated "+X+" v3",
		"artifact.created "+Y+" v1",
		"artifact.shared "+Y+" v1",
	)

	// While alice is away, and across a restart of the node, more happens.
	d.callAs(t, keys["bob"], "DELETE", "/v1/artifacts/"+X+"/versions/1", nil, 204, nil)
	d.callAs(t, keys["bob"], "POST", "/v1/artifacts/"+X+"/unshare", map[string]any{"agents": []string{"alice"}}, 200, nil)
	d.callAs(t, keys["bob"], "PUT", "/v1/artifacts/"+X+"/content", bytes.NewReader([]byte("x4")), 201, nil) // alice may no longer read X
	d = d.restart(t)
	d.callAs(t, keys["bob"], "DELETE", "/v1/artifacts/"+Y, nil, 204, nil)
	var m, z artifact
	d.callAs(t, keys["alice"], "POST", "/v1/artifacts?name=mine.bin", bytes.NewReader([]byte("m")), 201, &m)

	again := d.watch(t, keys["alice"], "", lastSeen)
	again.expect(t, "alice after the restart",
		"version.deleted "+X+" v1",
		"artifact.unshared "+X+" v3",
		"artifact.deleted "+Y+" v1",
		"artifact.created "+m.ID+" v1",
	)

	// Carol could read none of it: the first event she sees is about her
	// own artifact. (Her stream was cut by the restart; she goes on from
	// the start of the log.)
	carol.close()
	d.callAs(t, keys["carol"], "POST", "/v1/artifacts?name=z.bin", bytes.NewReader([]byte("z")), 201, &z)
	d.watch(t, keys["carol"], "", "0").expect(t, "carol", "artifact.created "+z.ID+" v1")

	// Filters, replayed from the start of the log.
	shared := d.watch(t, keys["alice"], "shared_with_me=true", "0")
	shared.expect(t, "alice, shared with her",
		"artifact.shared "+X+" v2",
		"artifact.updated "+X+" v3",
		"artifact.shared "+Y+" v1",
		"version.deleted "+X+" v1",
		"artifact.unshared "+X+" v3",
		"artifact.deleted "+Y+" v1",
	)
	onlyY := d.watch(t, keys["alice"], "artifact_id="+Y, "0")
	onlyY.expect(t, "alice, artifact Y", "artifact.shared "+Y+" v1", "artifact.deleted "+Y+" v1")
	byName := d.watch(t, keys["bob"], "name=y.bin", "0")
	byName.expect(t, "bob, name y.bin", "artifact.created "+Y+" v1", "artifact.shared "+Y+" v1", "artifact.deleted "+Y+" v1")
	ownX := d.watch(t, keys["bob"], "artifact_id="+X, "0")
	ownX.expect(t, "bob, artifact X",
		"artifact.created "+X+" v1", "artifact.updated "+X+" v2", "artifact.shared "+X+" v2", "artifact.updated "+X+" v3",
		"version.deleted "+X+" v1", "artifact.unshared "+X+" v3", "artifact.updated "+X+" v4")
	// Nothing more comes on the filtered streams: alice's own artifact is
	// not shared with her, and Y saw nothing else.
	d.callAs(t, keys["alice"], "PUT", "/v1/artifacts/"+m.ID+"/content", bytes.NewReader([]byte("m2")), 201, nil)
	for who, s := range map[string]*sseStream{"shared with alice": shared, "artifact Y": onlyY} {
		select {
		case ev := <-s.events:
			t.Fatalf("%s: unexpected %+v", who, ev)
		case <-time.After(time.Second):
		}
	}

	// The owner sees which grants changed; others do not.
	ev := d.watch(t, keys["bob"], "artifact_id="+X, "0")
	for range 2 {
		ev.next(t, "created, updated")
	}
	if e := ev.next(t, "shared"); e.Name != "artifact.shared" || strings.Join(e.Data.Agents, ",") != "alice" || e.Data.Actor != "bob" || e.Data.Owner != "bob" || e.Data.Name != "x.bin" {
		t.Fatalf("the owner's shared event: %+v", e)
	}
	ae := d.watch(t, keys["alice"], "artifact_id="+X, "0")
	if e := ae.next(t, "shared"); e.Name != "artifact.shared" || e.Data.Agents != nil {
		t.Fatalf("a grantee's shared event shows the grants: %+v", e)
	}

	// An id beyond the catalog gives a reset first, then the feed goes on.
	far := d.watch(t, keys["alice"], "", "999999999")
	r := far.next(t, "reset")
	if r.Name != "reset" || r.Data.After != "999999999" {
		t.Fatalf("an id beyond the catalog: %+v, want a reset", r)
	}
	var n artifact
	d.callAs(t, keys["alice"], "POST", "/v1/artifacts?name=n.bin", bytes.NewReader([]byte("n")), 201, &n)
	if e := far.next(t, "after the reset"); e.short() != "artifact.created "+n.ID+" v1" {
		t.Fatalf("after the reset: %+v", e)
	}

	// Bad input is a 400 in the API's error shape; no key is a 401.
	for _, c := range []struct {
		query, last string
		want        int
	}{
		{"", "abc", 400},
		{"artifact_id=nope", "", 400},
		{"shared_with_me=yes", "", 400},
		{"colour=red", "", 400},
	} {
		var hdr []string
		if c.last != "" {
			hdr = []string{"Last-Event-ID", c.last}
		}
		code, body := d.status(t, keys["alice"], "GET", "/v1/events?"+c.query, nil, hdr...)
		if code != c.want || !strings.Contains(string(body), `"invalid_argument"`) {
			t.Fatalf("GET /v1/events?%s Last-Event-ID %q: %d %s, want %d invalid_argument", c.query, c.last, code, body, c.want)
		}
	}
	if code, _ := d.status(t, "", "GET", "/v1/events", nil); code != 401 {
		t.Fatalf("GET /v1/events without a key: %d, want 401", code)
	}
}

// TestWatchCLI runs `artmesh watch` as a user would while another agent
// works and the node restarts: it prints each event once, in order, and
// goes on by itself after the restart.
func TestWatchCLI(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	bob := d.addAgent(t, "bob")
	alice := d.addAgent(t, "alice")
	var x artifact
	d.callAs(t, bob, "POST", "/v1/artifacts?name=x.bin", bytes.NewReader([]byte("x1")), 201, &x)

	cmd := exec.Command(binary, "watch", "--json", "--since", "0")
	cmd.Env = append(os.Environ(), "ARTMESH_PATH="+d.repo, "ARTMESH_API="+d.url, "ARTMESH_API_KEY="+alice)
	var outBuf, errOut bytes.Buffer
	out := &lockedWriter{w: &outBuf}
	cmd.Stdout, cmd.Stderr = out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	lines := func() []string {
		var evs []string
		out.mu.Lock()
		printed := outBuf.String()
		out.mu.Unlock()
		for _, l := range strings.Split(strings.TrimSpace(printed), "\n") {
			var ev struct {
				ID, Type   string
				ArtifactID string `json:"artifact_id"`
				Version    int
			}
			if l != "" && json.Unmarshal([]byte(l), &ev) == nil {
				evs = append(evs, fmt.Sprintf("%s %s v%d", ev.Type, ev.ArtifactID, ev.Version))
			}
		}
		return evs
	}
	waitLines := func(want ...string) {
		t.Helper()
		waitFor(t, 15*time.Second, "watch prints "+strings.Join(want, ", "), func() bool {
			return strings.Join(lines(), "\n") == strings.Join(want, "\n")
		})
	}
	d.callAs(t, bob, "POST", "/v1/artifacts/"+x.ID+"/share", map[string]any{"agents": []string{"alice"}}, 200, nil)
	waitLines("artifact.shared " + x.ID + " v1")
	d = d.restart(t)
	d.callAs(t, bob, "PUT", "/v1/artifacts/"+x.ID+"/content", bytes.NewReader([]byte("x2")), 201, nil)
	d.callAs(t, bob, "DELETE", "/v1/artifacts/"+x.ID, nil, 204, nil)
	waitLines("artifact.shared "+x.ID+" v1", "artifact.updated "+x.ID+" v2", "artifact.deleted "+x.ID+" v2")
	select {
	case err := <-exited:
		t.Fatalf("watch exited: %v\n%s", err, errOut.String())
	default:
	}

	// --count stops it; a bad id is a clear usage error.
	got := d.cliAs(t, alice, "watch", "--since", "0", "--count", "2")
	if n := strings.Count(got, "\n"); n != 2 || !strings.Contains(got, "artifact.shared\t"+x.ID+"\tv1\tx.bin\tby bob") {
		t.Fatalf("watch --count 2 printed:\n%s", got)
	}
	if _, errText, err := d.cliRaw("watch", "not-an-id"); err == nil || !strings.Contains(errText, "not an artifact id") {
		t.Fatalf("watch not-an-id: %v %s", err, errText)
	}
}

// TestWatchFromNowSurvivesARestart follows the feed from the present with
// the Go client, restarts the node before any event, and checks that the
// event made after the restart arrives once: the stream's first frame gave
// the reader its position, so the reconnect goes on from there rather than
// from a later present.
func TestWatchFromNowSurvivesARestart(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	key := d.addAgent(t, "alice")
	// Reconnects wait at a gate, so that the write below surely comes
	// while the watcher is away.
	release := make(chan struct{})
	var dials atomic.Int32
	dialer := &net.Dialer{}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) > 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return dialer.DialContext(ctx, network, addr)
	}}}
	c := client.New(d.url, key, client.WithHTTPClient(hc))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	positioned := make(chan string, 10)
	events := make(chan client.Event, 10)
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(ctx, client.WatchOptions{Position: func(id string) {
			select {
			case positioned <- id:
			default:
			}
		}}, func(ev client.Event) error {
			events <- ev
			return nil
		})
	}()
	select {
	case <-positioned:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream gave no position within 10 s")
	}
	// The write comes after the restart and before the watcher is back: a
	// reconnect "from now" would miss it.
	d = d.restart(t)
	var a artifact
	d.callAs(t, key, "POST", "/v1/artifacts?name=after.bin", bytes.NewReader([]byte("a")), 201, &a)
	close(release)
	select {
	case ev := <-events:
		if ev.Type != "artifact.created" || string(ev.ArtifactID) != a.ID {
			t.Fatalf("first event after the restart: %+v, want the creation of %s", ev, a.ID)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the event made after the restart never came")
	}
	select {
	case ev := <-events:
		t.Fatalf("a second event: %+v", ev)
	case <-time.After(time.Second):
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch ended with %v, want context.Canceled", err)
	}
}
