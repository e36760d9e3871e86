package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// sniffLen is how much of a download is looked at to tell text from
// binary before it is written to a terminal.
const sniffLen = 8 << 10

func (c *cli) getCmd() *cobra.Command {
	var out string
	var version int
	var force bool
	cmd := &cobra.Command{
		Use:   "get ID|NAME",
		Short: "Download an artifact's content to stdout or a file",
		Long: `Download an artifact's content to stdout, or with -o to a file.

The artifact is an id (art_...), or a name that exactly one of the artifacts you own
or were given has (a name several have is an error that lists their ids).

To stdout: content that looks binary (a NUL byte or invalid UTF-8 in its
first 8 KiB) is refused when stdout is a terminal, as curl does; -o -
writes it anyway, and a pipe or a redirect always gets it.

To a file: -o FILE, or -o DIR (an existing folder, or a path ending in /)
for DIR/<artifact name>. An existing file is never overwritten without
--force. Missing folders on the way are created. The bytes go to
FILE.part (with FILE.part.json recording which artifact and version they
are of), renamed to FILE only once complete and synced; a get that is
interrupted leaves FILE.part, and the next get of the same artifact to the
same FILE resumes it with a Range request. If the artifact changed since
(If-Range with the version's CID), the download starts over.`,
		Example: `  artmesh get art_01JD8X3V6Q4Z2M5N7P9R1S3T5V              # text to the terminal, or pipe it
  artmesh get report.pdf -o copy.pdf                       # by name; resumes copy.pdf.part if there is one
  artmesh get $ID -o downloads/                            # downloads/<artifact name>
  artmesh get $ID --version 1 -o v1.bin --force            # overwrite v1.bin
  artmesh get $ID -o - | sha256sum`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version < 0 {
				return usageErrorf("--version must be 1 or more")
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			id, a, err := c.resolveArtifact(cmd.Context(), api, args[0])
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				return c.getToStdout(cmd.Context(), api, id, version, out == "-")
			}
			return c.getToFile(cmd.Context(), api, id, a, version, out, force)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file (or into this folder); - for stdout, even a terminal")
	cmd.Flags().IntVar(&version, "version", 0, "the version to get (default: the current one)")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "overwrite the output file if it exists")
	return cmd
}

// resolveArtifact turns an id or a name into an artifact id. An argument
// that starts with "art_" is an id (so a name that starts so can only be
// reached by its id). Anything else is a name, looked up
// among the caller's own artifacts and those shared with it: exactly one
// must have it. The artifact is returned when a lookup found it (its zero
// value for an id).
func (c *cli) resolveArtifact(ctx context.Context, api *client.Client, arg string) (artmesh.ArtifactID, artmesh.Artifact, error) {
	if strings.HasPrefix(arg, artmesh.ArtifactPrefix) {
		return artmesh.ArtifactID(arg), artmesh.Artifact{}, nil
	}
	var found []artmesh.Artifact
	seen := map[artmesh.ArtifactID]bool{}
	for _, list := range []func(context.Context, artmesh.Filter) (artmesh.Page[artmesh.Artifact], error){api.ListArtifacts, api.ListShared} {
		page, err := list(ctx, artmesh.Filter{Name: arg, Limit: artmesh.MaxListLimit})
		if err != nil {
			return "", artmesh.Artifact{}, err
		}
		for _, a := range page.Items {
			if !seen[a.ID] {
				seen[a.ID] = true
				found = append(found, a)
			}
		}
	}
	switch len(found) {
	case 0:
		return "", artmesh.Artifact{}, artmesh.E(artmesh.NotFound, fmt.Sprintf("no artifact has the id or name %q", arg))
	case 1:
		return found[0].ID, found[0], nil
	}
	ids := make([]string, len(found))
	for i, a := range found {
		ids[i] = string(a.ID)
	}
	return "", artmesh.Artifact{}, artmesh.E(artmesh.Invalid,
		fmt.Sprintf("%d artifacts are named %q: give one of their ids: %s", len(found), arg, strings.Join(ids, ", ")))
}

// artifactArg returns the artifact that a command's ID|NAME argument
// names: an id as it is, or the one artifact (yours or shared with you)
// that has the name; a name no artifact or several have is an error that
// says so (exit 3 or 2).
func (c *cli) artifactArg(ctx context.Context, api *client.Client, arg string) (artmesh.ArtifactID, error) {
	id, _, err := c.resolveArtifact(ctx, api, arg)
	return id, err
}

// getToStdout streams the content to stdout, refusing binary content on a
// terminal unless forced.
func (c *cli) getToStdout(ctx context.Context, api *client.Client, id artmesh.ArtifactID, version int, force bool) error {
	ct, err := api.Download(ctx, id, client.DownloadOptions{Version: version})
	if err != nil {
		return err
	}
	defer ct.Body.Close()
	var body io.Reader = ct.Body
	if c.stdoutTTY && !force {
		br := bufio.NewReaderSize(ct.Body, sniffLen)
		head, _ := br.Peek(sniffLen)
		if looksBinary(head, len(head) < sniffLen) {
			return artmesh.E(artmesh.Invalid, fmt.Sprintf(
				"%s is binary (%s, %s): not writing it to a terminal; give -o FILE, or -o - to write it anyway",
				id, orDash(ct.ContentType), artmesh.FormatBytes(ct.Size)))
		}
		body = br
	}
	p := c.newProgress(ct.Size, "get "+string(id))
	err = copyExact(c.stdout, p.reader(body), ct.Size)
	p.done(err)
	return err
}

// looksBinary reports whether head, the start of some content (all of it
// when whole), holds a NUL byte or is not UTF-8. A rune cut off at the end
// of a partial head does not count.
func looksBinary(head []byte, whole bool) bool {
	if strings.IndexByte(string(head), 0) >= 0 {
		return true
	}
	if !whole {
		// Drop a rune that the sniff window cut in two.
		for i := 0; i < utf8.UTFMax && len(head) > 0; i++ {
			if r, _ := utf8.DecodeLastRune(head); r != utf8.RuneError {
				break
			}
			head = head[:len(head)-1]
		}
	}
	return !utf8.Valid(head)
}

// partInfo is FILE.part.json: what FILE.part holds the start of.
type partInfo struct {
	ArtifactID artmesh.ArtifactID `json:"artifact_id"`
	Version    int                `json:"version"` // the version asked for; 0 for the current one
	CID        string             `json:"cid"`     // the CID of the version the bytes are of
}

// getToFile downloads into out (a file, or a folder for the artifact's
// name), through out.part, resuming an earlier out.part of the same
// artifact.
func (c *cli) getToFile(ctx context.Context, api *client.Client, id artmesh.ArtifactID, a artmesh.Artifact, version int, out string, force bool) error {
	target := out
	if st, err := os.Stat(out); (err == nil && st.IsDir()) || strings.HasSuffix(out, "/") || strings.HasSuffix(out, string(filepath.Separator)) {
		if a.ID == "" {
			if a, err = api.Artifact(ctx, id); err != nil {
				return err
			}
		}
		dir := strings.TrimRightFunc(out, func(r rune) bool { return r == '/' || r == filepath.Separator })
		if dir == "" {
			dir = string(filepath.Separator)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fileError{fmt.Errorf("creating the folder %s: %w", dir, err)}
		}
		target = outputPath(dir, a.Name, string(id))
	}
	if st, err := os.Stat(target); err == nil {
		if st.IsDir() {
			return artmesh.E(artmesh.Invalid, fmt.Sprintf("%s is a folder", target))
		}
		if !force {
			return artmesh.E(artmesh.Conflict, fmt.Sprintf("%s exists: give --force to overwrite it", target))
		}
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fileError{fmt.Errorf("creating the folder for %s: %w", target, err)}
	}
	part, infoPath := target+".part", target+".part.json"

	// Resume what an earlier get of the same artifact and version left.
	var offset int64
	var prev partInfo
	if data, err := os.ReadFile(infoPath); err == nil && json.Unmarshal(data, &prev) == nil &&
		prev.ArtifactID == id && prev.Version == version && prev.CID != "" {
		if st, err := os.Stat(part); err == nil && st.Mode().IsRegular() {
			offset = st.Size()
		}
	}
	opt := client.DownloadOptions{Version: version}
	if offset > 0 {
		opt.Offset, opt.IfRange = offset, prev.CID
	}
	ct, err := api.Download(ctx, id, opt)
	if offset > 0 && errors.Is(err, artmesh.RangeNotSatisfiable) {
		// The part is as long as the content or longer: start over.
		offset, opt.Offset, opt.IfRange = 0, 0, ""
		ct, err = api.Download(ctx, id, opt)
	}
	if err != nil {
		return err
	}
	defer ct.Body.Close()
	if !ct.Partial || ct.Offset != offset {
		offset = 0 // the whole content came: the part was of another version
	}
	total := ct.Size
	if offset > 0 {
		total = ct.TotalSize
	}
	info, _ := json.Marshal(partInfo{ArtifactID: id, Version: version, CID: ct.CID})
	if err := writeSynced(infoPath, info); err != nil {
		return fileError{err}
	}
	flags := os.O_WRONLY | os.O_CREATE
	if offset == 0 {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return fileError{err}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return fileError{err}
	}
	if offset > 0 {
		fmt.Fprintf(c.stderr, "resuming %s at byte %d of %d\n", part, offset, total)
	}
	p := c.newProgress(total, "get "+string(id))
	p.set(offset)
	n, err := io.Copy(f, p.reader(ct.Body))
	if err == nil && ct.Size >= 0 && n != ct.Size {
		err = fmt.Errorf("%w: %d of %d bytes", errShort, offset+n, total)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	p.done(err)
	if err != nil {
		return fmt.Errorf("download of %s stopped after %d bytes (run the same get again to resume %s): %w", target, offset+n, part, err)
	}
	if !force {
		if _, err := os.Lstat(target); err == nil {
			return artmesh.E(artmesh.Conflict, fmt.Sprintf("%s appeared while downloading: give --force to overwrite it (the content is in %s)", target, part))
		}
	}
	if err := os.Rename(part, target); err != nil {
		return fileError{fmt.Errorf("saving %s: %w", target, err)}
	}
	os.Remove(infoPath)
	return nil
}

// writeSynced writes data to path and syncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
