//go:build !artmeshtest

package node

// tamper is nil in real builds: blocks are served as stored. Test builds
// (-tags artmeshtest) can make a node corrupt what it serves, to prove
// that receivers reject it.
func tamper() func([]byte) []byte { return nil }
