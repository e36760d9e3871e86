package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/mesh"
)

// The catalog over the mesh: writes forwarded to the leader, consistent
// reads through the leader's read index, and the raw stream measurement.
// Membership (join, members, invites, voters) is node/membership's.

// forward is the catalog's way to the leader.
func (n *Node) forward(ctx context.Context, leader raft.ServerAddress, req catalog.ForwardRequest) (catalog.ForwardResult, error) {
	id, err := peer.Decode(string(leader))
	if err != nil {
		return catalog.ForwardResult{}, fmt.Errorf("node: leader address %q: %w", leader, err)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return catalog.ForwardResult{}, fmt.Errorf("node: encode a forwarded write: %w", err)
	}
	resp, err := mesh.Call(ctx, n.host, id, mesh.ApplyProtocol, body)
	var re *mesh.RemoteError
	if errors.As(err, &re) && re.Kind == artmesh.Invalid && strings.Contains(re.Message, "unknown catalog entry type") {
		// A leader of the previous version (a rolling upgrade) reads
		// the request's first byte as an entry type: it takes the bare
		// entry, and checks no credential.
		resp, err = mesh.Call(ctx, n.host, id, mesh.ApplyProtocol, req.Entry)
	}
	if err != nil {
		switch {
		case errors.As(err, &re) && re.Kind != artmesh.Other:
			// The leader's own answer: a refusal of the write for what it
			// is (malformed, too large), Unavailable (it did not take
			// it), or OutcomeUnknown (it took it, and lost the answer).
			return catalog.ForwardResult{}, artmesh.E(re.Kind, re.Message, err)
		case errors.Is(err, mesh.ErrNotSent):
			return catalog.ForwardResult{}, artmesh.E(artmesh.Unavailable, "the catalog leader could not be reached", err)
		}
		// Sent, and no answer: the leader may have taken it.
		return catalog.ForwardResult{}, artmesh.E(artmesh.OutcomeUnknown, "the catalog leader did not answer the write", err)
	}
	var res catalog.ForwardResult
	if err := json.Unmarshal(resp, &res); err != nil {
		return catalog.ForwardResult{}, fmt.Errorf("node: leader's answer: %w", err)
	}
	return res, nil
}

// serveApply takes writes forwarded by followers: a JSON
// catalog.ForwardRequest, the write and the credential of the agent it
// acts for.
func (n *Node) serveApply(ctx context.Context, from peer.ID, data []byte) ([]byte, error) {
	var req catalog.ForwardRequest
	switch {
	case len(data) > 0 && data[0] != '{':
		// A node of the previous version sends the bare entry, with no
		// credential: its own rows still pass, its agents' writes are
		// refused until it is upgraded.
		req.Entry = data
	case json.Unmarshal(data, &req) != nil || len(req.Entry) == 0:
		return nil, artmesh.E(artmesh.Invalid, "malformed forwarded write")
	}
	res, err := n.cat.ApplyForwarded(ctx, from.String(), req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// WithCredential returns ctx carrying the API key an agent presented, so
// that the catalog writes made for it under ctx carry it to the leader,
// which checks it again (see catalog.Credential).
func WithCredential(ctx context.Context, apiKey string) context.Context {
	return catalog.WithCredential(ctx, catalog.Credential{APIKey: apiKey})
}

// authenticateForwarded is the leader's check of the credential that came
// with a forwarded write (catalog.Config.Authenticate), by its own
// committed state: an API key, or an upload URL's write token, which may
// write to its upload only.
func (n *Node) authenticateForwarded(_ context.Context, c catalog.Credential) (catalog.Principal, error) {
	if c.APIKey != "" {
		a, err := n.agentByKey(c.APIKey)
		return catalog.Principal{Agent: a}, err
	}
	claims, granter, err := n.verifyTokenOnce(c.Token, acl.ActionWrite)
	if err != nil {
		return catalog.Principal{}, err
	}
	return catalog.Principal{Agent: granter, Upload: claims.Target}, nil
}

// callLeader sends a request to the catalog's leader over protocol proto.
func (n *Node) callLeader(ctx context.Context, proto protocol.ID, req []byte) ([]byte, error) {
	addr, _ := n.cat.Raft().LeaderWithID()
	if addr == "" {
		return nil, artmesh.E(artmesh.Unavailable, "the mesh has no catalog leader now; try again")
	}
	leader, err := peer.Decode(string(addr))
	if err != nil {
		return nil, fmt.Errorf("node: leader address %q: %w", addr, err)
	}
	return mesh.Call(ctx, n.host, leader, proto, req)
}

// catchUp brings this node's catalog up to every write the leader has
// acknowledged, waiting at most two seconds, and reports whether it did.
// Lookups that miss call it before they answer "not found", so that an id,
// key or token made on another node a moment ago works here at once.
//
// A miss costs a round trip to the leader, so misses are rate-limited
// (missRate a second, missBurst at once): past that, a lookup that
// misses answers "not found" at once. Someone trying unknown keys in a
// loop cannot make the leader answer for each.
func (n *Node) catchUp(ctx context.Context) bool {
	if n.host == nil || !n.missLimit.Allow() {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return n.Consistent(ctx) == nil
}

// missRate and missBurst bound the catch-ups of lookups that miss.
const (
	missRate  = 50
	missBurst = 100
)

// ReadIndexProtocol asks the leader for an index that covers every
// acknowledged write, for a consistent read.
const ReadIndexProtocol protocol.ID = "/artmesh/read-index/1.0.0"

// serveReadIndex answers a member's ReadIndexProtocol call, and makes
// sure the member hears of that commit at once: it waits to apply it.
func (n *Node) serveReadIndex(ctx context.Context, from peer.ID, _ []byte) ([]byte, error) {
	idx, err := n.cat.ReadIndexFor(ctx, from.String())
	if err != nil {
		return nil, err
	}
	return json.Marshal(idx)
}

// Consistent makes the next reads linearizable: it waits until this node
// has applied every write the leader acknowledged before the call.
func (n *Node) Consistent(ctx context.Context) error {
	var idx uint64
	if n.cat.IsLeader() {
		i, err := n.cat.ReadIndex(ctx)
		if err != nil {
			return err
		}
		idx = i
	} else {
		resp, err := n.callLeader(ctx, ReadIndexProtocol, nil)
		if err != nil {
			return artmesh.E(artmesh.Unavailable, "the leader did not answer a consistent read", err)
		}
		if err := json.Unmarshal(resp, &idx); err != nil {
			return fmt.Errorf("node: read index: %w", err)
		}
	}
	return n.cat.WaitApplied(ctx, idx)
}

// StreamBench is a measurement of one raw stream from a member.
type StreamBench struct {
	PeerID         string  `json:"peer_id"`
	Bytes          uint64  `json:"bytes"`
	Seconds        float64 `json:"seconds"`
	BytesPerSecond float64 `json:"bytes_per_second"`
}

// MeasureStream receives bytes from a member over one raw libp2p stream,
// the yardstick for content transfer. Only admins may.
func (n *Node) MeasureStream(ctx context.Context, caller artmesh.Agent, peerID string, bytes uint64) (StreamBench, error) {
	if !caller.ManagesNode(n.peerID.String()) {
		return StreamBench{}, artmesh.E(artmesh.PermissionDenied, "only a mesh admin or this node's agent may measure the mesh")
	}
	id, err := peer.Decode(peerID)
	if err != nil {
		return StreamBench{}, artmesh.E(artmesh.Invalid, fmt.Sprintf("%q is not a peer id", peerID))
	}
	d, err := mesh.MeasureStream(ctx, n.host, id, bytes)
	if err != nil {
		return StreamBench{}, artmesh.E(artmesh.Unavailable, "measuring the stream", err)
	}
	return StreamBench{PeerID: peerID, Bytes: bytes, Seconds: d.Seconds(), BytesPerSecond: float64(bytes) / d.Seconds()}, nil
}
