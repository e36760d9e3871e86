package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/acl"
	"github.com/artmesh/artmesh/catalog"
)

// Token lifetimes, as S3 has them for presigned URLs.
const (
	DefaultTokenTTL = time.Hour
	MaxTokenTTL     = 7 * 24 * time.Hour
	// DefaultTokenSkew is the clock difference between nodes that the
	// verification of another node's tokens allows. A node holds the
	// tokens it issued to their expiry exactly: its clock timed them.
	DefaultTokenSkew = 30 * time.Second
)

// SignedURL is a freshly issued read token.
type SignedURL struct {
	Token     string    `json:"token"`
	TokenID   string    `json:"token_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// APIURL is the base URL of this node's HTTP API: where it was told to
// listen, or where it really listens once SetAPIListenAddr says so. The
// URLs that carry tokens are built from it, never from a request's Host.
func (n *Node) APIURL() string { return n.apiURL.Load().(string) }

// ttl checks a requested lifetime in seconds (0: the default).
func ttl(seconds int64, def time.Duration) (time.Duration, error) {
	if seconds == 0 {
		return def, nil
	}
	if seconds < 0 || seconds > int64(MaxTokenTTL/time.Second) {
		return 0, artmesh.E(artmesh.Invalid, fmt.Sprintf("expires_in must be from 1 to %d seconds", int64(MaxTokenTTL/time.Second)))
	}
	return time.Duration(seconds) * time.Second, nil
}

// mint signs a token and records it in the catalog, so that it can be
// revoked by id; a token the catalog does not know is refused. The record
// names the granting agent's incarnation (its CreatedAt), to which the
// token is bound.
func (n *Node) mint(ctx context.Context, c acl.Claims) (string, error) {
	const op = artmesh.Op("node.mint")
	granter, err := n.cat.Agent(c.Agent)
	if err != nil {
		return "", artmesh.E(op, err)
	}
	c.ID = acl.NewTokenID()
	tok, err := acl.Mint(c, n.key)
	if err != nil {
		return "", artmesh.E(op, err)
	}
	rec := catalog.Token{ID: c.ID.String(), Agent: c.Agent, AgentCreatedAt: granter.CreatedAt, Target: c.Target, Version: c.Version,
		ExpiresAt: c.Expires, Issuer: n.peerID.String(), Action: c.Action.String()}
	mine := keyUnused(ctx)
	if err := n.cat.IssueToken(ctx, rec); err != nil {
		return "", err
	}
	if err := replayedSecret(ctx, mine, "issued a token", "ask again with a new Idempotency-Key"); err != nil {
		return "", err
	}
	return tok, nil
}

// CreateSignedURL issues a read token for an artifact (a version of it, or
// the current one when version is 0) that caller may read. The token
// carries caller's right: it stops working when caller loses it, and a
// right granted again later does not bring it back (see grantStands).
func (n *Node) CreateSignedURL(ctx context.Context, caller artmesh.Agent, id artmesh.ArtifactID, expiresIn int64, version int) (SignedURL, error) {
	if _, err := n.readable(caller, id); err != nil {
		return SignedURL{}, err
	}
	life, err := ttl(expiresIn, DefaultTokenTTL)
	if err != nil {
		return SignedURL{}, err
	}
	if version < 0 {
		return SignedURL{}, artmesh.E(artmesh.Invalid, "version must be a whole number from 1")
	}
	if version > 0 {
		if _, err := n.cat.Version(id, version); err != nil {
			if errors.Is(err, artmesh.NotFound) {
				return SignedURL{}, artmesh.E(artmesh.NotFound, fmt.Sprintf("artifact %s has no version %d", id, version))
			}
			return SignedURL{}, err
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	c := acl.Claims{Action: acl.ActionRead, Agent: caller.ID, Target: string(id), Version: version, NotBefore: now, Expires: now.Add(life)}
	tok, err := n.mint(ctx, c)
	if err != nil {
		return SignedURL{}, err
	}
	parsed, _ := acl.Parse(tok)
	return SignedURL{Token: tok, TokenID: parsed.ID.String(), ExpiresAt: c.Expires}, nil
}

// verifyToken checks a token offline against this node's view of the
// mesh: signature, issuer membership, time, revocation, that the catalog
// knows it, and that the agent that granted it is still the incarnation
// that did.
func (n *Node) verifyToken(ctx context.Context, token string, action acl.Action) (acl.Claims, error) {
	c, _, err := n.verifyTokenOf(ctx, token, action)
	return c, err
}

// verifyTokenOf is verifyToken that also returns the granting agent.
func (n *Node) verifyTokenOf(ctx context.Context, token string, action acl.Action) (acl.Claims, artmesh.Agent, error) {
	if err := n.behind(); err != nil {
		return acl.Claims{}, artmesh.Agent{}, err
	}
	c, granter, err := n.verifyTokenOnce(token, action)
	if err != nil && artmesh.KindOf(err) == artmesh.Unauthenticated && n.catchUp(ctx) {
		c, granter, err = n.verifyTokenOnce(token, action)
	}
	n.metrics.observeToken(action.String(), err)
	return c, granter, err
}

func (n *Node) verifyTokenOnce(token string, action acl.Action) (acl.Claims, artmesh.Agent, error) {
	// The catalog's record of the token is read once, by the revocation
	// check, which Verify makes last.
	var rec catalog.Token
	recErr := errors.New("not looked up")
	c, err := acl.Verify(token, acl.VerifyOptions{
		Now:      time.Now(),
		Skew:     n.skew,
		Self:     string(n.peerID),
		IsMember: n.isMember,
		Revoked: func(id acl.TokenID) bool {
			rec, recErr = n.cat.Token(id.String())
			return recErr == nil && rec.Revoked
		},
	})
	if err != nil {
		return acl.Claims{}, artmesh.Agent{}, err
	}
	if recErr != nil {
		// Issued tokens are recorded before they are handed out; one the
		// catalog does not know was never issued (or was forgotten long
		// after it expired).
		return acl.Claims{}, artmesh.Agent{}, artmesh.E(artmesh.Unauthenticated, "the capability token is not known to this mesh")
	}
	if err := claimsOfRecord(c, rec); err != nil {
		return acl.Claims{}, artmesh.Agent{}, err
	}
	if c.Action != action {
		return acl.Claims{}, artmesh.Agent{}, artmesh.E(artmesh.PermissionDenied, fmt.Sprintf("this is a %s token; this route needs a %s token", c.Action, action))
	}
	granter, err := n.cat.Agent(c.Agent)
	if err != nil {
		if errors.Is(err, artmesh.NotFound) {
			return acl.Claims{}, artmesh.Agent{}, artmesh.E(artmesh.PermissionDenied, "the agent that granted this token no longer exists")
		}
		return acl.Claims{}, artmesh.Agent{}, err
	}
	if err := sameIncarnation(rec, granter); err != nil {
		return acl.Claims{}, artmesh.Agent{}, err
	}
	if err := grantStands(n.cat, rec, c); err != nil {
		return acl.Claims{}, artmesh.Agent{}, err
	}
	return c, granter, nil
}

// claimsOfRecord checks that a token's signed claims are those its
// catalog record was issued with: any member can sign a token, so one
// that signs other claims (another agent, target or action, a later
// expiry) under a recorded id is refused. Records from before the issuer
// and action were kept are checked for the rest, and those from before the
// version was kept (0, which is also a token for the current version) for
// all but the version.
func claimsOfRecord(c acl.Claims, rec catalog.Token) error {
	forged := c.Agent != rec.Agent || c.Target != rec.Target || c.Expires.After(rec.ExpiresAt) ||
		rec.Issuer != "" && peer.ID(c.Issuer).String() != rec.Issuer ||
		rec.Action != "" && c.Action.String() != rec.Action ||
		rec.Version != 0 && c.Version != rec.Version
	if forged {
		return artmesh.E(artmesh.Unauthenticated, "the capability token's claims are not those it was issued with")
	}
	return nil
}

// grantStands checks that the granting agent of a read token may still
// read its artifact through a grant that has stood since the token was
// issued: ownership, a share with it, or a share with a group together
// with its membership of that group. An unshare (or leaving the group)
// ends the token, and sharing again does not bring it back. A record
// issued before grants were checked (no IssuedIndex) passes here: such a
// token works while its agent may read the artifact now (OpenCapContent
// checks that for every token), as it did when it was issued. An
// artifact that does not exist passes too, for OpenCapContent to report.
func grantStands(cat *catalog.Catalog, rec catalog.Token, c acl.Claims) error {
	if c.Action != acl.ActionRead || rec.IssuedIndex == 0 {
		return nil
	}
	ok, err := cat.ReadGrantSince(c.Agent, artmesh.ArtifactID(c.Target), rec.IssuedIndex)
	switch {
	case errors.Is(err, artmesh.NotFound):
		return nil
	case err != nil:
		return err
	case !ok:
		return artmesh.E(artmesh.PermissionDenied, fmt.Sprintf("the grant under which agent %s issued this token to artifact %s was removed since; a new grant needs a new token", c.Agent, c.Target))
	}
	return nil
}

// sameIncarnation checks that a token was issued by agent as it is now,
// not by an earlier agent of the same id that was deleted. A record
// without the incarnation (issued before tokens were bound to one) is
// refused: tokens live at most MaxTokenTTL, so a new one is a short wait
// or one call away.
func sameIncarnation(rec catalog.Token, agent artmesh.Agent) error {
	switch {
	case rec.AgentCreatedAt.IsZero():
		return artmesh.E(artmesh.PermissionDenied, "the capability token was issued before tokens were bound to one incarnation of their agent; ask for a new one")
	case !rec.AgentCreatedAt.Equal(agent.CreatedAt):
		return artmesh.E(artmesh.PermissionDenied, fmt.Sprintf("the capability token was granted by an earlier agent %s, which was deleted", agent.ID))
	}
	return nil
}

// isMember reports whether a peer id (as bytes) is a member of the mesh:
// this node, or one the catalog lists.
func (n *Node) isMember(issuer string) bool {
	if issuer == string(n.peerID) {
		return true
	}
	_, err := n.cat.Member(peer.ID(issuer).String())
	return err == nil
}

// OpenCapContent opens the content a read token grants, checking that the
// agent that granted it still may read the artifact.
func (n *Node) OpenCapContent(ctx context.Context, token string) (*Content, error) {
	c, granter, err := n.verifyTokenOf(ctx, token, acl.ActionRead)
	if err != nil {
		return nil, err
	}
	id := artmesh.ArtifactID(c.Target)
	if _, err := n.cat.Artifact(id); err != nil {
		if errors.Is(err, artmesh.NotFound) {
			return nil, artmesh.E(artmesh.NotFound, fmt.Sprintf("artifact %s no longer exists", id))
		}
		return nil, err
	}
	if _, err := n.readable(granter, id); err != nil {
		if errors.Is(err, artmesh.NotFound) {
			return nil, artmesh.E(artmesh.PermissionDenied, fmt.Sprintf("agent %s, who granted this token, can no longer read artifact %s", c.Agent, id))
		}
		return nil, err
	}
	return n.OpenContent(ctx, granter, id, c.Version)
}

// RevokeToken revokes a token by id. The agent that granted it (the same
// incarnation: not a later agent of the same id), an admin, and, for a
// read token, the owner of its artifact may: the owner sees every signed
// URL of its artifact (SignedURLs), and could end a grantee's anyway by
// unsharing.
func (n *Node) RevokeToken(ctx context.Context, caller artmesh.Agent, tokenID string) error {
	if _, err := acl.ParseTokenID(tokenID); err != nil {
		return artmesh.E(artmesh.NotFound, fmt.Sprintf("token %s not found", tokenID))
	}
	t, err := n.cat.Token(tokenID)
	if err != nil {
		return err
	}
	granter := t.Agent == caller.ID && sameIncarnation(t, caller) == nil
	owner := false
	if t.Action != acl.ActionWrite.String() {
		if a, err := n.cat.Artifact(artmesh.ArtifactID(t.Target)); err == nil && a.Owner == caller.ID {
			owner = true
		}
	}
	if !granter && !owner && !caller.Admin {
		return artmesh.E(artmesh.PermissionDenied, "only the agent that granted a token, the owner of its artifact, or an admin, may revoke it")
	}
	return n.cat.RevokeToken(ctx, tokenID)
}

// SignedURLInfo describes one live signed URL of an artifact: never the
// token itself, which is shown only once, when it is issued.
type SignedURLInfo struct {
	TokenID    string             `json:"token_id"`
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	// Version is the version the URL serves; 0 is whichever version is
	// current when it is used.
	Version   int             `json:"version"`
	Agent     artmesh.AgentID `json:"agent"` // the agent that issued it, whose right it carries
	ExpiresAt time.Time       `json:"expires_at"`
}

// SignedURLs lists the live signed URLs of an artifact: those not
// revoked, not expired, and whose issuing agent (as the incarnation that
// issued them) still holds the grant it issued them under; newest first.
// The owner and admins see all of them, another agent that may read the
// artifact those it issued; to anyone else the artifact is NotFound.
func (n *Node) SignedURLs(_ context.Context, caller artmesh.Agent, id artmesh.ArtifactID) ([]SignedURLInfo, error) {
	a, err := n.readable(caller, id)
	all := false
	switch {
	case err == nil:
		all = a.Owner == caller.ID || caller.Admin
	case caller.Admin && errors.Is(err, artmesh.NotFound):
		// An admin may revoke any token, so it sees them all, of an
		// artifact it may not read too.
		if _, cerr := n.cat.Artifact(id); cerr != nil {
			return nil, err
		}
		all = true
	default:
		return nil, err
	}
	recs, err := n.cat.TokensFor(string(id))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(recs, func(x, y catalog.Token) int {
		if c := cmp.Compare(y.IssuedIndex, x.IssuedIndex); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	now := time.Now()
	out := []SignedURLInfo{}
	for _, t := range recs {
		if t.Revoked || !now.Before(t.ExpiresAt) || t.Action != "" && t.Action != acl.ActionRead.String() {
			continue
		}
		if !all && (t.Agent != caller.ID || sameIncarnation(t, caller) != nil) {
			continue
		}
		if !n.tokenStands(t) {
			continue
		}
		out = append(out, SignedURLInfo{TokenID: t.ID, ArtifactID: id, Version: t.Version, Agent: t.Agent, ExpiresAt: t.ExpiresAt})
	}
	return out, nil
}

// tokenStands reports whether a read token's issuing agent is still the
// incarnation that issued it and still holds the grant it issued it
// under, as verifyTokenOnce requires of a token in use.
func (n *Node) tokenStands(t catalog.Token) bool {
	granter, err := n.cat.Agent(t.Agent)
	if err != nil || sameIncarnation(t, granter) != nil {
		return false
	}
	return grantStands(n.cat, t, acl.Claims{Action: acl.ActionRead, Agent: t.Agent, Target: t.Target}) == nil
}
