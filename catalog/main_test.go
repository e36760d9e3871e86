package catalog

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: every Catalog
// must stop all of its goroutines (raft's, the log's, its waiters) on Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
