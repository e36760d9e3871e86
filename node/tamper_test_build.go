//go:build artmeshtest

package node

import (
	"os"
	"time"
)

// tamper, in test builds, alters how this node serves blocks to its
// peers: ARTMESH_TEST_CORRUPT=1 flips a byte of every block, to prove that
// receivers reject corrupt data; ARTMESH_TEST_SERVE_DELAY (a duration)
// holds every block back that long, so that a test can cut a transfer
// mid-stream.
func tamper() func([]byte) []byte {
	corrupt := os.Getenv("ARTMESH_TEST_CORRUPT") == "1"
	delay, _ := time.ParseDuration(os.Getenv("ARTMESH_TEST_SERVE_DELAY"))
	if !corrupt && delay <= 0 {
		return nil
	}
	return func(b []byte) []byte {
		if delay > 0 {
			time.Sleep(delay)
		}
		if corrupt && len(b) > 0 {
			b[len(b)/2] ^= 0x5a
		}
		return b
	}
}

// skipReadChecks, in test builds, is ARTMESH_TEST_NO_READ_CHECKS=1: the
// block store serves blocks without checking them, for the benchmark that
// measures what the checks cost.
func skipReadChecks() bool { return os.Getenv("ARTMESH_TEST_NO_READ_CHECKS") == "1" }

// staleReads, in test builds, is ARTMESH_TEST_STALE_READS as a duration:
// a broken read path that serves an artifact's info as it was read up to
// that long ago (see Node.staleArtifact).
func staleReads() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("ARTMESH_TEST_STALE_READS"))
	return d
}
