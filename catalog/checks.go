package catalog

import (
	"github.com/artmesh/artmesh"
)

// The input rules of commands (ids, names, required fields): checked by
// the node that proposes a command and again by the leader for every
// write a follower forwards, before it reaches the log, so that a member
// cannot put a write into the catalog that its own checks would refuse.
// They are deliberately not checked in Apply: a rule made stricter later
// would then change what an old log entry does when it is applied again,
// and replicas would drift apart.

// checker is a command with input rules.
type checker interface{ check() error }

func (cmd CreateArtifact) check() error {
	const op = artmesh.Op("catalog.CreateArtifact")
	switch {
	case !artmesh.ValidArtifactID(string(cmd.ID)):
		return invalid(op, "%q is not an artifact id", cmd.ID)
	case cmd.CID == "":
		return invalid(op, "the content's CID is required")
	case cmd.SizeBytes < 0:
		return invalid(op, "size must not be negative")
	case cmd.Owner == "":
		return invalid(op, "the owner is required")
	}
	if err := artmesh.ValidateArtifactName(cmd.Name); err != nil {
		return artmesh.E(op, err)
	}
	return nil
}

func (cmd AddVersion) check() error {
	const op = artmesh.Op("catalog.AddVersion")
	switch {
	case !artmesh.ValidArtifactID(string(cmd.ArtifactID)):
		return errorf(op, artmesh.NotFound, "artifact %s not found", cmd.ArtifactID)
	case cmd.CID == "":
		return invalid(op, "the content's CID is required")
	case cmd.SizeBytes < 0:
		return invalid(op, "size must not be negative")
	case cmd.By == "":
		return invalid(op, "the agent making the version is required")
	}
	return nil
}

func (cmd CreateAgent) check() error {
	const op = artmesh.Op("catalog.CreateAgent")
	if err := artmesh.ValidateAgentID(string(cmd.Agent.ID)); err != nil {
		return artmesh.E(op, err)
	}
	for _, g := range cmd.Agent.Groups {
		if err := artmesh.ValidateGroupName(g); err != nil {
			return artmesh.E(op, err)
		}
	}
	return nil
}

func (cmd putGroupCmd) check() error {
	if err := artmesh.ValidateGroupName(cmd.Name); err != nil {
		return artmesh.E(artmesh.Op("catalog.PutGroup"), err)
	}
	return nil
}

func (cmd putFetchingCmd) check() error {
	const op = artmesh.Op("catalog.PutFetching")
	if len(cmd.Rows) > maxFetchingRows {
		return invalid(op, "at most %d fetching rows are put at once", maxFetchingRows)
	}
	for _, r := range cmd.Rows {
		if r.CID == "" || r.Peer == "" || r.Seen.IsZero() {
			return invalid(op, "a fetching row needs a CID, a peer and a time")
		}
	}
	return nil
}

// checkForwarded applies checkEntry to an entry that decodes (see
// validateEntry), turning a panic into an Invalid error.
func checkForwarded(entry []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = invalid("catalog.ApplyForwarded", "malformed catalog entry: %v", r)
		}
	}()
	return checkEntry(entry)
}

// checkEntry applies the input rules of the command in a log entry (the
// write an envelope carries, for a forwarded one). An entry that does not
// decode is an error wrapping errMalformedEntry.
func checkEntry(entry []byte) error {
	if len(entry) == 0 {
		return malformed(0, "empty log entry")
	}
	t, payload := commandType(entry[0]), entry[1:]
	if t == forwardedType {
		_, _, inner, err := unwrapForwarded(payload)
		if err != nil {
			return err
		}
		return checkEntry(inner)
	}
	if t == keyedType {
		_, inner, err := unwrapKeyed(payload)
		if err != nil {
			return err
		}
		return checkEntry(inner)
	}
	if t == conditionalType {
		_, inner, err := unwrapConditional(payload)
		if err != nil {
			return err
		}
		return checkEntry(inner)
	}
	var c checker
	var err error
	switch t {
	case createArtifactType:
		c, err = decodeChecker[CreateArtifact](t, payload)
	case addVersionType:
		c, err = decodeChecker[AddVersion](t, payload)
	case createAgentType:
		c, err = decodeChecker[CreateAgent](t, payload)
	case putGroupType:
		c, err = decodeChecker[putGroupCmd](t, payload)
	case putFetchingType:
		c, err = decodeChecker[putFetchingCmd](t, payload)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	return c.check()
}

// decodeChecker decodes a command with input rules.
func decodeChecker[T checker](t commandType, payload []byte) (checker, error) {
	cmd, err := decode[T](t, payload)
	return cmd, err
}
