package artmesh

// Right is something an agent may do to an artifact.
type Right uint8

// The rights. The owner of an artifact holds all of them; an agent it is
// shared with, directly or through a group, holds Read.
const (
	Read   Right = iota + 1 // get, download, list versions, make a signed URL
	Write                   // update into a new version, delete a version
	Share                   // share, unshare, see the access list
	Delete                  // delete the artifact
)

// String names the right.
func (r Right) String() string {
	switch r {
	case Read:
		return "read"
	case Write:
		return "write"
	case Share:
		return "share"
	case Delete:
		return "delete"
	}
	return "unknown"
}
