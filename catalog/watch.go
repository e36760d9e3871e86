package catalog

import (
	"context"
	"sync"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
)

// The catalog watch: the state machine publishes every applied index with
// the topics its commands touched, and consumers (the node's reconcilers,
// and the change feed behind GET /v1/events, node/events.go) block on it
// instead of polling. A reconciler keeps the index it last acted on, waits
// with Watch, and asks ChangedSince whether anything it cares about changed
// in between.

// Topic is a set of kinds of change, a bit each; the values are this
// process's, never stored.
type Topic uint32

// The topics of the catalog's commands.
const (
	// TopicContent: an artifact or version was created (new content to
	// place).
	TopicContent Topic = 1 << iota
	// TopicDeletes: a version or artifact was deleted (content to free).
	TopicDeletes
	// TopicGrants: shares, agents, keys or groups changed.
	TopicGrants
	// TopicUploads: an upload session or token changed.
	TopicUploads
	// TopicMembers: a member or invite changed.
	TopicMembers
	// TopicPlacement: holders or allocations changed.
	TopicPlacement
	// TopicPins: a pin was added or removed.
	TopicPins
	// TopicPolicy: the mesh policy or an artifact's replication factor
	// changed.
	TopicPolicy
	// TopicReleases: something may no longer be kept somewhere: a holder
	// record or allocation given up, a pin removed, a member gone.
	TopicReleases
	// TopicFetching: a member started, renewed or ended a fetch that
	// serves others.
	TopicFetching

	// TopicAll is every topic: what a snapshot restore changes.
	TopicAll Topic = 1<<iota - 1
)

// topicOf returns the topic of a command type.
func topicOf(t commandType) Topic {
	switch t {
	case createArtifactType, addVersionType:
		return TopicContent | TopicPlacement
	case deleteVersionType, deleteArtifactType:
		return TopicDeletes | TopicPlacement | TopicPins
	case shareType, unshareType, createAgentType, deleteAgentType, setAgentKeyType, putGroupType, deleteGroupType, setQuotaType:
		return TopicGrants
	case createUploadType, issueTokenType, revokeTokenType, purgeTokensType:
		return TopicUploads
	case uploadReceivedType:
		return TopicUploads | TopicPlacement
	case confirmUploadType:
		return TopicUploads | TopicContent | TopicPlacement
	case deleteUploadType, expireUploadsType:
		return TopicUploads | TopicDeletes
	case putMemberType, createInviteType, consumeInviteType:
		return TopicMembers
	case deleteMemberType:
		return TopicMembers | TopicPlacement | TopicPins | TopicReleases
	case addHolderType:
		return TopicPlacement
	case removeHolderType, updatePlacementType:
		return TopicPlacement | TopicReleases
	case putPinType:
		return TopicPins
	case deletePinType:
		return TopicPins | TopicReleases
	case setPolicyType, setReplicationType:
		return TopicPolicy
	case putFetchingType, dropFetchingType:
		return TopicFetching
	case noopType:
		return 0
	}
	return TopicAll
}

// historySize is how many applied batches the watch remembers; a consumer
// further behind is told that everything may have changed.
const historySize = 4096

// change is one applied batch: the last index it applied, its topics and
// the root CIDs whose versions, placement or pins it changed.
type change struct {
	index  uint64
	topics Topic
	cids   []string
}

// watch publishes applied indexes. Its zero value is not usable: see
// newWatch.
type watch struct {
	mu      sync.Mutex
	index   uint64
	next    chan struct{} // closed at the next publish
	history []change      // a ring of the last historySize batches
	head    int           // where the next change goes
	filled  bool
	// floor is the lowest index whose changes are known: ChangedSince an
	// index below it answers true.
	floor uint64
}

func newWatch() *watch {
	return &watch{next: make(chan struct{}), history: make([]change, historySize)}
}

// publish records that index was applied with topics and wakes waiters.
func (w *watch) publish(index uint64, topics Topic, cids []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.filled {
		// The oldest entry is overwritten: what it knew is now unknown.
		w.floor = w.history[w.head].index
	}
	w.history[w.head] = change{index: index, topics: topics, cids: cids}
	w.head = (w.head + 1) % len(w.history)
	if w.head == 0 {
		w.filled = true
	}
	w.index = index
	close(w.next)
	w.next = make(chan struct{})
}

// reset forgets the history (after a restore): any earlier index may have
// seen any change.
func (w *watch) reset(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.floor = index
	w.head, w.filled = 0, false
	clear(w.history)
	w.index = index
	close(w.next)
	w.next = make(chan struct{})
}

func (w *watch) current() (uint64, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.index, w.next
}

func (w *watch) changedSince(after uint64, topics Topic) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if after >= w.index {
		return false
	}
	if after < w.floor {
		return true
	}
	n := len(w.history)
	for i := 1; i <= n; i++ {
		c := w.history[(w.head-i+n)%n]
		if c.index == 0 || c.index <= after {
			break
		}
		if c.topics&topics != 0 {
			return true
		}
	}
	return false
}

func (w *watch) changedCIDs(after uint64) ([]string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if after >= w.index {
		return nil, true
	}
	if after < w.floor {
		return nil, false
	}
	seen := make(map[string]struct{})
	var out []string
	n := len(w.history)
	for i := 1; i <= n; i++ {
		c := w.history[(w.head-i+n)%n]
		if c.index == 0 || c.index <= after {
			break
		}
		for _, cid := range c.cids {
			if _, ok := seen[cid]; !ok {
				seen[cid] = struct{}{}
				out = append(out, cid)
			}
		}
	}
	return out, true
}

// ChangedCIDs returns the root CIDs whose versions, placement or pins
// changed after index, so that a reconciler can look at those alone. ok
// is false when the watch no longer remembers that far back (or a
// snapshot was restored since): then the consumer must look at all.
func (c *Catalog) ChangedCIDs(index uint64) (cids []string, ok bool) {
	return c.fsm.watch.changedCIDs(index)
}

// Watch returns the index the local state has applied and a channel that
// is closed once a later index is applied. It is how reconcilers wait for
// committed state without polling.
func (c *Catalog) Watch() (uint64, <-chan struct{}) { return c.fsm.watch.current() }

// ChangedSince reports whether a command of one of topics was applied
// after index. It answers true when the watch no longer remembers that far
// back (or a snapshot was restored since), so a consumer never misses a
// change.
func (c *Catalog) ChangedSince(index uint64, topics Topic) bool {
	return c.fsm.watch.changedSince(index, topics)
}

// WaitApplied waits until the local state has applied index.
func (c *Catalog) WaitApplied(ctx context.Context, index uint64) error {
	return c.waitApplied(ctx, "catalog.WaitApplied", index)
}

// waitApplied waits until the local state machine has applied index.
func (c *Catalog) waitApplied(ctx context.Context, op artmesh.Op, index uint64) error {
	for {
		applied, next := c.Watch()
		if applied >= index {
			return nil
		}
		if c.isClosed() {
			return unavailable(op, raft.ErrRaftShutdown)
		}
		select {
		case <-ctx.Done():
			return artmesh.E(op, artmesh.Unavailable, "the write was applied by the leader but not yet here", ctx.Err())
		case <-next:
		case <-c.shutdownCh:
			return unavailable(op, raft.ErrRaftShutdown)
		}
	}
}
