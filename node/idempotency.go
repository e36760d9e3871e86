package node

import (
	"context"
	"fmt"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
)

// Idempotency is the idempotency key of one request (see catalog's
// idempotency.go): the first catalog write made for the request carries it.
type Idempotency = catalog.Idempotency

// KeyRecord is what the catalog keeps of a key whose write took effect.
type KeyRecord = catalog.KeyRecord

// ValidIdempotencyKey checks an Idempotency-Key's form.
func ValidIdempotencyKey(key string) error {
	if err := catalog.ValidKey(key); err != nil {
		return artmesh.E(artmesh.Invalid, "Idempotency-Key: "+err.Error())
	}
	return nil
}

// WithIdempotency returns ctx carrying the idempotency key of the request
// that agent made, whose digest digest returns once its body is read.
func WithIdempotency(ctx context.Context, agent artmesh.AgentID, key string, digest func() ([32]byte, error)) (context.Context, *Idempotency) {
	k := &Idempotency{Agent: agent, Key: key, Digest: digest}
	return catalog.WithIdempotency(ctx, k), k
}

// IdempotencyRecord returns the record of agent's key as this node has
// applied it, if there is one.
func (n *Node) IdempotencyRecord(agent artmesh.AgentID, key string) (KeyRecord, bool, error) {
	return n.cat.IdempotencyRecord(agent, key)
}

// keyUnused reports whether ctx carries an idempotency key that no write
// has carried yet: the next write will.
func keyUnused(ctx context.Context) bool {
	k := catalog.IdempotencyOf(ctx)
	return k != nil && k.Unused()
}

// replayedSecret is the answer to a request sent again with its key when
// the first answer carried a secret (an API key, a token) that is kept
// nowhere: the write is not made twice, and the secret cannot be shown
// again. mine says whether the write that carried the key was the one
// that mints the secret.
func replayedSecret(ctx context.Context, mine bool, what, remedy string) error {
	k := catalog.IdempotencyOf(ctx)
	if !mine || k == nil || !k.Replayed() {
		return nil
	}
	return artmesh.E(artmesh.Conflict, fmt.Sprintf("an earlier request with Idempotency-Key %q already %s; the secret it answered with is shown only once and kept nowhere: %s",
		k.Key, what, remedy))
}

// Precondition is what a conditional write requires (see catalog's
// conditions.go): If-Match on an update or a deletion, If-None-Match: * on
// a create.
type Precondition = catalog.Precondition

// WithPrecondition returns ctx carrying p, which the write made under it
// carries to the catalog, where it is checked in the write's transaction.
func WithPrecondition(ctx context.Context, p Precondition) context.Context {
	return catalog.WithPrecondition(ctx, p)
}

// ParseETags splits an If-Match or If-None-Match value into its tags.
func ParseETags(h string) []string { return catalog.ParseETags(h) }

// checkPrecondition checks ctx's If-Match against a's current version
// before any work is done for the write (the catalog checks it again, in
// the write's own transaction).
func checkPrecondition(ctx context.Context, a artmesh.Artifact) error {
	if p := catalog.PreconditionOf(ctx); p != nil && !p.Matches(a.CID) {
		return artmesh.E(artmesh.PreconditionFailed, fmt.Sprintf(
			"artifact %s is at version %d (ETag \"%s\"), which If-Match does not name: read it again, then retry", a.ID, a.Version, a.CID))
	}
	return nil
}

type contentDigestKey struct{}

// WithContentDigest returns ctx declaring the SHA-256 of the content the
// write under it sends (Content-Digest, x-amz-checksum-sha256): the node
// computes the digest as it reads the content and refuses other content
// with ChecksumMismatch, recording nothing.
func WithContentDigest(ctx context.Context, sum [32]byte) context.Context {
	return context.WithValue(ctx, contentDigestKey{}, sum)
}

// contentDigestOf returns the digest ctx declares, if it does.
func contentDigestOf(ctx context.Context) ([32]byte, bool) {
	sum, ok := ctx.Value(contentDigestKey{}).([32]byte)
	return sum, ok
}
