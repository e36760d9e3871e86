package membership

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/artmesh/artmesh"
)

// The limits on join attempts that a node takes from peers that are not
// members. A real joiner asks each member of its ticket once, and retries
// a few times at most (a wrong ticket, a leader change): one attempt a
// second with a burst of 3 per peer refuses none of that. Together, peers
// may try 20 times a second with a burst of 40: more joins at once than
// any mesh brings up, while a stranger's flood of bogus secrets costs the
// node at most that many parses, hashes and catalog reads a second (and
// no Raft entry: see checkJoin).
const (
	joinPeerRate   rate.Limit = 1
	joinPeerBurst             = 3
	joinTotalRate  rate.Limit = 20
	joinTotalBurst            = 40
	// joinMaxPeers bounds the peers whose limiter is kept. A limiter
	// left alone for joinPeerIdle is full again, the same as a new one,
	// and is dropped first when room is needed.
	joinMaxPeers = 1024
	// joinBanAfter is how many attempts in a row over its own limit a
	// peer makes before it is cut off and banned for joinBan: an honest
	// joiner retries a few times, a flood does not stop.
	joinBanAfter = 10
	joinBan      = time.Minute
	joinPeerIdle = time.Duration(joinPeerBurst) * time.Second / time.Duration(joinPeerRate)
)

// joinLimiter limits join attempts per peer and in total. Its methods are
// safe for concurrent use.
type joinLimiter struct {
	mu    sync.Mutex
	total *rate.Limiter
	peers map[peer.ID]*peerLimit
}

// peerLimit is one peer's limiter and when it last tried.
type peerLimit struct {
	lim     *rate.Limiter
	last    time.Time
	strikes int // attempts in a row refused by its own limit
}

func newJoinLimiter() *joinLimiter {
	return &joinLimiter{
		total: rate.NewLimiter(joinTotalRate, joinTotalBurst),
		peers: make(map[peer.ID]*peerLimit),
	}
}

// errTooManyJoins is the answer to a join attempt over a limit.
var errTooManyJoins = artmesh.E(artmesh.Unavailable, "join refused: too many join attempts; retry in a few seconds")

// allow takes one attempt of p at now, or returns why it is refused: p's
// own limit first, so that a peer over it uses up none of the total. ban
// is true when p has now gone over its own limit joinBanAfter times in a
// row.
func (l *joinLimiter) allow(p peer.ID, now time.Time) (ban bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl, ok := l.peers[p]
	if !ok {
		if len(l.peers) >= joinMaxPeers {
			for id, x := range l.peers {
				if now.Sub(x.last) >= joinPeerIdle {
					delete(l.peers, id)
				}
			}
		}
		if len(l.peers) >= joinMaxPeers {
			// Every kept peer tried within joinPeerIdle: dropping one
			// would reset its limit.
			return false, errTooManyJoins
		}
		pl = &peerLimit{lim: rate.NewLimiter(joinPeerRate, joinPeerBurst)}
		l.peers[p] = pl
	}
	pl.last = now
	if !pl.lim.AllowN(now, 1) {
		pl.strikes++
		return pl.strikes >= joinBanAfter, errTooManyJoins
	}
	pl.strikes = 0
	if !l.total.AllowN(now, 1) {
		return false, errTooManyJoins
	}
	return false, nil
}
