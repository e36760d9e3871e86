package artmesh

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Id prefixes.
const (
	ArtifactPrefix = "art_"
	UploadPrefix   = "upl_"
)

// NewArtifactID returns a fresh artifact id for an artifact created at t.
func NewArtifactID(t time.Time) ArtifactID {
	return ArtifactID(ArtifactPrefix + ulid.MustNew(ulid.Timestamp(t), rand.Reader).String())
}

// NewUploadID returns a fresh upload session id.
func NewUploadID(t time.Time) string {
	return UploadPrefix + ulid.MustNew(ulid.Timestamp(t), rand.Reader).String()
}

// ValidArtifactID reports whether s has the form of an artifact id.
func ValidArtifactID(s string) bool {
	if !strings.HasPrefix(s, ArtifactPrefix) {
		return false
	}
	_, err := ulid.ParseStrict(s[len(ArtifactPrefix):])
	return err == nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidateAgentID checks that id is usable as an agent id: 1 to 64 letters,
// digits, '.', '_', '@' or '-', starting with a letter or digit.
func ValidateAgentID(id string) error {
	if !nameRE.MatchString(id) {
		return E(Invalid, fmt.Sprintf("agent id %q must be 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", id))
	}
	return nil
}

// ValidateGroupName checks that name is usable as a group name, with the
// same rule as agent ids.
func ValidateGroupName(name string) error {
	if !nameRE.MatchString(name) {
		return E(Invalid, fmt.Sprintf("group name %q must be 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", name))
	}
	return nil
}

// MaxNameBytes is the longest artifact name accepted.
const MaxNameBytes = 1024

// ValidateArtifactName checks an artifact name: 1 to 1024 bytes of UTF-8
// without control characters (C0, DEL and C1) and without the
// bidirectional embedding, override and isolate controls (U+202A to
// U+202E, U+2066 to U+2069), which make a name display as another
// ("invoice\u202Efdp.exe" shows as "invoiceexe.pdf").
func ValidateArtifactName(name string) error {
	if name == "" {
		return E(Invalid, "artifact name is required")
	}
	if len(name) > MaxNameBytes {
		return E(Invalid, fmt.Sprintf("artifact name is %d bytes; at most %d are allowed", len(name), MaxNameBytes))
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || r == 0xfffd || (r >= 0x80 && r <= 0x9f):
			return E(Invalid, "artifact name must be UTF-8 text without control characters")
		case (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			return E(Invalid, fmt.Sprintf("artifact name must not contain the bidirectional control U+%04X", r))
		}
	}
	return nil
}

// ParseMetadata parses and validates metadata given as JSON text: it must
// be a JSON object of at most MaxMetadataBytes, nested at most
// MaxMetadataDepth levels deep. Values are compacted. Empty input yields
// empty metadata. Every write path that takes metadata comes through here.
func ParseMetadata(data []byte) (Metadata, error) {
	if len(data) > MaxMetadataBytes {
		return nil, E(TooLarge, fmt.Sprintf("metadata is %d bytes; at most %d are allowed", len(data), MaxMetadataBytes))
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return Metadata{}, nil
	}
	if d := jsonDepth(data); d > MaxMetadataDepth {
		return nil, E(Invalid, fmt.Sprintf("metadata nests %d levels deep; at most %d are allowed", d, MaxMetadataDepth))
	}
	var m Metadata
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, E(Invalid, "metadata must be a JSON object")
	}
	for k, v := range m {
		m[k] = json.RawMessage(MetaCompact(v))
	}
	return m, nil
}

// jsonDepth returns how deeply JSON text nests objects and arrays (0 for a
// scalar), not counting brackets inside strings. It reads any bytes, valid
// JSON or not, in one pass and without recursion, so it runs before the
// decoder does.
func jsonDepth(data []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// MetaCompact returns raw's compact JSON text, or raw itself when it is
// not valid JSON.
func MetaCompact(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// Merge returns a copy of m with the keys of update set over it. A key whose
// value in update is JSON null is removed, as in JSON merge patch.
func (m Metadata) Merge(update Metadata) Metadata {
	out := make(Metadata, len(m)+len(update))
	for k, v := range m {
		out[k] = v
	}
	for k, v := range update {
		if string(v) == "null" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}
