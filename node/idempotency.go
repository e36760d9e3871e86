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
