package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/catalog"
)

// Quotas. The catalog counts what each agent stores and stages and how
// many uploads it has open, and re-checks those limits when it applies a
// write; the node checks them first, before it reads a byte of a body or
// mints an upload's token. Event streams are counted here, per node: an
// agent may hold its Streams limit on each node of the mesh.

// byteRoom checks that content of size bytes (negative: unknown) fits in
// owner's byte quota, and returns the bytes the quota leaves for content
// of unknown size (negative: no limit).
func (n *Node) byteRoom(owner artmesh.AgentID, size int64) (int64, error) {
	st, err := n.cat.QuotaStatus(owner)
	if err != nil {
		return 0, fmt.Errorf("quota of %s: %w", owner, err)
	}
	if size >= 0 {
		if err := catalog.CheckBytes(st, size); err != nil {
			return 0, err
		}
	}
	if st.Limits.Bytes <= 0 {
		return -1, nil
	}
	return max(0, st.Limits.Bytes-st.Usage.Bytes-st.Usage.Staged), nil
}

// checkUploadQuota refuses an upload of size bytes that would take owner
// over its limits.
func (n *Node) checkUploadQuota(owner artmesh.AgentID, size int64) error {
	st, err := n.cat.QuotaStatus(owner)
	if err != nil {
		return fmt.Errorf("quota of %s: %w", owner, err)
	}
	return catalog.CheckUpload(st, size)
}

// Quota returns an agent's usage and limits; its Streams usage is that of
// this node. An agent may see its own; mesh admins and node agents (who
// list the agents) anyone's.
func (n *Node) Quota(_ context.Context, caller artmesh.Agent, id artmesh.AgentID) (artmesh.QuotaStatus, error) {
	if id != caller.ID && !caller.ManagesAgents() {
		return artmesh.QuotaStatus{}, artmesh.E(artmesh.PermissionDenied, "only a mesh admin or a node's agent may see another agent's quota")
	}
	st, err := n.cat.QuotaStatus(id)
	if err != nil {
		return artmesh.QuotaStatus{}, err
	}
	st.Usage.Streams = n.feeds.count(id)
	return st, nil
}

// SetQuota sets an agent's own quota: a zero field follows the mesh
// default, artmesh.Unlimited lifts the limit. Only admins may.
func (n *Node) SetQuota(ctx context.Context, caller artmesh.Agent, id artmesh.AgentID, q artmesh.Quota) (artmesh.QuotaStatus, error) {
	if err := requireAdmin(caller, "set quotas"); err != nil {
		return artmesh.QuotaStatus{}, err
	}
	if err := q.Validate(); err != nil {
		return artmesh.QuotaStatus{}, err
	}
	if _, err := n.cat.SetQuota(ctx, id, q); err != nil {
		return artmesh.QuotaStatus{}, err
	}
	return n.Quota(ctx, caller, id)
}

// QuotaDefaults returns the mesh defaults of the quotas of agents that
// are not admins (0: no limit). Any agent may read them.
func (n *Node) QuotaDefaults(_ context.Context, _ artmesh.Agent) (artmesh.Quota, error) {
	return n.cat.QuotaDefaults()
}

// SetQuotaDefaults sets the mesh defaults of the quotas of agents that
// are not admins (0: no limit). Only admins may.
func (n *Node) SetQuotaDefaults(ctx context.Context, caller artmesh.Agent, q artmesh.Quota) (artmesh.Quota, error) {
	if err := requireAdmin(caller, "change the mesh quota defaults"); err != nil {
		return artmesh.Quota{}, err
	}
	if err := q.Validate(); err != nil {
		return artmesh.Quota{}, err
	}
	return n.cat.SetQuotaDefaults(ctx, q)
}

// OpenStream counts an event stream of caller on this node, or refuses it
// (TooMany) when caller holds its Streams limit already. Call release when
// the stream ends.
func (n *Node) OpenStream(caller artmesh.Agent) (release func(), err error) {
	st, err := n.cat.QuotaStatus(caller.ID)
	if err != nil {
		return nil, fmt.Errorf("quota of %s: %w", caller.ID, err)
	}
	if !n.feeds.acquire(caller.ID, st.Limits.Streams) {
		return nil, artmesh.E(artmesh.TooMany, fmt.Sprintf(
			"agent %s holds %d event streams on this node, its limit; close one first", caller.ID, st.Limits.Streams))
	}
	var once sync.Once
	return func() { once.Do(func() { n.feeds.release(caller.ID) }) }, nil
}

// streamCounts counts the open event streams of each agent. Its zero
// value is ready.
type streamCounts struct {
	mu sync.Mutex
	m  map[artmesh.AgentID]int64
}

// acquire counts one more stream of agent unless it holds limit already
// (limit Unlimited or non-positive: no limit).
func (s *streamCounts) acquire(agent artmesh.AgentID, limit int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit > 0 && s.m[agent] >= limit {
		return false
	}
	if s.m == nil {
		s.m = make(map[artmesh.AgentID]int64)
	}
	s.m[agent]++
	return true
}

// release counts one stream of agent fewer.
func (s *streamCounts) release(agent artmesh.AgentID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[agent]--; s.m[agent] <= 0 {
		delete(s.m, agent)
	}
}

// count returns how many streams agent holds.
func (s *streamCounts) count(agent artmesh.AgentID) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[agent]
}
