package artmesh

import (
	"fmt"
)

// Unlimited, as a limit of a Quota, means no limit.
const Unlimited = -1

// Quota is a set of limits on what one agent may hold. In an agent's own
// quota (an override) a zero field means "the mesh default" and Unlimited
// means no limit; in the mesh defaults a zero field means no limit. The
// limits that apply to an agent (Limits) are always Unlimited or positive.
type Quota struct {
	// Bytes bounds the agent's stored bytes plus its staged bytes: the
	// sizes of the live versions of the artifacts it owns and the declared
	// sizes of its open uploads.
	Bytes int64 `json:"bytes,omitempty"`
	// Staged bounds the declared sizes of the agent's open uploads.
	Staged int64 `json:"staged,omitempty"`
	// Uploads bounds how many open uploads the agent has.
	Uploads int64 `json:"uploads,omitempty"`
	// Streams bounds how many event streams the agent holds open on one
	// node.
	Streams int64 `json:"streams,omitempty"`
}

// IsZero reports whether every field of q is zero.
func (q Quota) IsZero() bool { return q == Quota{} }

// Validate reports whether every field is Unlimited, zero or positive.
func (q Quota) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"bytes", q.Bytes}, {"staged", q.Staged}, {"uploads", q.Uploads}, {"streams", q.Streams}} {
		if f.v < Unlimited {
			return E(Invalid, fmt.Sprintf("quota %s must be positive, 0 (the default) or -1 (unlimited), not %d", f.name, f.v))
		}
	}
	return nil
}

// Or returns q with each zero field taken from d.
func (q Quota) Or(d Quota) Quota {
	or := func(a, b int64) int64 {
		if a != 0 {
			return a
		}
		return b
	}
	return Quota{
		Bytes:   or(q.Bytes, d.Bytes),
		Staged:  or(q.Staged, d.Staged),
		Uploads: or(q.Uploads, d.Uploads),
		Streams: or(q.Streams, d.Streams),
	}
}

// Limits returns the limits that apply to an agent whose own quota is
// override, given the mesh defaults: the override's fields, else Unlimited
// for an admin, else the defaults' fields; a zero left over is Unlimited.
func Limits(override, defaults Quota, admin bool) Quota {
	base := defaults
	if admin {
		base = Quota{Bytes: Unlimited, Staged: Unlimited, Uploads: Unlimited, Streams: Unlimited}
	}
	l := override.Or(base)
	return l.Or(Quota{Bytes: Unlimited, Staged: Unlimited, Uploads: Unlimited, Streams: Unlimited})
}

// Usage is what one agent holds, as quotas count it.
type Usage struct {
	// Bytes is the sum of the sizes of the live versions of the artifacts
	// the agent owns (a deleted version stops counting when it is deleted,
	// not when its blocks are collected).
	Bytes int64 `json:"bytes"`
	// Staged is the sum of the declared sizes of the agent's open uploads
	// (received but not confirmed ones included), counted from creation.
	Staged int64 `json:"staged"`
	// Uploads is how many open uploads the agent has.
	Uploads int64 `json:"uploads"`
	// Streams is how many event streams the agent holds open on the node
	// that answered.
	Streams int64 `json:"streams"`
}

// QuotaStatus is an agent's usage with the limits that apply to it.
type QuotaStatus struct {
	Agent AgentID `json:"agent"`
	Admin bool    `json:"admin"`
	Usage Usage   `json:"usage"`
	// Limits are the limits that apply: positive, or Unlimited.
	Limits Quota `json:"limits"`
	// Override is the agent's own quota (0: the default; Unlimited).
	Override Quota `json:"override"`
	// Defaults are the mesh defaults for agents that are not admins (0:
	// no limit).
	Defaults Quota `json:"defaults"`
}

// Within reports whether n is within limit (Unlimited or non-positive:
// always).
func Within(n, limit int64) bool { return limit <= 0 || n <= limit }
