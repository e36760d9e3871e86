package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// findBrowser returns the path of a Chromium-family browser, or skips the
// test loudly when there is none (.ci/run installs Debian's chromium).
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "NO BROWSER FOUND (chromium, chromium-browser, google-chrome): THE WEB VIEW IS NOT TESTED. " +
		"Install one: apt-get install -y --no-install-recommends chromium"
	fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***")
	t.Skip(msg)
	return ""
}

// browserLog is what the page did that the test checks afterwards: every
// console error and exception, and every request the page sent.
type browserLog struct {
	mu       sync.Mutex
	errors   []string
	refused  int // the browser's log of the 401 that the wrong key got
	feedDown int // the browser's log of a reconnection of the feed refused while the daemon restarts
	requests []*network.EventRequestWillBeSent
}

func (l *browserLog) snapshot() (errs []string, reqs []*network.EventRequestWillBeSent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors...), append([]*network.EventRequestWillBeSent(nil), l.requests...)
}

// TestWebView drives the web view in headless Chromium against a real
// daemon, as a person would: sign in with the admin's key, upload a file
// (the progress bar reaches its end), find it in the list and with a
// metadata filter, open it (versions, access, placement), download it by
// the page's button (the bytes on disk are compared, and the response was
// an attachment with nosniff and a sandbox CSP), see what another agent
// shared, follow the change feed (an artifact created and then updated
// through the API shows in the list and in the versions table without a
// reload, the activity page lists the events in order, and after a restart
// of the daemon the tab reconnects with Last-Event-ID and shows the next
// event), the mesh, the pins, and sign out. It fails on any console error
// or exception, and on any request whose URL carries the key or that calls
// /v1 (the feed included) without it in the Authorization header.
//
// UPDATE_SCREENSHOTS=1 writes docs/ui-artifacts.png and docs/ui-artifact.png.
func TestWebView(t *testing.T) {
	exe := findBrowser(t)
	d := startDaemon(t, t.TempDir())

	// Two earlier artifacts, and one that bob shares with the admin.
	d.call(t, "POST", "/v1/snippets", map[string]any{"name": "train-config.json", "content": map[string]any{"lr": 0.001, "layers": []int{4, 4}}, "metadata": map[string]any{"stage": "train"}}, 201, nil)
	d.call(t, "POST", "/v1/snippets", map[string]any{"name": "eval-report.json", "content": map[string]any{"accuracy": 0.93}, "metadata": map[string]any{"stage": "eval", "epoch": 2}}, 201, nil)
	bob := d.addAgent(t, "bob")
	var fromBob artifact
	d.callAs(t, bob, "POST", "/v1/snippets", map[string]any{"name": "bobs-notes.json", "content": "hello"}, 201, &fromBob)
	d.callAs(t, bob, "POST", "/v1/artifacts/"+fromBob.ID+"/share", map[string]any{"agents": []string{"admin"}, "groups": []string{}}, 200, nil)

	content := patternBytes(3<<20+12345, 7) // a few MiB, so the upload reports progress
	src := filepath.Join(t.TempDir(), "weights.bin")
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	downloads := t.TempDir()

	// Tests run as root here, and Chromium refuses to run as root with its
	// sandbox on: --no-sandbox is for that reason only.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1100, 720), chromedp.UserDataDir(t.TempDir()))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser and its tab
		t.Fatalf("starting %s: %v", exe, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 45*time.Second)
	defer cancel()

	// The listeners, each a goroutine owned by this test: they end when
	// their subscription's context does, and the test waits for them.
	lg := &browserLog{}
	lctx, stopListening := context.WithCancel(bctx)
	var wg sync.WaitGroup
	console := chromedp.Console(lctx)
	reqs := chromedp.Events(lctx, network.RequestWillBeSent)
	progress := chromedp.Events(lctx, browser.DownloadProgress)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError && m.Source == "network" && strings.HasSuffix(m.URL, "/v1/node") && strings.Contains(m.Text, "401") {
				lg.mu.Lock()
				lg.refused++
				lg.mu.Unlock()
			} else if m.Type == chromedp.ConsoleError && m.Source == "network" && strings.HasSuffix(m.URL, "/v1/events") {
				lg.mu.Lock()
				lg.feedDown++
				lg.mu.Unlock()
			} else if m.Type == chromedp.ConsoleError || m.IsException() {
				lg.mu.Lock()
				lg.errors = append(lg.errors, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				lg.mu.Unlock()
			}
		}
	}()
	go func() {
		defer wg.Done()
		for ev, err := range reqs {
			if err != nil {
				return
			}
			lg.mu.Lock()
			lg.requests = append(lg.requests, &ev)
			lg.mu.Unlock()
		}
	}()
	done := make(chan string, 4) // GUIDs of finished downloads
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev, err := range progress {
			if err != nil {
				return
			}
			if ev.State == browser.DownloadProgressStateCompleted || ev.State == browser.DownloadProgressStateCanceled {
				select {
				case done <- string(ev.State) + " " + ev.GUID:
				default:
				}
			}
		}
	}()
	defer func() { stopListening(); wg.Wait() }()

	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			errs, _ := lg.snapshot()
			t.Fatalf("%s: %v\nconsole errors: %q\ndaemon log: %s", what, err, errs, tail(d.logs(), 2000))
		}
	}
	eval := func(expr string, out any) {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
		if err != nil {
			t.Fatalf("evaluating %s: %v", expr, err)
		}
		// Evaluate decodes into any; convert through fmt for strings and
		// lists of strings, the only shapes the test reads.
		switch o := out.(type) {
		case *string:
			*o = fmt.Sprint(v)
		case *[]string:
			*o = nil
			for _, x := range v.([]any) {
				*o = append(*o, fmt.Sprint(x))
			}
		default:
			t.Fatalf("eval into %T", out)
		}
	}
	// ready waits for a page of the view to have loaded: the hash router
	// marks its view data-ready once the page's calls have answered.
	waitJS := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(30*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))
	}
	// ready waits for the page to have rendered the current route: a view
	// left over from the previous route of the same page (a filter applied
	// to the list) does not count, although it is marked ready too.
	ready := func(page string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.WaitVisible(chromedp.CSS(`#view-`+page+`[data-ready="true"]`)),
			waitJS(`(() => { const v = document.querySelector('#view-`+page+`'); return !!v && v.dataset.ready === 'true' && v.dataset.route === location.hash; })()`),
		)
	}
	texts := func(sel string) []string {
		t.Helper()
		var out []string
		eval(`[...document.querySelectorAll(`+jsString(sel)+`)].map(e => e.textContent.trim())`, &out)
		return out
	}
	shots := os.Getenv("UPDATE_SCREENSHOTS") == "1"
	screenshot := func(name string) {
		t.Helper()
		if !shots {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote docs/%s (%d bytes)", name, len(png))
	}

	// Sign in: /ui leads to /ui/, which asks for a key.
	run("downloads into a temporary folder", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: new(true),
		})
		return err
	}))
	run("sign in with a wrong key",
		chromedp.Navigate(d.url+"/ui"),
		chromedp.WaitVisible(chromedp.CSS("#signin-key")),
		chromedp.SendKeys(chromedp.CSS("#signin-key"), "am_not-a-key"),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#notice")))
	if got := texts("#notice"); len(got) != 1 || !strings.HasPrefix(got[0], "That key was refused: ") {
		t.Errorf("a wrong key shows %q, want \"That key was refused: ...\"", got)
	}
	if stored := texts("#nav[hidden]"); len(stored) != 1 {
		t.Errorf("the navigation shows after a wrong key")
	}
	var cleared string
	eval(`document.querySelector('#signin-key').value = ''`, &cleared)
	run("sign in",
		chromedp.SendKeys(chromedp.CSS("#signin-key"), d.key),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		ready("artifacts"))
	var where string
	eval(`location.pathname + location.hash`, &where)
	if where != "/ui/#/artifacts" {
		t.Errorf("after sign-in the page is %q, want /ui/#/artifacts", where)
	}
	var stored string
	eval(`JSON.stringify([sessionStorage.getItem('artmesh.api_key') === `+jsString(d.key)+`, localStorage.length, document.cookie])`, &stored)
	if stored != `[true,0,""]` {
		t.Errorf("storage after sign-in (key in sessionStorage, localStorage entries, cookies) = %s, want [true,0,\"\"]", stored)
	}
	if got := texts("#artifact-list a.artifact-link"); strings.Join(got, ",") != "eval-report.json,train-config.json" {
		t.Errorf("the list before the upload shows %q, want eval-report.json then train-config.json", got)
	}

	// Upload: the progress bar ends at the file's size, and a link leads
	// to the new artifact.
	run("upload",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="upload"]`)),
		ready("upload"),
		chromedp.SetUploadFiles(chromedp.CSS("#upload-file"), []string{src}),
		chromedp.SetValue(chromedp.CSS("#upload-meta"), `{"epoch": 3, "stage": "train"}`),
		chromedp.Click(chromedp.CSS("#upload-submit")),
		chromedp.WaitVisible(chromedp.CSS("#upload-result")))
	var bar string
	eval(`(() => { const p = document.querySelector('#upload-progress'); return p.value + '/' + p.max; })()`, &bar)
	if want := fmt.Sprintf("%d/%d", len(content), len(content)); bar != want {
		t.Errorf("progress bar at %s after the upload, want %s", bar, want)
	}
	if got := texts("#upload-result"); len(got) != 1 || got[0] != "weights.bin, version 1" {
		t.Errorf("upload result %q, want weights.bin, version 1", got)
	}

	// The list: newest first, then filtered by metadata.
	run("list", chromedp.Click(chromedp.CSS(`#nav a[data-page="artifacts"]`)), ready("artifacts"))
	if got := texts("#artifact-list a.artifact-link"); strings.Join(got, ",") != "weights.bin,eval-report.json,train-config.json" {
		t.Errorf("the list shows %q, want weights.bin, eval-report.json, train-config.json", got)
	}
	screenshot("ui-artifacts.png")
	run("filter",
		chromedp.SetValue(chromedp.CSS("#filter-meta"), "stage=train epoch=3"),
		chromedp.Click(chromedp.CSS("#filter-apply")),
		waitJS(`location.hash === '#/artifacts?metadata.stage=train&metadata.epoch=3&limit=50'`),
		ready("artifacts"))
	if got := texts("#artifact-list a.artifact-link"); strings.Join(got, ",") != "weights.bin" {
		t.Errorf("filtered by stage=train epoch=3 the list shows %q, want weights.bin", got)
	}
	if got := texts("#list-total"); strings.Join(got, "") != "1–1" { // a filtered list has no total
		t.Errorf("filtered range %q, want 1–1", got)
	}

	// One artifact: versions, access, placement.
	run("open the artifact", chromedp.Click(chromedp.CSS("#artifact-list a.artifact-link")), ready("artifact"))
	var artID string
	eval(`document.querySelector('#artifact-props dd').textContent`, &artID)
	var a artifact
	d.call(t, "GET", "/v1/artifacts/"+artID, nil, 200, &a)
	if a.Name != "weights.bin" || a.SizeBytes != int64(len(content)) || a.Metadata["epoch"] != float64(3) {
		t.Fatalf("the node has %+v for the uploaded artifact, want weights.bin of %d bytes with epoch 3", a, len(content))
	}
	if got := texts("#artifact-name"); strings.Join(got, "") != "weights.bin" {
		t.Errorf("artifact page title %q", got)
	}
	var versions []string
	eval(`[...document.querySelectorAll('#versions tbody tr')].map(r => r.dataset.version + ' ' + r.children[1].textContent + ' ' + r.children[5].textContent)`, &versions)
	if strings.Join(versions, ";") != "1 3.0 MiB admin" {
		t.Errorf("versions %q, want one: 1 3.0 MiB admin", versions)
	}
	if got := texts("#access-owner, #access-agents, #access-groups"); strings.Join(got, ",") != "admin,none,none" {
		t.Errorf("access shows %q, want admin, none, none", got)
	}
	var placement []string
	eval(`[...document.querySelectorAll('#placement tbody tr')].map(r => [...r.children].slice(0, 3).map(c => c.textContent).join(' '))`, &placement)
	if strings.Join(placement, ";") != "1 1 ok" {
		t.Errorf("placement %q, want version 1, factor 1, ok", placement)
	}
	screenshot("ui-artifact.png")

	// A signed URL to hand out, then revoked.
	run("signed URL", chromedp.Click(chromedp.CSS("#make-signed-url")), chromedp.WaitVisible(chromedp.CSS("#signed-url-value")))
	var handed string
	eval(`document.querySelector('#signed-url-value').value`, &handed)
	if !strings.HasPrefix(handed, d.url+"/v1/cap/") {
		t.Fatalf("the signed URL shown is %q, want a %s/v1/cap/ URL", handed, d.url)
	}
	if st, body := d.status(t, "", "GET", strings.TrimPrefix(handed, d.url), nil); st != 200 || !bytes.Equal(body, content) {
		t.Fatalf("GET of the signed URL shown: %d, %d bytes", st, len(body))
	}
	run("revoke", chromedp.Click(chromedp.CSS("#revoke-signed-url")), waitJS(`document.querySelector('#signed-url').textContent.startsWith('Revoked')`))
	if st, body := d.status(t, "", "GET", strings.TrimPrefix(handed, d.url), nil); st != 403 || errorCode(body) != "permission_denied" {
		t.Errorf("GET of the revoked signed URL: %d %s, want 403 permission_denied", st, body)
	}

	// Download by the page's button: a signed URL followed as an
	// attachment; the file on disk has the uploaded bytes.
	run("download", chromedp.Click(chromedp.CSS("#download")))
	var guid string
	select {
	case ev := <-done:
		state, g, _ := strings.Cut(ev, " ")
		if state != string(browser.DownloadProgressStateCompleted) {
			t.Fatalf("the download ended %s", state)
		}
		guid = g
	case <-ctx.Done():
		t.Fatal("the download did not finish")
	}
	got, err := os.ReadFile(filepath.Join(downloads, guid))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Fatalf("downloaded %d bytes, not the %d uploaded", len(got), len(content))
	}
	// The page asked for a signed URL and followed it as a download (a
	// download's own request is the browser's, not the page's, so the
	// page's network log does not show it): that URL serves the same bytes
	// as an attachment, nosniff, with a sandbox CSP.
	var signed *network.EventRequestWillBeSent
	_, requests := lg.snapshot()
	for _, r := range requests {
		if r.Request.Method == "POST" && strings.HasSuffix(r.Request.URL, "/v1/artifacts/"+a.ID+"/signed-url") {
			signed = r
		}
	}
	if signed == nil {
		t.Fatal("the download did not ask for a signed URL")
	}
	body, err := chromedp.Call(ctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: signed.RequestID})
	if err != nil {
		t.Fatalf("reading the signed URL the page got: %v", err)
	}
	var su struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(body.Body), &su); err != nil || !strings.HasPrefix(su.URL, d.url+"/v1/cap/") {
		t.Fatalf("the page's signed URL answer %q (%v): want a %s/v1/cap/ URL", body.Body, err, d.url)
	}
	if left := time.Until(su.ExpiresAt); left <= 0 || left > 61*time.Second {
		t.Errorf("the download's signed URL lives %v more, want at most 60 s", left)
	}
	resp, err := http.Get(su.URL)
	if err != nil {
		t.Fatal(err)
	}
	capBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(capBody, content) {
		t.Fatalf("GET of the page's signed URL: %d, %d bytes (%v), want 200 and the content", resp.StatusCode, len(capBody), err)
	}
	for k, want := range map[string]string{
		"Content-Disposition":     `attachment; filename="weights.bin"`,
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "sandbox",
	} {
		if v := resp.Header.Get(k); v != want {
			t.Errorf("the download's %s is %q, want %q", k, v, want)
		}
	}

	// Shared with me: bob's artifact, with its owner.
	run("shared", chromedp.Click(chromedp.CSS(`#nav a[data-page="shared"]`)), ready("shared"))
	var shared []string
	eval(`[...document.querySelectorAll('#artifact-list tbody tr')].map(r => r.children[0].textContent + ' ' + r.children[1].textContent)`, &shared)
	if strings.Join(shared, ";") != "bobs-notes.json bob" {
		t.Errorf("shared with me shows %q, want bobs-notes.json bob", shared)
	}

	// Live: the pages follow the change feed. A mark on the window is gone
	// if the page reloads; it must survive both changes.
	run("list, feed connected", chromedp.Click(chromedp.CSS(`#nav a[data-page="artifacts"]`)), ready("artifacts"),
		waitJS(`document.querySelector('#feed.on:not([hidden])') !== null`))
	var mark string
	eval(`String(window.sameDocument = 'yes')`, &mark)
	var live artifact
	d.call(t, "POST", "/v1/snippets", map[string]any{"name": "live.json", "content": map[string]any{"step": 1}}, 201, &live)
	run("the new row appears without a reload", waitJS(`document.querySelector('#artifact-list tr[data-id="`+live.ID+`"]') !== null`))
	if got := texts("#artifact-list a.artifact-link"); strings.Join(got, ",") != "live.json,weights.bin,eval-report.json,train-config.json" {
		t.Errorf("the list after a create through the API shows %q, want live.json first", got)
	}
	run("open live.json", chromedp.Click(chromedp.CSS(`#artifact-list tr[data-id="`+live.ID+`"] a.artifact-link`)), ready("artifact"))
	d.call(t, "PUT", "/v1/artifacts/"+live.ID+"/content", `{"step": 2}`, 201, nil, "Content-Type", "application/json")
	run("version 2 appears without a reload",
		waitJS(`[...document.querySelectorAll('#versions tbody tr')].map(r => r.dataset.version).join() === '2,1'`))
	if got := texts("#artifact-props dd"); len(got) < 5 || got[4] != "2" {
		t.Errorf("the artifact's properties after the update show %q, want current version 2", got)
	}
	eval(`String(window.sameDocument) + ' ' + location.hash`, &mark)
	if want := "yes #/artifact/" + live.ID; mark != want {
		t.Errorf("after the live refreshes the page is %q, want %q (no reload)", mark, want)
	}
	// Activity: newest first, what happened since sign-in and, replayed
	// from the start of the feed at sign-in, what happened before.
	run("activity", chromedp.Click(chromedp.CSS(`#nav a[data-page="activity"]`)), ready("activity"))
	var events []string
	eval(`[...document.querySelectorAll('#activity tbody tr')].map(r => [...r.children].slice(1).map(c => c.textContent).join(' '))`, &events)
	if want := "artifact.updated live.json 2 admin;artifact.created live.json 1 admin;artifact.created weights.bin 1 admin;"; !strings.HasPrefix(strings.Join(events, ";")+";", want) {
		t.Errorf("activity shows %q, want it to begin %q", strings.Join(events, ";"), want)
	}
	if want := ";artifact.created eval-report.json 1 admin;artifact.created train-config.json 1 admin"; !strings.HasSuffix(";"+strings.Join(events, ";"), want) {
		t.Errorf("activity shows %q, want it to end with the events from before sign-in, %q", strings.Join(events, ";"), want)
	}
	if got := texts(`#activity a[href="#/artifact/` + live.ID + `"]`); len(got) != 2 {
		t.Errorf("activity links to live.json %d times, want 2", len(got))
	}

	// A break of the feed: the daemon restarts; the tab reconnects by
	// itself from the last event it saw, and the next event shows.
	var lastID string
	eval(`document.querySelector('#activity tbody tr').dataset.id`, &lastID)
	d = d.restart(t)
	resumed := func() (n int, from []string) {
		_, requests := lg.snapshot()
		for _, r := range requests {
			if strings.TrimPrefix(r.Request.URL, d.url) == "/v1/events" {
				n++
				if n > 1 {
					from = append(from, header(r.Request.Headers, "Last-Event-ID"))
				}
			}
		}
		return n, from
	}
	run("the feed reconnects", waitJS(`document.querySelector('#feed.on') !== null`), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		for n, _ := resumed(); n < 2; n, _ = resumed() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("the page did not open the feed again: %w", ctx.Err())
			case <-time.After(30 * time.Millisecond):
			}
		}
		return nil
	}), waitJS(`document.querySelector('#feed.on') !== null`))
	if _, from := resumed(); len(from) == 0 || strings.Join(from, ",") != strings.Repeat(lastID+",", len(from)-1)+lastID {
		t.Errorf("the feed reconnected with Last-Event-ID %q, want %s each time", from, lastID)
	}
	d.call(t, "POST", "/v1/snippets", map[string]any{"name": "after-restart.json", "content": 1}, 201, nil)
	run("the event after the restart shows",
		waitJS(`[...document.querySelectorAll('#activity tbody tr td:nth-child(3)')].map(c => c.textContent).join().startsWith('after-restart.json,live.json,live.json,weights.bin,')`))

	// The mesh: this one node, a reachable voter and the leader, holding
	// what was stored here.
	run("mesh", chromedp.Click(chromedp.CSS(`#nav a[data-page="mesh"]`)), ready("mesh"))
	var members []string
	eval(`[...document.querySelectorAll('#members tbody tr')].map(r => [...r.children].slice(1, 4).map(c => c.textContent).join(' '))`, &members)
	if strings.Join(members, ";") != "voter leader yes" {
		t.Errorf("members %q, want one: voter leader yes", members)
	}
	// The signed-in agent's usage and limits: an admin, unlimited.
	var quota []string
	eval(`[...document.querySelectorAll('#quota tbody tr')].map(r => [...r.children].map(c => c.textContent).join('|'))`, &quota)
	if len(quota) != 4 || quota[2] != "Open uploads|0|unlimited" || quota[3] != "Event streams on this node|1|unlimited" {
		t.Errorf("quota rows %q, want four, with 0 open uploads and this tab's 1 stream, unlimited", quota)
	}
	if got := texts("#whoami"); len(got) != 1 || !strings.HasPrefix(got[0], "agent admin · node ") {
		t.Errorf("header %q, want it to name the agent", got)
	}

	// Pins: one pinned here.
	d.call(t, "PUT", "/v1/pins/"+a.ID, nil, 202, nil)
	run("pins", chromedp.Click(chromedp.CSS(`#nav a[data-page="pins"]`)), ready("pins"),
		// The page refreshes itself while a pin is queued or fetching.
		waitJS(`[...document.querySelectorAll('#pins tbody tr td:nth-child(3)')].map(c => c.textContent).join() === 'pinned'`))
	if got := texts("#pins tbody tr td:first-child"); strings.Join(got, ",") != a.ID {
		t.Errorf("pins list %q, want %s", got, a.ID)
	}

	// Sign out: the key leaves the tab.
	run("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin-key")))
	eval(`String(sessionStorage.length)`, &stored)
	if stored != "0" {
		t.Errorf("sessionStorage holds %s entries after sign-out, want 0", stored)
	}
	if got := texts("#feed[hidden]"); len(got) != 1 {
		t.Errorf("the feed indicator shows after sign-out")
	}

	stopListening()
	wg.Wait()
	errs, requests := lg.snapshot()
	for _, e := range errs {
		t.Errorf("browser console: %s", e)
	}
	lg.mu.Lock()
	if lg.refused != 1 {
		t.Errorf("the browser logged %d refusals of GET /v1/node, want 1 (the wrong key's)", lg.refused)
	}
	lg.mu.Unlock()
	// The key is only ever in an Authorization header, and every call of
	// the API but the token routes carries it there.
	apiCalls, wrongKey, feeds := 0, 0, 0
	for _, ev := range requests {
		r := ev.Request
		if strings.Contains(r.URL, d.key) || strings.Contains(r.URLFragment, d.key) {
			t.Errorf("a request carries the API key in its URL: %s %s", r.Method, r.URL)
		}
		path := strings.TrimPrefix(r.URL, d.url)
		if !strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/v1/cap/") || strings.Contains(path, "/content?token=") {
			continue
		}
		apiCalls++
		if path == "/v1/events" {
			feeds++ // its Authorization is checked below like every call's
		}
		if auth := header(r.Headers, "Authorization"); auth == "Bearer am_not-a-key" && path == "/v1/node" {
			wrongKey++
		} else if auth != "Bearer "+d.key {
			t.Errorf("%s %s was sent without the key in Authorization (got %q)", r.Method, path, auth)
		}
	}
	lg.mu.Lock()
	if feeds < 2 || lg.feedDown > feeds-2 {
		t.Errorf("the page opened the change feed %d times (%d refused while the daemon restarted), want once and again after the restart", feeds, lg.feedDown)
	}
	lg.mu.Unlock()
	if wrongKey != 1 {
		t.Errorf("the wrong key was sent %d times, want once", wrongKey)
	}
	if apiCalls < 10 {
		t.Errorf("saw %d calls of the API, want at least 10: the request log is incomplete", apiCalls)
	}
}

// header reads a header from the protocol's header map, whose names keep
// the case they were sent with.
func header(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}

// pageSession is a headless Chromium tab on the web view, with what the
// page logged.
type pageSession struct {
	t      *testing.T
	d      *daemon
	ctx    context.Context
	errors func() []string
}

// openPage starts Chromium for a test: its tab's context, and the console
// errors and exceptions the page logged (read them with errors). The
// browser stops with the test.
func openPage(t *testing.T, d *daemon) *pageSession {
	t.Helper()
	exe := findBrowser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1100, 900), chromedp.UserDataDir(t.TempDir()))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("starting %s: %v", exe, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	lctx, stopListening := context.WithCancel(bctx)
	lg := &browserLog{}
	var wg sync.WaitGroup
	console := chromedp.Console(lctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				lg.mu.Lock()
				lg.errors = append(lg.errors, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				lg.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		stopListening()
		wg.Wait()
		cancel()
		cancelBrowser()
		cancelAlloc()
	})
	return &pageSession{t: t, d: d, ctx: ctx, errors: func() []string { errs, _ := lg.snapshot(); return errs }}
}

// run runs steps in the tab, failing the test with what went wrong.
func (p *pageSession) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v\nconsole errors: %q\ndaemon log: %s", what, err, p.errors(), tail(p.d.logs(), 2000))
	}
}

// js evaluates a JavaScript expression whose value is a string.
func (p *pageSession) js(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return fmt.Sprint(v)
}

// wait polls a JavaScript condition until it holds, for at most 15 s.
func (p *pageSession) wait(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(30*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))
}

// ready waits for the page to have rendered the route in view.
func (p *pageSession) ready(page string) chromedp.Action[chromedp.Void] {
	return p.wait(`(() => { const v = document.querySelector('#view-` + page + `'); return !!v && v.dataset.ready === 'true' && v.dataset.route === location.hash; })()`)
}

// click clicks the element sel finds once there is one, from within the
// page, in one step: a live refresh that redraws the element between
// finding it and clicking it cannot make the click miss.
func (p *pageSession) click(sel string) chromedp.Action[chromedp.Void] {
	return p.wait(`(() => { const e = document.querySelector(` + jsString(sel) + `); if (!e) return false; e.click(); return true; })()`)
}

// signIn signs in with key on the sign-in form and waits for the page
// in view (the route of the hash, or the list) to have rendered.
func (p *pageSession) signIn(key string) {
	p.t.Helper()
	p.run("sign in",
		chromedp.WaitVisible(chromedp.CSS("#signin-key")),
		chromedp.SetValue(chromedp.CSS("#signin-key"), key),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		p.wait(`(() => { const v = document.querySelector('#main > div[data-ready="true"]'); return !!v && v.dataset.route === location.hash; })()`))
}

// TestWebViewOwnerActions drives the owner's actions in the web view in
// headless Chromium against a real daemon, and checks each one's effect
// through the HTTP API: share with an agent and a group, unshare the
// group, edit the metadata (a new version with the same content), list
// the signed URLs and revoke one (it stops working), delete a version,
// and delete the artifact, each destructive one confirmed in the page.
// An agent the artifact is shared with sees none of those actions. It
// also checks that / leads a browser to the web view, that the activity
// page shows the history from before sign-in, that the list's time
// column is the creation time it sorts by, and that peer ids show their
// last 8 characters with the whole id as a title. It fails on any console
// error or exception in the page.
func TestWebViewOwnerActions(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	bobKey := d.addAgent(t, "bob")
	d.addAgent(t, "carol")
	d.call(t, "PUT", "/v1/groups/team", map[string]any{"members": []string{"carol"}}, 200, nil)
	var art artifact
	d.call(t, "POST", "/v1/snippets", map[string]any{"name": "report.json", "content": map[string]any{"v": 1}, "metadata": map[string]any{"stage": "draft", "epoch": 1}}, 201, &art)
	path := "/v1/artifacts/" + art.ID
	var v2 artifact
	d.call(t, "PUT", path+"/content", `{"v": 2}`, 201, &v2, "Content-Type", "application/json")
	var older artifact
	d.call(t, "POST", "/v1/snippets", map[string]any{"name": "older.json", "content": 0}, 201, &older)
	// older.json was created last but report.json was updated last: the
	// list goes by creation.
	d.call(t, "PUT", path+"/content", `{"v": 2}`, 201, &v2, "Content-Type", "application/json")
	var info struct {
		PeerID string `json:"peer_id"`
	}
	d.call(t, "GET", "/v1/node", nil, 200, &info)

	p := openPage(t, d)

	// / leads a browser to the web view.
	p.run("open /", chromedp.Navigate(d.url+"/"), chromedp.WaitVisible(chromedp.CSS("#signin-key")))
	if got := p.js(`location.pathname`); got != "/ui/" {
		t.Errorf("GET / in a browser lands on %q, want /ui/", got)
	}
	p.signIn(d.key)
	p.run("the list", p.ready("artifacts"))

	// The header names this node by the end of its peer id.
	if got, want := p.js(`document.querySelector('#whoami').textContent`), "node …"+info.PeerID[len(info.PeerID)-8:]; !strings.Contains(got, want) {
		t.Errorf("header %q, want it to contain %q", got, want)
	}
	if got := p.js(`document.querySelector('#whoami').title`); !strings.Contains(got, info.PeerID) {
		t.Errorf("header title %q, want the whole peer id %s", got, info.PeerID)
	}
	// The list: newest first by creation, under a column that says so.
	if got := p.js(`[...document.querySelectorAll('#artifact-list tbody tr')].map(r => r.querySelector('a.artifact-link').textContent + '@' + r.querySelector('td.created').textContent).join()`); got != "older.json@"+uiTime(older.CreatedAt)+",report.json@"+uiTime(art.CreatedAt) {
		t.Errorf("the list shows %q, want older.json then report.json with their creation times", got)
	}
	for _, want := range []artifact{older, art} {
		at := p.js(`document.querySelector('#artifact-list tr[data-id="` + want.ID + `"] td.created time').getAttribute('datetime')`)
		if got, err := time.Parse(time.RFC3339Nano, at); err != nil || !got.Equal(want.CreatedAt) {
			t.Errorf("%s's row shows the time %s, want its creation time %s", want.Name, at, want.CreatedAt)
		}
	}
	if got := p.js(`document.querySelector('#list-order').textContent`); got != "Created ↓" {
		t.Errorf("the list's time column is %q, want Created ↓", got)
	}
	// Activity right after sign-in: the feed replayed from its start.
	p.run("activity", chromedp.Navigate(d.url+"/ui/#/activity"), p.ready("activity"),
		p.wait(`document.querySelectorAll('#activity tbody tr').length >= 4`))
	if got := p.js(`[...document.querySelectorAll('#activity tbody tr')].map(r => r.children[1].textContent + ' ' + r.children[2].textContent + ' ' + r.children[3].textContent).join(';')`); got != "artifact.updated report.json 3;artifact.created older.json 1;artifact.updated report.json 2;artifact.created report.json 1" {
		t.Errorf("activity after sign-in shows %q, want the four changes made before it, newest first", got)
	}

	openArtifact := func() {
		t.Helper()
		// By way of the list: a navigation to the hash in view would not
		// draw the page again.
		p.run("open the artifact", chromedp.Navigate(d.url+"/ui/#/artifacts"), p.ready("artifacts"),
			chromedp.Navigate(d.url+"/ui/#/artifact/"+art.ID), p.ready("artifact"))
	}
	openArtifact()
	// Placement names holders by the end of their peer ids.
	if got := p.js(`[...document.querySelectorAll('#placement .peer')].map(e => e.textContent + '|' + e.title).join()`); !strings.HasPrefix(got, "…"+info.PeerID[len(info.PeerID)-8:]+"|"+info.PeerID) {
		t.Errorf("placement shows holders %q, want …%s with the whole id as title", got, info.PeerID[len(info.PeerID)-8:])
	}

	// Share with bob and the team group.
	p.run("share",
		chromedp.SetValue(chromedp.CSS("#share-agents"), "bob"),
		chromedp.SetValue(chromedp.CSS("#share-groups"), "team"),
		p.click("#share-submit"),
		p.wait(`!!document.querySelector('#access-agents [data-agent="bob"]') && !!document.querySelector('#access-groups [data-group="team"]')`))
	var acc struct {
		Agents []string `json:"agents"`
		Groups []string `json:"groups"`
	}
	d.call(t, "GET", path+"/access", nil, 200, &acc)
	if strings.Join(acc.Agents, ",") != "bob" || strings.Join(acc.Groups, ",") != "team" {
		t.Errorf("after sharing in the page the node has agents %v groups %v, want bob and team", acc.Agents, acc.Groups)
	}
	// Unshare the group.
	p.run("unshare", p.click(`#access-groups [data-group="team"] button.unshare`),
		p.wait(`!document.querySelector('#access-groups [data-group="team"]') && document.querySelector('#access-groups').textContent === 'none'`))
	d.call(t, "GET", path+"/access", nil, 200, &acc)
	if strings.Join(acc.Agents, ",") != "bob" || len(acc.Groups) != 0 {
		t.Errorf("after unsharing the group the node has agents %v groups %v, want bob only", acc.Agents, acc.Groups)
	}

	// Edit the metadata: a key changed, one added, one removed.
	p.run("edit the metadata",
		p.click("#metadata-edit"),
		chromedp.WaitVisible(chromedp.CSS("#metadata-editor")),
		chromedp.SetValue(chromedp.CSS("#metadata-editor"), `{"stage": "final", "year": 2025}`),
		p.click("#metadata-save"),
		p.wait(`document.querySelectorAll('#versions tbody tr').length === 4 && !document.querySelector('#metadata-editor')`))
	var a artifact
	d.call(t, "GET", path, nil, 200, &a)
	if a.Version != 4 || a.CID != v2.CID || a.SizeBytes != v2.SizeBytes || fmt.Sprint(a.Metadata) != "map[stage:final year:2025]" {
		t.Errorf("after editing the metadata the node has version %d cid %s size %d metadata %v, want version 4 with version 3's content and stage final, year 2025",
			a.Version, a.CID, a.SizeBytes, a.Metadata)
	}
	if got := p.js(`document.querySelector('#artifact-metadata').textContent.replace(/\s+/g, '')`); got != `{"stage":"final","year":2025}` {
		t.Errorf("the page shows metadata %s after saving", got)
	}

	// Signed URLs: one of the owner's, one of bob's, listed with no
	// token; revoking bob's in the page ends it.
	var mine, bobs struct {
		URL     string `json:"url"`
		Token   string `json:"token"`
		TokenID string `json:"token_id"`
	}
	d.call(t, "POST", path+"/signed-url", map[string]any{"expires_in": 600}, 201, &mine)
	d.callAs(t, bobKey, "POST", path+"/signed-url", map[string]any{"version": 2}, 201, &bobs)
	openArtifact()
	if got := p.js(`[...document.querySelectorAll('#signed-url-list tbody tr')].map(r => r.dataset.token + ' ' + r.children[1].textContent + ' ' + r.children[2].textContent).join()`); got != bobs.TokenID+" 2 bob,"+mine.TokenID+" current admin" {
		t.Errorf("the signed URLs listed are %q, want bob's (version 2) then the admin's", got)
	}
	if html := p.js(`document.querySelector('#signed-urls').innerHTML`); strings.Contains(html, mine.Token) || strings.Contains(html, bobs.Token) {
		t.Errorf("the page shows a token in the signed URL list")
	}
	p.run("revoke bob's signed URL",
		p.click(`#signed-url-list tr[data-token="`+bobs.TokenID+`"] button.revoke-token`),
		p.click(`#signed-url-list tr[data-token="`+bobs.TokenID+`"] button.confirm-yes`),
		p.wait(`!document.querySelector('#signed-url-list tr[data-token="`+bobs.TokenID+`"]') && !!document.querySelector('#signed-url-list tr[data-token="`+mine.TokenID+`"]')`))
	if st, body := d.status(t, "", "GET", strings.TrimPrefix(bobs.URL, d.url), nil); st != 403 || errorCode(body) != "permission_denied" {
		t.Errorf("GET of the signed URL revoked in the page: %d %s, want 403 permission_denied", st, body)
	}
	var urls struct {
		Items []struct {
			TokenID string `json:"token_id"`
		} `json:"items"`
	}
	d.call(t, "GET", path+"/signed-urls", nil, 200, &urls)
	if len(urls.Items) != 1 || urls.Items[0].TokenID != mine.TokenID {
		t.Errorf("the node lists signed URLs %+v after the revocation, want only %s", urls.Items, mine.TokenID)
	}

	// Delete version 1, confirmed in the page.
	p.run("delete version 1",
		p.click(`#versions tr[data-version="1"] button.delete-version`),
		p.wait(`document.querySelector('#versions tr[data-version="1"] .confirm-question') !== null`),
		p.click(`#versions tr[data-version="1"] button.confirm-yes`),
		p.wait(`[...document.querySelectorAll('#versions tbody tr')].map(r => r.dataset.version).join() === '4,3,2'`))
	var vs struct {
		Items []struct {
			Version int `json:"version"`
		} `json:"items"`
	}
	d.call(t, "GET", path+"/versions", nil, 200, &vs)
	if fmt.Sprint(vs.Items) != "[{2} {3} {4}]" {
		t.Errorf("after deleting version 1 in the page the node has versions %v, want 2, 3, 4", vs.Items)
	}

	// The grantee: bob sees the artifact and may download it, but none
	// of the owner's actions.
	p.run("sign out", p.click("#signout"), chromedp.WaitVisible(chromedp.CSS("#signin-key")))
	p.signIn(bobKey)
	openArtifact()
	if got := p.js(`String(!!document.querySelector('#download'))`); got != "true" {
		t.Fatalf("bob's artifact page has no Download button: it did not render")
	}
	for _, sel := range []string{"#share-form", "#share-submit", "button.unshare", "#metadata-edit", "#metadata-editor", "button.delete-version",
		"#delete-artifact", "#danger-zone", "#signed-urls", "#signed-url-list", "button.revoke-token", "#access-agents"} {
		if got := p.js(`String(document.querySelectorAll(` + jsString(sel) + `).length)`); got != "0" {
			t.Errorf("the grantee's page shows %s (%s of them): an owner's action", sel, got)
		}
	}
	if got := p.js(`document.querySelector('#access').textContent`); got != "Only the owner sees who has access." {
		t.Errorf("the grantee's access box says %q", got)
	}

	// The owner deletes the artifact, confirmed in the page.
	p.run("sign out", p.click("#signout"), chromedp.WaitVisible(chromedp.CSS("#signin-key")))
	p.signIn(d.key)
	openArtifact()
	p.run("delete the artifact",
		p.click("#delete-artifact"),
		chromedp.WaitVisible(chromedp.CSS("#delete-artifact-confirm")),
		p.click("#delete-artifact-confirm"),
		p.wait(`location.hash === '#/artifacts'`), p.ready("artifacts"),
		p.wait(`!document.querySelector('#artifact-list tr[data-id="`+art.ID+`"]')`))
	if st, body := d.status(t, d.key, "GET", path, nil); st != 404 {
		t.Errorf("GET of the artifact deleted in the page: %d %s, want 404", st, body)
	}

	for _, e := range p.errors() {
		t.Errorf("browser console: %s", e)
	}
}

// uiTime is a time as the web view shows it.
func uiTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05") + "Z"
}
