//go:build artmeshtest

package node

import "os"

// tamper, in test builds, flips a byte of every block this node serves
// when ARTMESH_TEST_CORRUPT=1, to prove that receivers reject corrupt data.
func tamper() func([]byte) []byte {
	if os.Getenv("ARTMESH_TEST_CORRUPT") != "1" {
		return nil
	}
	return func(b []byte) []byte {
		if len(b) > 0 {
			b[len(b)/2] ^= 0x5a
		}
		return b
	}
}
