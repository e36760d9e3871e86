package e2e

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestOldRepoAfterRecoveryFindsItWasRemoved: of three voters one is
// destroyed and one is thought lost; the survivor is recovered as the sole
// voter. When the one thought lost starts again, it must not go on as a
// mesh of its own: it asks the voters of its last configuration, one of
// which now leads alone without it, and retires (409 on every call) rather
// than wait for a majority that can no longer answer.
func TestOldRepoAfterRecoveryFindsItWasRemoved(t *testing.T) {
	a, b, c := newMesh3(t)
	c.call(t, "POST", "/v1/snippets", map[string]any{"name": "before", "content": 1}, 201, nil)
	a.kill()
	b.kill()
	c.stop()
	if out, errOut, err := c.cliRaw("repo", "recover-catalog", "--sole-voter"); err != nil || !strings.Contains(out, "is now the only voter") {
		t.Fatalf("recover-catalog --sole-voter: %v\n%s%s", err, out, errOut)
	}
	c = relaunch(t, c)
	waitReady(t, c, 60*time.Second)
	b = relaunch(t, b)
	waitFor(t, 60*time.Second, "the old repo says it was removed", func() bool {
		st, _, body, err := httpDo(b, "", "GET", "/readyz", nil, 3*time.Second)
		return err == nil && st == 409 && bytes.Contains(body, []byte("was removed from its mesh"))
	})
	c.call(t, "POST", "/v1/snippets", map[string]any{"name": "after", "content": 2}, 201, nil)
}
