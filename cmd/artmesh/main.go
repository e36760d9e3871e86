// Command artmesh runs an artmesh node (init, daemon) and is the command
// line client of the node's HTTP API (put, get, ls, share, url, agent,
// group, ...). The client commands talk to the local node through the typed
// client in api/client.
//
// The CLI finds its node by itself: the API URL is --api, else
// $ARTMESH_API, else the address in the repo ($ARTMESH_PATH, default
// ~/.artmesh), else http://127.0.0.1:7480; the API key is
// $ARTMESH_API_KEY, else <repo>/api.key.
//
// Errors print as "artmesh: ..." on stderr, or with --json as the API's
// error shape {"error":{"code":"...","message":"..."}} on stderr (stdout
// stays for data). The exit status tells scripts what went wrong, after
// kubectl's and gh's habit of a few stable codes:
//
//	0  success
//	1  any other error (conflict, expired, a failed download, ...)
//	2  usage or invalid input: a bad flag or argument, an input file that cannot be read, or the API's invalid_argument
//	3  not found (the API's not_found; also a name that matches no artifact)
//	4  permission denied or unauthenticated (the API's permission_denied, unauthenticated)
//	5  unavailable: the node cannot be reached, or answers unavailable (no quorum, catching up)
//	   or outcome_unknown (a write that may or may not have taken effect)
//	130 interrupted (Ctrl-C; 143 for SIGTERM): 128 + the signal's number, as shells report it
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
	"github.com/artmesh/artmesh/api/client"
)

func main() {
	// The first SIGINT or SIGTERM cancels the command, which then exits
	// with 128 + the signal's number, as shells report a command killed by
	// it (130 for Ctrl-C); after it, a second one kills as usual.
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			cancel(interrupted{s})
		case <-done:
		}
	}()
	c := &cli{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv:    os.Getenv,
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
	}
	code := c.run(ctx, os.Args[1:])
	close(done)
	cancel(nil)
	os.Exit(code)
}

// interrupted is the cause of a command's end by a signal.
type interrupted struct{ sig os.Signal }

func (i interrupted) Error() string { return "interrupted by " + i.sig.String() }

// code is the exit status for a command ended by the signal: 128 + its
// number (130 for SIGINT, 143 for SIGTERM).
func (i interrupted) code() int {
	if s, ok := i.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 128 + int(syscall.SIGINT)
}

// inputError is a file named on the command line that cannot be used as
// input (missing, unreadable, a folder): invalid input, exit 2, without
// the pointer to --help that a usage error adds.
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

// cli is one run of the command: its streams, environment, global flags
// and, once a command needs it, the API client.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	stderrTTY      bool // whether progress bars may be drawn on stderr
	stdoutTTY      bool // whether stdout is a terminal (get refuses to write binary there)
	// sleep waits between retries; nil means a real timer (tests make it
	// instant).
	sleep func(context.Context, time.Duration) error

	apiFlag string // --api
	jsonOut bool   // --json
	quiet   bool   // -q: print ids only

	api       *client.Client
	apiURL    string // the API base URL, once found
	keySource string // where the API key came from, for messages
}

// usageError is a mistake in how the command was called: it exits with
// status 2 and a pointer to --help.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// usageErrorf returns a usageError with a formatted message.
func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// run executes the command line args and returns the exit status.
func (c *cli) run(ctx context.Context, args []string) int {
	root := c.newRootCmd()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	code := exitCode(err)
	var sig interrupted
	if errors.As(context.Cause(ctx), &sig) {
		code = sig.code()
	}
	if c.jsonOut {
		_ = printJSON(c.stderr, apitype.ErrorBody{Error: apitype.ErrorDetail{Code: errorCode(err), Message: c.describe(err)}})
		return code
	}
	fmt.Fprintf(c.stderr, "artmesh: %s\n", c.describe(err))
	var ue usageError
	if errors.As(err, &ue) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(c.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// The exit statuses of the command; see the package comment.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitPermission  = 4
	exitUnavailable = 5
)

// exitCode returns the exit status for err.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.As(err, new(inputError)):
		return exitUsage
	case errors.Is(err, client.ErrUnreachable):
		return exitUnavailable
	case errors.Is(err, context.Canceled):
		return exitError
	}
	switch artmesh.KindOf(err) {
	case artmesh.Invalid:
		return exitUsage
	case artmesh.NotFound:
		return exitNotFound
	case artmesh.PermissionDenied, artmesh.Unauthenticated:
		return exitPermission
	case artmesh.Unavailable, artmesh.OutcomeUnknown:
		return exitUnavailable
	}
	return exitError
}

// errorCode returns the API error code that names err's kind under
// --json: the API's own code for an API error, invalid_argument for a
// usage error, unavailable for a node that cannot be reached, internal
// for anything else.
func errorCode(err error) string {
	var ue usageError
	var ce *client.Error
	switch {
	case errors.As(err, &ue), errors.As(err, new(inputError)):
		return artmesh.Invalid.String()
	case errors.Is(err, client.ErrUnreachable):
		return artmesh.Unavailable.String()
	case errors.As(err, &ce) && ce.Code != "":
		return ce.Code
	}
	return artmesh.KindOf(err).String()
}

// describe returns the message to show a person for err.
func (c *cli) describe(err error) string {
	var ce *client.Error
	switch {
	case errors.Is(err, client.ErrUnreachable):
		return fmt.Sprintf("cannot reach the artmesh node at %s: is `artmesh daemon` (or `make run`) running?", c.apiURL)
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &ce):
		if ce.Kind() == artmesh.Unauthenticated && c.keySource != "" {
			return fmt.Sprintf("%s (the API key came from %s)", ce.Message, c.keySource)
		}
		return ce.Message
	}
	var ae *artmesh.Error
	if errors.As(err, &ae) && error(ae) == err {
		return artmesh.Message(err)
	}
	return err.Error()
}

// client returns the API client, finding the node and the key on first use.
func (c *cli) client() (*client.Client, error) {
	if c.api != nil {
		return c.api, nil
	}
	repo := repoDir(c.getenv)
	u, err := apiURL(c.apiFlag, c.getenv, repo)
	if err != nil {
		if c.apiFlag != "" {
			return nil, usageError{err}
		}
		return nil, err
	}
	c.apiURL = u
	key, source, err := apiKey(c.getenv, repo)
	if err != nil {
		return nil, err
	}
	c.keySource = source
	c.api = client.New(u, key, client.WithUserAgent("artmesh-cli/1"))
	return c.api, nil
}

// newRootCmd builds the whole command tree.
func (c *cli) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "artmesh",
		Short: "A peer-to-peer, content-addressed artifact mesh for AI agents",
		Long: `artmesh runs a node (init, daemon) and talks to it (every other command).

The client commands find the node by themselves: the API URL is --api, else
$ARTMESH_API, else the repo's configured address ($ARTMESH_PATH, default
~/.artmesh), else http://127.0.0.1:7480. The API key is $ARTMESH_API_KEY,
else <repo>/api.key.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE:          groupRunE,
	}
	// Before the completion command is made: it keeps the writer it finds.
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.Version = buildVersion().String()
	root.SetVersionTemplate("{{.Version}}")
	root.Flags().Bool("version", false, "print the version (as the version command does)")
	pf := root.PersistentFlags()
	pf.StringVar(&c.apiFlag, "api", "", "the node's API URL (default: $ARTMESH_API, else the repo's address, else http://127.0.0.1:7480)")
	pf.BoolVar(&c.jsonOut, "json", false, "print the API's JSON instead of text (errors too, on stderr)")
	pf.BoolVarP(&c.quiet, "quiet", "q", false, "print only ids (artifact ids, agent ids, peer ids), one a line")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(newInitCmd(), newDaemonCmd())
	root.AddCommand(c.artifactCmds()...)
	root.AddCommand(c.sharingCmds()...)
	root.AddCommand(c.agentCmd(), c.groupCmd(), c.repoCmd(), c.nodeCmd())
	root.AddCommand(c.meshCmds()...)
	root.AddCommand(c.watchCmd())
	root.AddCommand(c.mcpCmd())
	root.AddCommand(c.versionCmd())
	c.setupCompletion(root)
	addExamples(root)
	markUsageErrors(root)
	return root
}

// groupRunE runs a command that only groups subcommands: without
// arguments it shows help, with an unknown one it is a usage error.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageErrorf("%s", msg)
}

// markUsageErrors makes the argument checks of every command return
// usage errors.
func markUsageErrors(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		markUsageErrors(sub)
	}
}
