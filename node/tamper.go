//go:build !artmeshtest

package node

import "time"

// tamper is nil in real builds: blocks are served as stored. Test builds
// (-tags artmeshtest) can make a node corrupt what it serves, to prove
// that receivers reject it.
func tamper() func([]byte) []byte { return nil }

// skipReadChecks is false in real builds: every block read is checked.
// Test builds skip the checks when ARTMESH_TEST_NO_READ_CHECKS=1, for the
// benchmark that measures what they cost.
func skipReadChecks() bool { return false }

// staleReads is 0 in real builds. Test builds break the read path when
// ARTMESH_TEST_STALE_READS is a duration: an artifact's info is served as
// it was read up to that long ago, so that the e2e history checker can
// show that it catches stale reads.
func staleReads() time.Duration { return 0 }
