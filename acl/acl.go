// Package acl holds identities and rights: API keys, of which only hashes
// are kept, and the decision whether an agent may do something to an
// artifact. It is pure: no I/O, no clock; what it needs to know is passed in.
package acl

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"strings"

	"github.com/artmesh/artmesh"
)

// KeyPrefix starts every API key, so that keys are recognisable in files
// and by secret scanners.
const KeyPrefix = "amk_"

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewAPIKey returns a fresh API key with 256 bits of randomness.
func NewAPIKey() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("acl: no randomness: " + err.Error()) // crypto/rand never fails on supported systems
	}
	return KeyPrefix + strings.ToLower(keyEncoding.EncodeToString(b[:]))
}

// HashKey returns the hash under which a key is stored and looked up: the
// hex of its SHA-256. A key is high-entropy, so no salt or slow hash is
// needed; finding an agent by this hash is an index lookup that compares
// hashes, never keys, and EqualHash compares in constant time.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// EqualHash compares two key hashes in constant time.
func EqualHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// WellFormedKey reports whether key has the shape of an API key, so that
// garbage is refused before any lookup.
func WellFormedKey(key string) bool {
	rest, ok := strings.CutPrefix(key, KeyPrefix)
	if !ok || len(rest) != 52 {
		return false
	}
	_, err := keyEncoding.DecodeString(strings.ToUpper(rest))
	return err == nil
}

// Subject is what the decision needs to know about an artifact.
type Subject struct {
	Owner  artmesh.AgentID
	Agents []artmesh.AgentID // shared with directly
	Groups []string          // shared with through these groups
}

// Can reports whether agent may exercise right on an artifact. The owner
// may do everything; an agent it is shared with, directly or through one of
// the groups it is a member of (agentGroups), may read.
func Can(agent artmesh.AgentID, agentGroups []string, right artmesh.Right, s Subject) bool {
	if agent == "" {
		return false
	}
	if agent == s.Owner {
		return true
	}
	if right != artmesh.Read {
		return false
	}
	for _, a := range s.Agents {
		if a == agent {
			return true
		}
	}
	for _, g := range s.Groups {
		for _, mine := range agentGroups {
			if g == mine {
				return true
			}
		}
	}
	return false
}
