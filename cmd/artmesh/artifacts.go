package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// maxSnippetArg is the most a snippet read from stdin may hold.
const maxSnippetArg = 64 << 20

// artifactCmds returns the commands on artifacts: put, upload, snippet,
// get, info, ls, shared, versions, update, rm.
func (c *cli) artifactCmds() []*cobra.Command {
	return []*cobra.Command{
		c.putCmd(), c.uploadCmd(), c.uploadsCmd(), c.snippetCmd(), c.getCmd(), c.infoCmd(), c.lsCmd(false), c.lsCmd(true),
		c.versionsCmd(), c.updateCmd(), c.rmCmd(),
	}
}

// printArtifactOut prints an artifact as JSON, as text, or with -q as its
// id alone.
func (c *cli) printArtifactOut(a artmesh.Artifact) error {
	if c.quiet && !c.jsonOut {
		_, err := fmt.Fprintln(c.stdout, a.ID)
		return err
	}
	if c.jsonOut {
		return printJSON(c.stdout, a)
	}
	return printArtifact(c.stdout, a)
}

func (c *cli) putCmd() *cobra.Command {
	var name, typ string
	var meta []string
	var replicas int
	var another bool
	var w writeFlags
	cmd := &cobra.Command{
		Use:   "put FILE",
		Short: "Store a file as a new artifact (FILE - reads stdin)",
		Long: `Store a file as a new artifact and print it, its id on the first line.

The name defaults to the file's base name, the type to the one its
extension suggests (else application/octet-stream). --meta KEY=VALUE sets
metadata KEY to the string VALUE (ver=1.0 is "1.0"); --meta KEY:=JSON to a
JSON value (year:=2025 is a number, tags:='["a","b"]' an array), as httpie
does. --replicas N answers only once N members hold the content (the write
fails, recording nothing, when they cannot). -q prints the id alone.

put refuses a name you already own an artifact of (exit 1), and says how
to add a version to it instead (artmesh update); --new stores another
artifact of the same name. The check is atomic (the create carries
If-None-Match: *), so two puts of one name at once make one artifact.`,
		Example: `  artmesh put report.pdf --meta quarter=Q4 --meta year:=2025
  ID=$(artmesh put -q weights.bin --replicas 2)
  tar c data/ | artmesh put - --name data.tar --type application/x-tar`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if err := checkReplicas(replicas); err != nil {
				return err
			}
			if name == "" {
				if path == "-" {
					return usageErrorf("give the artifact a --name when reading stdin")
				}
				name = filepath.Base(path)
			}
			if typ == "" {
				typ = contentTypeFor(name)
			}
			m, err := parseMeta(meta)
			if err != nil {
				return err
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			in, size, err := openInput(path, c.stdin)
			if err != nil {
				return err
			}
			defer in.Close()
			if !another {
				// Before the bytes go: a name in use is refused at once.
				if err := c.nameFree(cmd.Context(), api, name); err != nil {
					return err
				}
				w.ifNoneMatch = true
			}
			ctx, err := digestInput(w.ctx(cmd.Context()), in)
			if err != nil {
				return err
			}
			p := c.newProgress(size, "put "+name)
			a, err := api.CreateArtifact(ctx, p.reader(in), client.CreateOptions{Name: name, ContentType: typ, Metadata: m, Size: size, Replicas: replicas})
			p.done(err)
			if !another && errors.Is(err, artmesh.PreconditionFailed) {
				// Taken between the check and the create.
				if nerr := c.nameFree(cmd.Context(), api, name); nerr != nil {
					return nerr
				}
			}
			if err != nil {
				return err
			}
			return c.printArtifactOut(a)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the artifact's name (default: the file's base name)")
	cmd.Flags().StringVar(&typ, "type", "", "the content type (default: from the name's extension)")
	cmd.Flags().StringArrayVar(&meta, "meta", nil, "metadata KEY=VALUE (a string) or KEY:=JSON (a typed value); repeatable")
	cmd.Flags().BoolVar(&another, "new", false, "store a new artifact even if you own one of this name already")
	replicasFlag(cmd, &replicas)
	w.flags(cmd, true)
	return cmd
}

// nameFree returns nil if the caller owns no artifact called name, and
// otherwise a Conflict error that names it and says what to do instead.
func (c *cli) nameFree(ctx context.Context, api *client.Client, name string) error {
	page, err := api.ListArtifacts(ctx, artmesh.Filter{Name: name, Limit: 1})
	if err != nil {
		return err
	}
	if len(page.Items) == 0 {
		return nil
	}
	id := page.Items[0].ID
	return artmesh.E(artmesh.Conflict, fmt.Sprintf("you already own an artifact named %q (%s): 'artmesh update %s FILE' adds a version to it; 'artmesh put --new' stores another artifact of that name", name, id, id))
}

func (c *cli) snippetCmd() *cobra.Command {
	var meta []string
	var replicas int
	var w writeFlags
	cmd := &cobra.Command{
		Use:   "snippet NAME [JSON]",
		Short: "Store a JSON value as a new application/json artifact (without JSON, or with -, reads stdin)",
		Example: `  artmesh snippet config.json '{"lr": 0.001, "layers": [1, 2, 3]}'
  jq .params run.json | artmesh snippet params.json
  artmesh snippet labels.json - --meta split=train < labels.json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkReplicas(replicas); err != nil {
				return err
			}
			if len(args) == 1 {
				args = append(args, "-")
			}
			data := []byte(args[1])
			if args[1] == "-" {
				var err error
				if data, err = io.ReadAll(io.LimitReader(c.stdin, maxSnippetArg+1)); err != nil {
					return fmt.Errorf("reading stdin: %w", err)
				}
				if len(data) > maxSnippetArg {
					return fmt.Errorf("the snippet on stdin is over %s: store it with put", artmesh.FormatBytes(maxSnippetArg))
				}
			}
			if !json.Valid(data) {
				return usageErrorf("the snippet is not valid JSON")
			}
			m, err := parseMeta(meta)
			if err != nil {
				return err
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			a, err := api.CreateSnippet(w.ctx(cmd.Context()), args[0], json.RawMessage(data), m, client.Replicas(replicas))
			if err != nil {
				return err
			}
			return c.printArtifactOut(a)
		},
	}
	cmd.Flags().StringArrayVar(&meta, "meta", nil, "metadata KEY=VALUE (a string) or KEY:=JSON (a typed value); repeatable")
	replicasFlag(cmd, &replicas)
	w.flags(cmd, true)
	return cmd
}

func (c *cli) infoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info ID|NAME",
		Short: "Show an artifact (by id, or by a name only one artifact has)",
		Example: `  artmesh info art_01JD8X3V6Q4Z2M5N7P9R1S3T5V
  artmesh info report.pdf --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			id, _, err := c.resolveArtifact(cmd.Context(), api, args[0])
			if err != nil {
				return err
			}
			a, err := api.Artifact(cmd.Context(), id)
			if err != nil {
				return err
			}
			return c.printArtifactOut(a)
		},
	}
}

// filterFlags are the listing flags of ls and shared.
type filterFlags struct {
	typ, name     string
	meta          []string
	limit, offset int
	cursor        string
	all           bool
}

func (f *filterFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.typ, "type", "", "only this content type")
	fl.StringVar(&f.name, "name", "", "only artifacts with this name")
	fl.StringArrayVar(&f.meta, "meta", nil, "only artifacts whose metadata KEY is VALUE (repeatable; all must match)")
	fl.IntVar(&f.limit, "limit", 0, fmt.Sprintf("at most this many (default %d, at most %d)", artmesh.DefaultListLimit, artmesh.MaxListLimit))
	fl.StringVar(&f.cursor, "cursor", "", "continue after the previous page (the cursor it printed)")
	fl.IntVar(&f.offset, "offset", 0, "skip this many first (costs what it skips: prefer --cursor)")
	fl.BoolVar(&f.all, "all", false, "every match: follow the cursors, --limit at a time")
}

func (f *filterFlags) filter() (artmesh.Filter, error) {
	if f.limit < 0 || f.limit > artmesh.MaxListLimit {
		return artmesh.Filter{}, usageErrorf("--limit must be from 1 to %d", artmesh.MaxListLimit)
	}
	if f.offset < 0 {
		return artmesh.Filter{}, usageErrorf("--offset must not be negative")
	}
	if f.cursor != "" && f.offset > 0 {
		return artmesh.Filter{}, usageErrorf("give --cursor or --offset, not both")
	}
	mm, err := parseMetaFilter(f.meta)
	if err != nil {
		return artmesh.Filter{}, err
	}
	return artmesh.Filter{ContentType: f.typ, Name: f.name, Meta: mm, Limit: f.limit, Offset: f.offset, Cursor: f.cursor}, nil
}

// lsCmd is `ls` (the caller's own artifacts) or, with shared, `shared`.
func (c *cli) lsCmd(shared bool) *cobra.Command {
	var ff filterFlags
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List your artifacts, newest first",
		Example: `  artmesh ls
  artmesh ls --meta quarter=Q4 --type application/pdf
  artmesh ls --limit 10 --cursor $CURSOR
  artmesh ls --all -q --meta run=42
  artmesh ls -q --name report.pdf | xargs -n1 artmesh rm`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := ff.filter()
			if err != nil {
				return err
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			list := api.ListArtifacts
			if shared {
				list = api.ListShared
			}
			var page artmesh.Page[artmesh.Artifact]
			if ff.all {
				all := api.AllArtifacts
				if shared {
					all = api.AllShared
				}
				page.Items = []artmesh.Artifact{}
				for a, err := range all(cmd.Context(), f) {
					if err != nil {
						return err
					}
					page.Items = append(page.Items, a)
				}
				page.Limit, page.Offset = len(page.Items), f.Offset
			} else if page, err = list(cmd.Context(), f); err != nil {
				return err
			}
			if page.Items == nil {
				page.Items = []artmesh.Artifact{}
			}
			if c.jsonOut {
				return printJSON(c.stdout, page)
			}
			return c.printPage(page, shared)
		},
	}
	if shared {
		cmd.Use, cmd.Short = "shared", "List the artifacts shared with you, directly or through a group"
		cmd.Example = `  artmesh shared
  artmesh shared --name results.json --json`
	}
	ff.add(cmd)
	return cmd
}

// printPage prints a page of artifacts as a table.
func (c *cli) printPage(p artmesh.Page[artmesh.Artifact], owner bool) error {
	if c.quiet {
		for _, a := range p.Items {
			fmt.Fprintln(c.stdout, a.ID)
		}
		return nil
	}
	if len(p.Items) == 0 {
		if p.Total != nil && *p.Total > 0 && p.Offset > 0 {
			fmt.Fprintf(c.stderr, "no artifacts at offset %d of %d\n", p.Offset, *p.Total)
		} else {
			fmt.Fprintln(c.stderr, "no artifacts")
		}
		return nil
	}
	header := []string{"ID", "NAME", "TYPE", "SIZE", "VERSION", "UPDATED"}
	if owner {
		header = []string{"ID", "NAME", "OWNER", "TYPE", "SIZE", "VERSION", "UPDATED"}
	}
	rows := make([][]string, 0, len(p.Items))
	for _, a := range p.Items {
		row := []string{string(a.ID), a.Name, orDash(a.ContentType), artmesh.FormatBytes(a.SizeBytes), strconv.Itoa(a.Version), shortTime(a.UpdatedAt)}
		if owner {
			row = append(row[:2], append([]string{string(a.Owner)}, row[2:]...)...)
		}
		rows = append(rows, row)
	}
	if err := table(c.stdout, header, rows); err != nil {
		return err
	}
	if p.NextCursor != "" {
		inAll := ""
		if p.Total != nil {
			inAll = fmt.Sprintf(" of %d", *p.Total)
		}
		fmt.Fprintf(c.stderr, "showing %d%s; next page: --cursor %s (or --all for every one)\n", len(p.Items), inAll, p.NextCursor)
	}
	return nil
}

func (c *cli) versionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "versions ID|NAME",
		Short:   "List an artifact's versions, oldest first",
		Example: "  artmesh versions $ID\n  artmesh versions $ID --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			id, err := c.artifactArg(cmd.Context(), api, args[0])
			if err != nil {
				return err
			}
			vs, err := api.Versions(cmd.Context(), id)
			if err != nil {
				return err
			}
			if c.jsonOut {
				return printJSON(c.stdout, items(vs))
			}
			rows := make([][]string, 0, len(vs))
			for _, v := range vs {
				rows = append(rows, []string{strconv.Itoa(v.Version), artmesh.FormatBytes(v.SizeBytes), orDash(v.ContentType),
					shortTime(v.CreatedAt), orDash(string(v.CreatedBy)), v.CID})
			}
			return table(c.stdout, []string{"VERSION", "SIZE", "TYPE", "CREATED", "BY", "CID"}, rows)
		},
	}
}

func (c *cli) updateCmd() *cobra.Command {
	var typ string
	var meta []string
	var replicas int
	var w writeFlags
	cmd := &cobra.Command{
		Use:   "update ID|NAME [FILE]",
		Short: "Store a file as a new version of an artifact (FILE - reads stdin), or change its metadata alone",
		Long: `Store a file as a new version of an artifact and print the artifact.
Without FILE, --meta changes the metadata alone: a new version with the
current content (no bytes sent; PATCH /v1/artifacts/{id}).

--type sets the new version's content type; without it the current type is
kept. --meta KEY=VALUE (a string) or KEY:=JSON (a typed value) is merged
into the artifact's metadata (KEY:=null removes KEY). --replicas N answers
only once N members hold the new version (the update fails, recording
nothing, when they cannot).`,
		Example: `  artmesh update $ID report.pdf --meta status=final
  artmesh update $ID - --type text/csv --meta draft:=null < table.csv
  artmesh update report.pdf --meta reviewed:=true     # the metadata alone`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkReplicas(replicas); err != nil {
				return err
			}
			m, err := parseMeta(meta)
			if err != nil {
				return err
			}
			if len(args) == 1 && len(m) == 0 {
				return usageErrorf("give the FILE of the new version, or --meta to change the metadata alone")
			}
			if len(args) == 1 && (typ != "" || replicas > 0) {
				return usageErrorf("--type and --replicas go with a FILE: without one, update changes the metadata alone")
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			id, err := c.artifactArg(cmd.Context(), api, args[0])
			if err != nil {
				return err
			}
			if len(args) == 1 {
				a, err := api.UpdateMetadata(w.ctx(cmd.Context()), id, m)
				if err != nil {
					return err
				}
				return c.printArtifactOut(a)
			}
			in, size, err := openInput(args[1], c.stdin)
			if err != nil {
				return err
			}
			defer in.Close()
			ctx, err := digestInput(w.ctx(cmd.Context()), in)
			if err != nil {
				return err
			}
			p := c.newProgress(size, "update "+args[0])
			a, err := api.UpdateArtifact(ctx, id, p.reader(in), client.UpdateOptions{ContentType: typ, Metadata: m, Size: size, Replicas: replicas})
			p.done(err)
			if err != nil {
				return err
			}
			return c.printArtifactOut(a)
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "the new version's content type (default: keep the current one)")
	cmd.Flags().StringArrayVar(&meta, "meta", nil, "metadata KEY=VALUE (a string) or KEY:=JSON to merge in (KEY:=null removes KEY); repeatable")
	replicasFlag(cmd, &replicas)
	w.flags(cmd, false)
	return cmd
}

func (c *cli) rmCmd() *cobra.Command {
	var version int
	var w writeFlags
	cmd := &cobra.Command{
		Use:     "rm ID|NAME",
		Short:   "Delete an artifact, or with --version one of its versions",
		Example: "  artmesh rm $ID --version 1\n  artmesh rm $ID",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("version") && version < 1 {
				return usageErrorf("--version must be 1 or more")
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			id, err := c.artifactArg(cmd.Context(), api, args[0])
			if err != nil {
				return err
			}
			if version > 0 {
				if err := api.DeleteVersion(w.ctx(cmd.Context()), id, version); err != nil {
					return err
				}
				c.say("deleted version %d of %s", version, id)
				return nil
			}
			if err := api.DeleteArtifact(w.ctx(cmd.Context()), id); err != nil {
				return err
			}
			c.say("deleted %s", id)
			return nil
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "delete only this version")
	w.flags(cmd, false)
	return cmd
}

// writeFlags are the flags every write command takes: its own idempotency
// key, and a condition on the state it changes.
type writeFlags struct {
	key         string
	ifMatch     string
	ifNoneMatch bool
}

// flags adds the flags to cmd: --if-none-match for a create, --if-match
// for a change.
func (w *writeFlags) flags(cmd *cobra.Command, create bool) {
	cmd.Flags().StringVar(&w.key, "idempotency-key", "", "the write's Idempotency-Key (default: a fresh one, which retries reuse); the same key and request take effect once")
	if create {
		cmd.Flags().BoolVar(&w.ifNoneMatch, "if-none-match", false, "create only if you own no artifact of this name yet (If-None-Match: *; else exit 1, precondition_failed)")
	} else {
		cmd.Flags().StringVar(&w.ifMatch, "if-match", "", "change only if the current version's ETag (its CID, as info shows) is this one (If-Match; else exit 1, precondition_failed)")
	}
}

// ctx returns ctx carrying the flags for the client.
func (w *writeFlags) ctx(ctx context.Context) context.Context {
	if w.key != "" {
		ctx = client.WithIdempotencyKey(ctx, w.key)
	}
	switch {
	case w.ifMatch != "":
		ctx = client.WithIfMatch(ctx, w.ifMatch)
	case w.ifNoneMatch:
		ctx = client.WithIfNoneMatch(ctx)
	}
	return ctx
}

// say prints a confirmation line in text mode; --json and -q print
// nothing for calls whose answer has no body.
func (c *cli) say(format string, args ...any) {
	if !c.jsonOut && !c.quiet {
		fmt.Fprintf(c.stdout, format+"\n", args...)
	}
}
