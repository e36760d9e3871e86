package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh/api"
	"github.com/artmesh/artmesh/node"
	"github.com/artmesh/artmesh/node/content"
	"github.com/artmesh/artmesh/node/exchange"
	nrepo "github.com/artmesh/artmesh/node/repo"
)

// newInitCmd is `artmesh init`: create a node's repo.
func newInitCmd() *cobra.Command {
	var apiAddr, chunking, join, raftTimeout string
	var listen []string
	var voters int
	var private bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create this node's repo ($ARTMESH_PATH or ~/.artmesh): identity, catalog, admin agent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo := nrepo.DefaultPath()
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			if voters != 3 && voters != 5 {
				return fmt.Errorf("--voters must be 3 or 5")
			}
			if _, err := nrepo.ParseRaftTimeout(raftTimeout); err != nil {
				return usageError{err}
			}
			// Several nodes on one machine: unless told, take the first
			// free pair of ports from 7480/7481 on, and say so.
			given := apiAddr
			if !cmd.Flags().Changed("api") {
				given = ""
			}
			apiAddr, listen = nrepo.FreeAddrs(given, listen)
			opts := nrepo.InitOptions{APIAddr: apiAddr, Chunking: content.Chunking(chunking), Listen: listen, Voters: voters, PrivateNetwork: private, RaftTimeout: raftTimeout}
			if join != "" && private {
				return fmt.Errorf("--private-network is for a new mesh: a joining node takes the mesh's key (if it has one) from its ticket")
			}
			if join != "" {
				t, err := nrepo.ParseTicket(join)
				if err != nil {
					return err
				}
				opts.Join = t
			}
			if err := nrepo.Init(ctx, repo, opts); err != nil {
				return err
			}
			if apiAddr != nrepo.DefaultAPIAddr || len(listen) != 1 || listen[0] != nrepo.DefaultListen {
				fmt.Fprintf(cmd.OutOrStdout(), "API address %s, mesh address %s (saved in %s)\n", apiAddr, strings.Join(listen, ","), filepath.Join(repo, nrepo.ConfigFile))
			}
			if join != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "initialised artmesh repo %s to join a mesh\nstart the node with: artmesh daemon (it joins on its first start and writes its node agent's API key to %s)\n",
					repo, filepath.Join(repo, nrepo.APIKeyFile))
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "initialised artmesh repo %s\nadmin API key written to %s\nstart the node with: artmesh daemon\n",
				repo, filepath.Join(repo, nrepo.APIKeyFile))
			return nil
		},
	}
	cmd.Flags().StringVar(&apiAddr, "api", nrepo.DefaultAPIAddr, "address the HTTP API will listen on (default: the first free of 127.0.0.1:7480, :7482, ...)")
	cmd.Flags().StringVar(&raftTimeout, "raft-timeout", "", "the catalog's Raft heartbeat and election timeout, such as 3s (default 1s; 2s-5s for a small or busy machine whose leader steps down now and then)")
	cmd.Flags().StringVar(&chunking, "chunking", string(content.DefaultChunking), `how content is cut into blocks: "buzhash" or "size-N"`)
	cmd.Flags().StringVar(&join, "join", "", "an invite ticket (from 'artmesh mesh invite' on a member): make this node a member of that mesh")
	cmd.Flags().StringSliceVar(&listen, "listen", nil, "libp2p multiaddr(s) for the mesh (default: the first free of "+nrepo.DefaultListen+", tcp/7483, ...; use /ip4/0.0.0.0/tcp/7481 for a mesh across hosts)")
	cmd.Flags().BoolVar(&private, "private-network", false, "give the new mesh a private network key (a libp2p PSK) on top of TLS and admission by peer id: a peer without the key cannot even finish a handshake; costs about two thirds of the wire's throughput")
	cmd.Flags().IntVar(&voters, "voters", nrepo.DefaultVoters, "how many members vote in the catalog, 3 or 5 (a new mesh only); later members are nonvoters")
	return cmd
}

// defaultReplicateTimeout is node.Config.ReplicateTimeout's default.
const defaultReplicateTimeout = node.DefaultReplicateTimeout

// daemonFlags are the flags of `artmesh daemon`.
type daemonFlags struct {
	apiAddr, logLevel string
	logFormat         string
	raftTimeout       string
	accessLog         bool
	pprofAddr         string
	listen            []string
	initIfNeeded      bool
	skew, deadVoter   time.Duration
	deadMember        time.Duration
	deadHolder        time.Duration
	cacheSize         byteSize
	replicateTimeout  time.Duration
	scrubRate         byteSize
	scrubEvery        time.Duration
	readOpen          time.Duration
	readStall         time.Duration
	diskReserve       string
	eagerCopyMax      byteSize
}

// register defines the flags on cmd.
func (f *daemonFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.apiAddr, "api", "", "address for the HTTP API, saved in the repo's config for the next starts (default: the repo's configured address)")
	fl.StringVar(&f.raftTimeout, "raft-timeout", "", "the catalog's Raft heartbeat and election timeout, such as 3s, saved in the repo's config (default: the config's, else 1s; 2s-5s suits a small or busy machine)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text (key=value) or json (one object a line)")
	fl.BoolVar(&f.accessLog, "access-log", false, "log one line per API request at info level (tokens in paths and queries redacted, headers never logged); without it the lines are at debug level")
	fl.StringVar(&f.pprofAddr, "pprof", "", "serve Go's profiling endpoints (/debug/pprof/) on this address, such as 127.0.0.1:6060 (off by default; never on a public address)")
	fl.BoolVar(&f.initIfNeeded, "init", false, "initialise the repo first if it does not exist")
	fl.StringSliceVar(&f.listen, "listen", nil, "libp2p multiaddr(s) for the mesh, saved in the repo's config for the next starts (default: the repo's configured addresses)")
	fl.DurationVar(&f.deadVoter, "dead-voter-after", node.DefaultDeadVoterAfter, "how long a voter may be unreachable before the leader demotes it to nonvoter and gives its vote to a reachable nonvoter (it stays a member)")
	fl.DurationVar(&f.deadMember, "dead-member-after", node.DefaultDeadMemberAfter, "how long a member may be unreachable before the leader removes it from the mesh (it must then join again with a new repo and invite)")
	fl.DurationVar(&f.skew, "token-clock-skew", node.DefaultTokenSkew, "clock difference allowed when verifying capability tokens issued by other nodes (this node holds its own tokens to their expiry exactly)")
	fl.DurationVar(&f.deadHolder, "dead-holder-after", node.DefaultDeadHolderAfter, "how long a member may be unreachable before the leader allocates the copies it holds to other members")
	f.cacheSize = byteSize(node.DefaultCacheSize)
	fl.Var(&f.cacheSize, "cache-size", "how much content this node keeps that it is neither allocated nor pinned (read here, fetched from others), least recently used out first; bytes, or with a unit: 64MiB, 1GiB (0 keeps none)")
	fl.DurationVar(&f.replicateTimeout, "replicate-timeout", defaultReplicateTimeout, "how long a write with replicas=N waits for the other members to take their copies before it fails with 503")
	f.scrubRate = byteSize(node.DefaultScrubRate)
	fl.Var(&f.scrubRate, "scrub-rate", "how fast the background scrubber reads and re-hashes every block, per second; bytes, or with a unit: 16MiB (0 turns it off; 'artmesh repo verify' still checks everything)")
	fl.DurationVar(&f.scrubEvery, "scrub-every", node.DefaultScrubEvery, "how long after a scrub pass started the next one starts")
	fl.DurationVar(&f.readOpen, "read-open-timeout", node.DefaultReadOpenTimeout, "how long a download waits for the first block of content that is not on this node before it answers 503 with Retry-After")
	fl.DurationVar(&f.readStall, "read-stall-timeout", exchange.DefaultStall, "how long a download waits for a block whose fetch makes no progress before it ends the response (cut short: clients resume with Range)")
	fl.StringVar(&f.diskReserve, "disk-reserve", "", "free space that writes leave on the block store's filesystem; a write that would leave less fails with 507 insufficient_storage before it stores a byte; bytes, or with a unit: 512MiB, 1GiB (default: the smaller of 2% of the filesystem and 1GiB; 0 keeps none)")
	f.eagerCopyMax = byteSize(node.DefaultEagerCopyMax)
	fl.Var(&f.eagerCopyMax, "eager-copy-max", "writes up to this size are also pushed, during the write, to the members their replication factor asks for beyond the write's replicas, so that they have their factor when acknowledged (a member that cannot keep up is left to repair); bytes, or with a unit (0: never)")
}

// nodeConfig checks the flags and returns the node's configuration.
func (f *daemonFlags) nodeConfig(repo string, log *slog.Logger) (node.Config, error) {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--dead-holder-after", f.deadHolder}, {"--replicate-timeout", f.replicateTimeout}, {"--scrub-every", f.scrubEvery},
		{"--read-open-timeout", f.readOpen}, {"--read-stall-timeout", f.readStall},
		{"--dead-voter-after", f.deadVoter}, {"--dead-member-after", f.deadMember}} {
		if d.v <= 0 {
			return node.Config{}, usageErrorf("%s must be a duration above 0, such as 30s or 5m", d.name)
		}
	}
	skew := f.skew
	if skew == 0 {
		skew = -1 // node.Config: negative means none
	}
	scrub := int64(f.scrubRate)
	if scrub == 0 {
		scrub = -1 // node.Config: negative turns the scrubber off, zero is the default
	}
	cache := int64(f.cacheSize)
	if cache == 0 {
		cache = -1 // node.Config: negative keeps none, zero is the default
	}
	var reserve int64 // node.Config: zero is the default
	if f.diskReserve != "" {
		var b byteSize
		if err := b.Set(f.diskReserve); err != nil {
			return node.Config{}, usageErrorf("--disk-reserve: %v", err)
		}
		if reserve = int64(b); reserve == 0 {
			reserve = -1 // node.Config: negative keeps none
		}
	}
	eager := int64(f.eagerCopyMax)
	if eager == 0 {
		eager = -1 // node.Config: negative turns extra copies off, zero is the default
	}
	return node.Config{
		Repo: repo, APIAddr: f.apiAddr, Logger: log, TokenSkew: skew, Listen: f.listen,
		DeadVoterAfter: f.deadVoter, DeadMemberAfter: f.deadMember, DeadHolderAfter: f.deadHolder, CacheSize: cache, ReplicateTimeout: f.replicateTimeout,
		ScrubRate: scrub, ScrubEvery: f.scrubEvery, ReadOpenTimeout: f.readOpen, ReadStallTimeout: f.readStall,
		DiskReserve:  reserve,
		EagerCopyMax: eager,
	}, nil
}

// logger builds the daemon's logger on w from --log-level and
// --log-format.
func (f *daemonFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageErrorf("--log-level %q: use debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f.logFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("--log-format %q: use text or json", f.logFormat)
}

// newDaemonCmd is `artmesh daemon`: run the node in the foreground.
func newDaemonCmd() *cobra.Command {
	return newDaemonCmdFlags(&daemonFlags{})
}

func newDaemonCmdFlags(f *daemonFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the node in the foreground until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := f.logger(os.Stderr)
			if err != nil {
				return err
			}
			repo := nrepo.DefaultPath()
			cfg, err := f.nodeConfig(repo, log)
			if err != nil {
				return err
			}
			tuneGC()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if f.initIfNeeded && !nrepo.Exists(repo) {
				if err := nrepo.Init(ctx, repo, nrepo.InitOptions{APIAddr: f.apiAddr, Listen: f.listen}); err != nil {
					return err
				}
				log.Info("initialised repo", "repo", repo, "api_key_file", filepath.Join(repo, nrepo.APIKeyFile))
			}
			if _, err := nrepo.ParseRaftTimeout(f.raftTimeout); err != nil {
				return usageError{err}
			}
			rc, err := nrepo.ReadConfig(repo)
			if err != nil {
				return err
			}
			// Take the API's port before the node starts (and joins a mesh,
			// which records the API's URL): a port in use fails here, with
			// that said, instead of after a join.
			addr := cmp.Or(cfg.APIAddr, rc.APIAddr)
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("cannot listen on %s for the API (is another node running? choose another port with --api, which is saved for the next starts): %w", addr, err)
			}
			defer l.Close()
			cfg.APIAddr = l.Addr().String()
			listen := rc.Listen
			if len(cfg.Listen) > 0 {
				listen = cfg.Listen
			}
			if err := checkMeshPorts(listen); err != nil {
				return err
			}
			// Flags that say where the node listens, and how patient its
			// Raft is, are saved: the next start needs none of them.
			if f.apiAddr != "" || len(f.listen) > 0 || f.raftTimeout != "" {
				if err := nrepo.UpdateConfig(repo, func(rc *nrepo.Config) {
					if f.apiAddr != "" {
						rc.APIAddr = f.apiAddr
					}
					if len(f.listen) > 0 {
						rc.Listen = f.listen
					}
					if f.raftTimeout != "" {
						rc.RaftTimeout = f.raftTimeout
					}
				}); err != nil {
					return err
				}
			}
			n, err := node.Open(ctx, cfg)
			if err != nil {
				return err
			}
			defer n.Close()
			// Tell scripts and tests where the API really listens (the
			// address may have been :0).
			addrFile := filepath.Join(repo, nrepo.APIAddrFile)
			if err := os.WriteFile(addrFile, []byte(l.Addr().String()+"\n"), 0o600); err != nil {
				l.Close()
				return fmt.Errorf("write %s: %w", addrFile, err)
			}
			defer os.Remove(addrFile)
			n.SetAPIListenAddr(l.Addr().String())
			if f.pprofAddr != "" {
				stopProf, err := servePprof(f.pprofAddr, log)
				if err != nil {
					l.Close()
					return err
				}
				defer stopProf()
			}
			info := n.Info()
			log.Info("artmesh node running", "peer_id", info.PeerID, "api", "http://"+l.Addr().String(), "repo", repo)
			fmt.Fprintf(cmd.OutOrStdout(), "artmesh node %s\nAPI: http://%s\nweb view: http://%s/ui/\nAPI key: %s\nrepo: %s\n",
				info.PeerID, l.Addr(), l.Addr(), filepath.Join(repo, nrepo.APIKeyFile), repo)
			var apiOpts []api.Option
			if f.accessLog {
				apiOpts = append(apiOpts, api.WithAccessLog())
			}
			err = api.New(n, log, apiOpts...).Serve(ctx, l, 10*time.Second)
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			log.Info("artmesh node stopping")
			if cerr := n.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
	f.register(cmd)
	return cmd
}

// checkMeshPorts checks that the TCP ports of the mesh's listen addresses
// are free, so that a node whose port another process holds says so in
// one line (libp2p would log its own errors first).
func checkMeshPorts(listen []string) error {
	for _, a := range listen {
		ma, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return usageErrorf("--listen %q: %v", a, err)
		}
		ip, err := ma.ValueForProtocol(multiaddr.P_IP4)
		if err != nil {
			if ip, err = ma.ValueForProtocol(multiaddr.P_IP6); err != nil {
				continue
			}
		}
		port, err := ma.ValueForProtocol(multiaddr.P_TCP)
		if err != nil || port == "0" {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			return fmt.Errorf("cannot listen on %s for the mesh (is another node running? choose another with --listen, which is saved for the next starts): %w", a, err)
		}
		l.Close()
	}
	return nil
}

// tuneGC trades memory for throughput unless the operator chose: every
// block of a download or upload is a fresh 128-512 KiB buffer, and with
// Go's default GOGC=100 the collector runs so often on a small heap that
// it costs a third of a download's speed. GOGC=400 keeps a small node
// under about 100 MiB resident; the soft limit of 1 GiB makes the
// collector work harder only when a large catalog brings the heap near
// it. (A limit close to the working set made the collector run without
// pause once the catalog held 100,000 artifacts.)
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}

// servePprof serves net/http/pprof's handlers on addr until the returned
// stop is called.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server", "err", err)
		}
	}()
	log.Info("serving profiles", "addr", "http://"+l.Addr().String()+"/debug/pprof/")
	return func() { srv.Close(); <-done }, nil
}
