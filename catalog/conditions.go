package catalog

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/artmesh/artmesh"
)

// Conditional writes, as S3 and HTTP make them. A write can carry a
// precondition on the artifact it changes: If-Match, the ETags (version
// CIDs) one of which must be the artifact's current version, or "*" for
// any; or, on a create, If-None-Match "*", that its owner has no artifact
// of that name yet. The precondition travels in the log with the write, in
// a conditional envelope, and the state machine checks it against the
// state the write applies to, in the write's own transaction: of two
// updates made from the same version, one applies and the other fails
// PreconditionFailed, however close together they come.
//
// The envelope: the type byte, the precondition's JSON length as a
// uvarint, its JSON, then the write's own entry, which is a create, a new
// version, a version's deletion or an artifact's.

const conditionalType commandType = 37

// Precondition is what a conditional write requires of the state it
// applies to.
type Precondition struct {
	// IfMatch lists ETags (version CIDs, quoted or not), one of which
	// must be the artifact's current version's; "*" matches any version
	// of an existing artifact. Empty: no condition.
	IfMatch []string `json:"if_match,omitempty"`
	// IfNoneMatch, on a create, requires that the owner has no artifact
	// of the new one's name.
	IfNoneMatch bool `json:"if_none_match,omitempty"`
}

// empty reports whether p requires nothing.
func (p Precondition) empty() bool { return len(p.IfMatch) == 0 && !p.IfNoneMatch }

// Matches reports whether an artifact whose current version has CID cid
// meets IfMatch.
func (p Precondition) Matches(cid string) bool {
	if len(p.IfMatch) == 0 {
		return true
	}
	for _, tag := range p.IfMatch {
		if tag == "*" || strings.Trim(strings.TrimPrefix(tag, "W/"), `"`) == cid {
			return true
		}
	}
	return false
}

// ParseETags splits an If-Match or If-None-Match header value into its
// entity tags.
func ParseETags(h string) []string {
	var tags []string
	for _, t := range strings.Split(h, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

type preconditionKey struct{}

// WithPrecondition returns ctx carrying p: the first write proposed under
// it that p can apply to (a create, a new version, a deletion) carries it.
func WithPrecondition(ctx context.Context, p Precondition) context.Context {
	if p.empty() {
		return ctx
	}
	return context.WithValue(ctx, preconditionKey{}, &p)
}

// PreconditionOf returns the precondition ctx carries (nil when none).
func PreconditionOf(ctx context.Context) *Precondition {
	p, _ := ctx.Value(preconditionKey{}).(*Precondition)
	return p
}

// conditionable reports whether a precondition can apply to writes of
// type t.
func conditionable(t commandType) bool {
	switch t {
	case createArtifactType, addVersionType, deleteVersionType, deleteArtifactType:
		return true
	}
	return false
}

// wrapConditional puts entry in a conditional envelope.
func wrapConditional(p Precondition, entry []byte) ([]byte, error) {
	head, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	env := binary.AppendUvarint([]byte{byte(conditionalType)}, uint64(len(head)))
	env = append(env, head...)
	return append(env, entry...), nil
}

// unwrapConditional splits a conditional envelope's payload (after its
// type byte). One that is cut short, does not decode, requires nothing,
// or wraps a write a precondition cannot apply to, is an error wrapping
// errMalformedEntry.
func unwrapConditional(payload []byte) (p Precondition, entry []byte, err error) {
	n, k := binary.Uvarint(payload)
	if k <= 0 || uint64(len(payload)-k) < n {
		return p, nil, malformed(conditionalType, "short conditional entry")
	}
	if err := json.Unmarshal(payload[k:k+int(n)], &p); err != nil {
		return p, nil, malformed(conditionalType, "the precondition does not decode: %v", err)
	}
	entry = payload[k+int(n):]
	if p.empty() || len(entry) == 0 || !conditionable(commandType(entry[0])) {
		return p, nil, malformed(conditionalType, "a conditional entry without a precondition, or around a write of type %d", firstByte(entry))
	}
	if p.IfNoneMatch && commandType(entry[0]) != createArtifactType {
		return p, nil, malformed(conditionalType, "If-None-Match applies to a create only")
	}
	return p, entry, nil
}

func applyConditional(tx *Txn, payload []byte) any {
	const op = artmesh.Op("catalog.Conditional")
	p, entry, err := unwrapConditional(payload)
	if err != nil {
		return err
	}
	t, inner := commandType(entry[0]), entry[1:]
	var target artmesh.ArtifactID
	switch t {
	case createArtifactType:
		cmd, err := decode[CreateArtifact](t, inner)
		if err != nil {
			return err
		}
		if p.IfNoneMatch {
			it, err := tx.Get(tableArtifacts, indexOwnerName, string(cmd.Owner), cmd.Name)
			if err != nil {
				return internal(op, err)
			}
			if raw := it.Next(); raw != nil {
				a := raw.(*artifactRow)
				return errorf(op, artmesh.PreconditionFailed,
					"%s already owns an artifact named %q (%s); If-None-Match: * creates a name only once", cmd.Owner, cmd.Name, a.ID)
			}
		}
	case addVersionType:
		cmd, err := decode[AddVersion](t, inner)
		if err != nil {
			return err
		}
		target = cmd.ArtifactID
	case deleteVersionType:
		cmd, err := decode[DeleteVersion](t, inner)
		if err != nil {
			return err
		}
		target = cmd.ArtifactID
	case deleteArtifactType:
		cmd, err := decode[deleteArtifactCmd](t, inner)
		if err != nil {
			return err
		}
		target = cmd.ID
	}
	if target != "" && len(p.IfMatch) > 0 {
		raw, err := tx.First(tableArtifacts, indexID, string(target))
		if err != nil {
			return internal(op, err)
		}
		// An artifact that is gone fails as the write would: not found.
		if raw != nil {
			if a := raw.(*artifactRow); !p.Matches(a.CID) {
				return errorf(op, artmesh.PreconditionFailed,
					"artifact %s is at version %d (ETag \"%s\"), which If-Match does not name: read it again, then retry",
					a.ID, a.Version, a.CID)
			}
		}
	}
	return applyCommand(tx, entry)
}

// conditionEntry wraps data in a conditional envelope when ctx carries a
// precondition that no write under it has carried yet and the write is
// one it applies to.
func conditionEntry(ctx context.Context, op artmesh.Op, data []byte) ([]byte, error) {
	p := PreconditionOf(ctx)
	if p == nil || len(data) == 0 || !conditionable(commandType(data[0])) {
		return data, nil
	}
	if p.IfNoneMatch && commandType(data[0]) != createArtifactType {
		return nil, artmesh.E(op, artmesh.Invalid, "If-None-Match: * applies to a create only")
	}
	env, err := wrapConditional(*p, data)
	if err != nil {
		return nil, artmesh.E(op, artmesh.Invalid, fmt.Errorf("encode the precondition: %w", err))
	}
	return env, nil
}

// unwrapOne returns what the envelope entry is wraps, and false when entry
// is no envelope (or one that does not unwrap: the write's own checks then
// refuse it).
func unwrapOne(entry []byte) ([]byte, bool) {
	if len(entry) == 0 {
		return nil, false
	}
	var inner []byte
	var err error
	switch commandType(entry[0]) {
	case forwardedType:
		_, _, inner, err = unwrapForwarded(entry[1:])
	case keyedType:
		_, inner, err = unwrapKeyed(entry[1:])
	case conditionalType:
		_, inner, err = unwrapConditional(entry[1:])
	default:
		return nil, false
	}
	return inner, err == nil
}

// envelopeTypes returns the types of the keyed and conditional envelopes
// an entry has around its write.
func envelopeTypes(entry []byte) []commandType {
	var ts []commandType
	for inner, ok := unwrapOne(entry); ok; inner, ok = unwrapOne(entry) {
		if t := commandType(entry[0]); t != forwardedType {
			ts = append(ts, t)
		}
		entry = inner
	}
	return ts
}

// unwrapEnvelopes returns the write an entry carries, inside any
// forwarded, keyed and conditional envelopes, or the entry itself when
// one does not unwrap (the write's own checks then refuse it).
func unwrapEnvelopes(entry []byte) []byte {
	for inner, ok := unwrapOne(entry); ok; inner, ok = unwrapOne(entry) {
		entry = inner
	}
	return entry
}
