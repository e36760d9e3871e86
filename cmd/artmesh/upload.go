package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/client"
)

// Retries of a broken upload: up to uploadRetries times in a row without
// progress, waiting uploadBackoff, then twice as long each time, at most
// uploadMaxBackoff.
const (
	uploadRetries    = 5
	uploadBackoff    = 500 * time.Millisecond
	uploadMaxBackoff = 8 * time.Second
)

func (c *cli) uploadCmd() *cobra.Command {
	var name, typ, artifact, resume string
	var meta []string
	var replicas int
	var restart bool
	cmd := &cobra.Command{
		Use:   "upload FILE",
		Short: "Store a file through an upload URL, resuming after interruptions",
		Long: `Store a file through an upload URL and print the artifact, its id on the
first line.

The upload declares the file's size, sends its bytes to the upload URL and,
when the connection breaks or the node answers with a server error, asks
the node how much it holds and resumes from there (up to 5 times in a row
without progress, waiting longer each time). Then it confirms the upload
with the SHA-256 of the file, which the node checks before it creates the
artifact.

--artifact ID makes the upload a new version of that artifact (its name and
type are kept unless --name or --type are given). --meta KEY=VALUE sets
metadata as put does.

Run the same command again to continue an upload that was interrupted
(Ctrl-C, a lost connection, a restarted node): the upload's Idempotency-Key
is derived from the file (its path, size and modification time) and the
flags, so the node answers with the same upload, and only the bytes it does
not hold are sent. --restart starts a new upload instead. 'artmesh uploads'
lists your unconfirmed uploads, 'artmesh uploads abort ID' drops one.

--resume UPLOAD_URL FILE continues an upload that was started elsewhere
(its URL, token included, is printed when an upload fails) and confirms it.

--replicas N is applied at the confirm: the artifact is created only once N
members hold the content. When they cannot, the confirm fails and the
upload stays received: confirm it again with --resume once enough members
are reachable.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if err := checkReplicas(replicas); err != nil {
				return err
			}
			if resume != "" && (name != "" || typ != "" || artifact != "" || len(meta) > 0) {
				return usageErrorf("--resume continues an upload as it was declared: it takes no --name, --type, --artifact or --meta")
			}
			m, err := parseMeta(meta)
			if err != nil {
				return err
			}
			var target uploadTarget
			if resume != "" {
				if target, err = parseUploadURL(resume); err != nil {
					return usageError{err}
				}
			}
			f, size, err := openUploadFile(path)
			if err != nil {
				return err
			}
			defer f.Close()
			api, err := c.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var req client.UploadRequest
			var key string // the create's Idempotency-Key
			if resume == "" {
				req = client.UploadRequest{Name: name, ContentType: typ, SizeBytes: size, Metadata: m, ArtifactID: artmesh.ArtifactID(artifact)}
				if artifact == "" {
					if req.Name == "" {
						req.Name = filepath.Base(path)
					}
					if req.ContentType == "" {
						req.ContentType = contentTypeFor(req.Name)
					}
				}
				if !restart {
					if key, err = uploadKey(f, req); err != nil {
						return err
					}
				}
			}
			a, err := c.upload(ctx, api, f, size, req, key, target, replicas, path)
			if err != nil {
				return err
			}
			return c.printArtifactOut(a)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "the artifact's name (default: the file's base name)")
	fl.StringVar(&typ, "type", "", "the content type (default: from the name's extension)")
	fl.StringArrayVar(&meta, "meta", nil, "metadata KEY=VALUE (a string) or KEY:=JSON (a typed value); repeatable")
	fl.StringVar(&artifact, "artifact", "", "make the upload a new version of this artifact")
	fl.StringVar(&resume, "resume", "", "continue the upload at this upload URL instead of starting one")
	fl.BoolVar(&restart, "restart", false, "start a new upload even if an interrupted upload of this file could be continued")
	replicasFlag(cmd, &replicas)
	return cmd
}

// uploadTarget is an upload session: its id and the URL its bytes go to.
type uploadTarget struct {
	id  string
	url string
}

// parseUploadURL checks an upload URL (.../v1/uploads/{id}/content?token=T)
// and returns the upload it names.
func parseUploadURL(s string) (uploadTarget, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return uploadTarget{}, fmt.Errorf("%q is not an upload URL: give the http://HOST:PORT/v1/uploads/ID/content?token=... URL the upload printed", s)
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), "/v1/uploads/")
	var id string
	if ok {
		id, ok = strings.CutSuffix(rest, "/content")
	}
	if !ok || id == "" || strings.Contains(id, "/") {
		return uploadTarget{}, fmt.Errorf("%q is not an upload URL: its path must be /v1/uploads/ID/content", s)
	}
	if id, err = url.PathUnescape(id); err != nil || strings.Contains(id, "/") {
		return uploadTarget{}, fmt.Errorf("%q is not an upload URL: its upload id is malformed", s)
	}
	if u.Query().Get("token") == "" {
		return uploadTarget{}, fmt.Errorf("%q has no token: give the whole upload URL, ?token=... included", s)
	}
	return uploadTarget{id: id, url: s}, nil
}

// openUploadFile opens a regular file to upload and returns its size. An
// upload declares its size first and may read parts of the file again to
// resume, so pipes and stdin will not do.
func openUploadFile(path string) (*os.File, int64, error) {
	if path == "-" {
		return nil, 0, usageErrorf("upload needs a file it can read twice: use put to store stdin")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, inputError{err}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, inputError{err}
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, inputError{fmt.Errorf("%s is not a regular file: upload needs a file whose size is known (use put for pipes)", path)}
	}
	return f, st.Size(), nil
}

// uploadKey returns the Idempotency-Key of an upload of f declared by req:
// the same file (absolute path, size, modification time) with the same
// declaration gets the same key, so running the command again after an
// interruption gets the same upload from the node (POST /v1/uploads sent
// again answers the upload it opened, with a fresh URL) and continues it.
// A file changed since has another key, and starts a new upload. Keys
// last 24 hours on the node, as long as an upload does by default.
func uploadKey(f *os.File, req client.UploadRequest) (string, error) {
	st, err := f.Stat()
	if err != nil {
		return "", inputError{err}
	}
	abs, err := filepath.Abs(f.Name())
	if err != nil {
		return "", inputError{err}
	}
	h := sha256.New()
	meta, _ := json.Marshal(req.Metadata)
	for _, part := range []string{"artmesh upload 1", abs, strconv.FormatInt(st.Size(), 10), strconv.FormatInt(st.ModTime().UnixNano(), 10),
		req.Name, req.ContentType, string(req.ArtifactID), string(meta)} {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return "upload-" + hex.EncodeToString(h.Sum(nil))[:40], nil
}

// uploadAPI is what an upload needs of the node's client.
type uploadAPI interface {
	CreateUpload(ctx context.Context, req client.UploadRequest) (client.Upload, error)
	GetUpload(ctx context.Context, id string) (client.UploadStatus, error)
	UploadOffset(ctx context.Context, uploadURL string) (int64, error)
	PutUpload(ctx context.Context, uploadURL string, r io.Reader, offset, total int64) error
	ConfirmUpload(ctx context.Context, id, sha256 string, opts ...client.WriteOption) (artmesh.Artifact, error)
	Artifact(ctx context.Context, id artmesh.ArtifactID) (artmesh.Artifact, error)
}

var _ uploadAPI = (*client.Client)(nil)

// upload stores the size bytes of f: through a new upload session
// declared by req, or, when target.url is set, through that existing one,
// from where the node's copy ends. It returns the artifact confirmed with
// replicas (0: the mesh policy's). path is the file's name, for messages.
//
// key, when set, is the create's Idempotency-Key (and only the create's:
// each later call has its own). A new session whose create the node
// answers with an upload it already had (the same key: the command run
// again) is continued from where the node's copy ends, or, confirmed
// already, answers its artifact.
func (c *cli) upload(ctx context.Context, api uploadAPI, f io.ReaderAt, size int64, req client.UploadRequest, key string, target uploadTarget, replicas int, path string) (artmesh.Artifact, error) {
	var offset int64
	received := false // all bytes are there already
	if target.url == "" {
		cctx := ctx
		if key != "" {
			cctx = client.WithIdempotencyKey(ctx, key)
		}
		up, err := api.CreateUpload(cctx, req)
		if key != "" && errors.Is(err, artmesh.NotFound) {
			// The upload this file's key opened was aborted or expired.
			fmt.Fprintln(c.stderr, "the earlier upload of this file was aborted or expired: starting a new one")
			up, err = api.CreateUpload(ctx, req)
		}
		if err != nil {
			return artmesh.Artifact{}, err
		}
		target = uploadTarget{id: up.ID, url: up.URL}
		switch {
		case up.State == client.UploadConfirmed && up.ArtifactID != "":
			fmt.Fprintf(c.stderr, "upload %s of this file was confirmed already (use --restart to upload it again)\n", up.ID)
			return api.Artifact(ctx, up.ArtifactID)
		case up.State == client.UploadReceived:
			offset, received = size, true
			fmt.Fprintf(c.stderr, "continuing upload %s: the node holds all %s; confirming it\n", up.ID, artmesh.FormatBytes(size))
		case up.ReceivedBytes > 0:
			offset = up.ReceivedBytes // the create's answer says what the node holds
			fmt.Fprintf(c.stderr, "continuing upload %s: the node holds %s of %s\n", up.ID, artmesh.FormatBytes(offset), artmesh.FormatBytes(size))
		}
	} else {
		st, err := api.GetUpload(ctx, target.id)
		if err != nil {
			return artmesh.Artifact{}, err
		}
		switch {
		case st.State == client.UploadConfirmed:
			return artmesh.Artifact{}, fmt.Errorf("upload %s is already confirmed", target.id)
		case st.SizeBytes != size:
			return artmesh.Artifact{}, fmt.Errorf("upload %s was declared as %d bytes but the file has %d", target.id, st.SizeBytes, size)
		case st.State == client.UploadReceived:
			offset, received = size, true
		default:
			if offset, err = api.UploadOffset(ctx, target.url); err != nil {
				return artmesh.Artifact{}, err
			}
		}
	}
	desc := "upload " + target.id
	if req.Name != "" {
		desc = "upload " + req.Name
	}
	p := c.newProgress(size, desc)
	hs := newPrefixHash()
	s := &uploadSender{api: api, url: target.url, file: f, size: size, hash: hs, progress: p, sleep: c.sleeper()}
	var err error
	switch {
	case !received && offset >= size && size > 0:
		// The node holds every byte but did not take them in (the
		// connection broke as the last ones came): a PUT of none
		// finishes it.
		err = api.PutUpload(ctx, target.url, http.NoBody, size, size)
		if errors.Is(err, artmesh.Conflict) {
			// It takes no more bytes: the node was still taking them in
			// when asked, and is done now.
			if st, serr := api.GetUpload(ctx, target.id); serr == nil && st.State == client.UploadReceived {
				err = nil
			}
		}
	case !received:
		err = s.send(ctx, offset)
	}
	p.done(err)
	if err != nil {
		return artmesh.Artifact{}, c.resumeHint(err, target, path, req.Name != "" || req.ArtifactID != "")
	}
	if err := hs.catchUp(f, size); err != nil {
		return artmesh.Artifact{}, err
	}
	a, err := c.confirm(ctx, api, target.id, hex.EncodeToString(hs.h.Sum(nil)), replicas)
	if errors.Is(err, artmesh.Unavailable) {
		again := ""
		if replicas > 0 {
			again = fmt.Sprintf(" --replicas %d", replicas)
		}
		fmt.Fprintf(c.stderr, "the node holds the whole upload; confirm it later with:\n  artmesh upload --resume %s%s %s\n", shellQuote(target.url), again, shellQuote(path))
	}
	return a, err
}

// resumeHint adds to the error of a failed transfer how to continue it:
// the same command again (when this run opened the upload, whose key the
// file gives), or --resume with the upload URL, which works from any
// shell.
func (c *cli) resumeHint(err error, target uploadTarget, path string, opened bool) error {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status != http.StatusConflict && ce.Status < 500 {
		return err // the upload itself is refused: resuming will not help
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(c.stderr, "the node keeps what it received of upload %s; run the same command again to continue it\n", target.id)
		return err
	}
	again := ""
	if opened {
		again = "run the same command again, or "
	}
	fmt.Fprintf(c.stderr, "the node keeps what it received; to continue, %suse:\n  artmesh upload --resume %s %s\n", again, shellQuote(target.url), shellQuote(path))
	return err
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// confirm confirms an upload whose bytes all arrived, retrying when the
// node cannot be reached; a confirm that worked but whose answer was lost
// is recognised by the upload's state.
func (c *cli) confirm(ctx context.Context, api uploadAPI, id, sum string, replicas int) (artmesh.Artifact, error) {
	sleep := c.sleeper()
	for attempt := 1; ; attempt++ {
		a, err := api.ConfirmUpload(ctx, id, sum, client.Replicas(replicas))
		if err == nil {
			return a, nil
		}
		if attempt > 1 && errors.Is(err, artmesh.Conflict) {
			if st, serr := api.GetUpload(ctx, id); serr == nil && st.State == client.UploadConfirmed && st.ArtifactID != "" {
				return api.Artifact(ctx, st.ArtifactID)
			}
		}
		if !retryable(err) || attempt > uploadRetries {
			return artmesh.Artifact{}, err
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return artmesh.Artifact{}, err
		}
	}
}

// sleeper returns how the command waits between retries.
func (c *cli) sleeper() func(context.Context, time.Duration) error {
	if c.sleep != nil {
		return c.sleep
	}
	return sleepCtx
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is the wait before retry number attempt (from 1).
func backoff(attempt int) time.Duration {
	d := uploadBackoff
	for i := 1; i < attempt && d < uploadMaxBackoff; i++ {
		d *= 2
	}
	return min(d, uploadMaxBackoff)
}

// retryable reports whether a failed call may work when tried again: the
// connection broke or could not be made, or the node had a server error
// other than a full disk (which a retry does not fix).
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var fe fileError
	if errors.As(err, &fe) {
		return false
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Status >= 500 && ce.Kind() != artmesh.InsufficientStorage && ce.Kind() != artmesh.QuotaExceeded
	}
	var ae *artmesh.Error
	if errors.As(err, &ae) && ae.Kind != artmesh.Unavailable {
		return false // refused by the client itself
	}
	return true // a transport error
}

// retryablePut is retryable for a PUT of an upload's bytes, which may also
// be retried after a conflict: the node holds a different amount than was
// assumed, and asking for the offset again settles that.
func retryablePut(err error) bool {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status == http.StatusConflict {
		return true
	}
	return retryable(err)
}

// uploadSender sends a file's bytes to an upload URL and resumes it when
// it breaks.
type uploadSender struct {
	api      uploadAPI
	url      string
	file     io.ReaderAt
	size     int64
	hash     *prefixHash
	progress *progress
	sleep    func(context.Context, time.Duration) error
}

// send sends the bytes from offset on. After a retryable failure it waits,
// asks the node how many bytes it holds and continues from there; it gives
// up after uploadRetries failures in a row that made no progress.
func (s *uploadSender) send(ctx context.Context, offset int64) error {
	failures := 0
	for {
		if offset >= s.size && s.size > 0 {
			return nil // everything is there
		}
		err := s.put(ctx, offset)
		if err == nil {
			return nil
		}
		ok := retryablePut(err)
		for {
			if !ok {
				return err
			}
			if failures++; failures > uploadRetries {
				// Not wrapped: the CLI prints a wrapped API error's message
				// alone, and this one should say that it gave up.
				return fmt.Errorf("giving up after %d retries; the last error: %s", uploadRetries, artmesh.Message(err))
			}
			if serr := s.sleep(ctx, backoff(failures)); serr != nil {
				return serr
			}
			var have int64
			if have, err = s.api.UploadOffset(ctx, s.url); err == nil {
				if have > offset {
					failures = 0 // the last attempt moved the upload on
				}
				offset = have
				break
			}
			ok = retryable(err)
		}
		if offset > s.size {
			return fmt.Errorf("the node says it holds %d bytes of an upload of %d", offset, s.size)
		}
	}
}

// put sends one request with the bytes from offset to the end.
func (s *uploadSender) put(ctx context.Context, offset int64) error {
	if err := s.hash.catchUp(s.file, offset); err != nil {
		return err
	}
	s.progress.set(offset)
	var r io.Reader = io.NewSectionReader(s.file, offset, s.size-offset)
	r = s.progress.reader(s.hash.reader(r, offset))
	return s.api.PutUpload(ctx, s.url, r, offset, s.size)
}

// prefixHash is the SHA-256 of a file's first n bytes, grown in file order
// as a (possibly resumed) upload reads them: bytes read again after a
// resume are not hashed twice, and bytes a resume skips are read for it.
type prefixHash struct {
	h hash.Hash
	n int64 // bytes hashed so far
}

func newPrefixHash() *prefixHash { return &prefixHash{h: sha256.New()} }

// catchUp hashes the bytes of src up to off that are not hashed yet. Its
// errors are fileErrors.
func (p *prefixHash) catchUp(src io.ReaderAt, off int64) error {
	if off <= p.n {
		return nil
	}
	n, err := io.Copy(p.h, io.NewSectionReader(src, p.n, off-p.n))
	p.n += n
	if err == nil && p.n < off {
		err = fmt.Errorf("the file ended at %d bytes: it changed during the upload", p.n)
	}
	if err != nil {
		return fileError{fmt.Errorf("reading the file for its SHA-256: %w", err)}
	}
	return nil
}

// fileError is a failure to read the file being uploaded, which retrying
// the upload does not mend.
type fileError struct{ err error }

func (e fileError) Error() string { return e.err.Error() }
func (e fileError) Unwrap() error { return e.err }

// reader returns r, which yields the file from off on (off at most the
// bytes hashed so far), hashing what it yields past them.
func (p *prefixHash) reader(r io.Reader, off int64) io.Reader {
	return &prefixHashReader{p: p, r: r, pos: off}
}

type prefixHashReader struct {
	p   *prefixHash
	r   io.Reader
	pos int64
}

func (h *prefixHashReader) Read(b []byte) (int, error) {
	n, err := h.r.Read(b)
	if end := h.pos + int64(n); end > h.p.n && h.pos <= h.p.n {
		h.p.h.Write(b[h.p.n-h.pos : n])
		h.p.n = end
	}
	h.pos += int64(n)
	return n, err
}

// uploadsCmd is `artmesh uploads [ls]` and `artmesh uploads abort ID`:
// the caller's unconfirmed uploads, which an interrupted upload leaves.
func (c *cli) uploadsCmd() *cobra.Command {
	list := func(cmd *cobra.Command, _ []string) error {
		api, err := c.client()
		if err != nil {
			return err
		}
		us, err := api.Uploads(cmd.Context())
		if err != nil {
			return err
		}
		switch {
		case c.jsonOut:
			return printJSON(c.stdout, items(us))
		case c.quiet:
			for _, u := range us {
				fmt.Fprintln(c.stdout, u.ID)
			}
			return nil
		case len(us) == 0:
			fmt.Fprintln(c.stderr, "no unconfirmed uploads")
			return nil
		}
		rows := make([][]string, 0, len(us))
		for _, u := range us {
			rows = append(rows, []string{u.ID, u.Name, u.State,
				fmt.Sprintf("%s of %s", artmesh.FormatBytes(u.ReceivedBytes), artmesh.FormatBytes(u.SizeBytes)),
				orDash(string(u.ArtifactID)), shortTime(u.ExpiresAt)})
		}
		return table(c.stdout, []string{"ID", "NAME", "STATE", "RECEIVED", "UPDATES", "EXPIRES"}, rows)
	}
	cmd := &cobra.Command{
		Use:   "uploads",
		Short: "List your unconfirmed uploads (open or received), or abort one",
		Long: `List your uploads that are not confirmed yet: open ones (bytes still to
send) and received ones (waiting for a confirm), oldest expiry first. An
interrupted 'artmesh upload FILE' continues when run again; 'artmesh uploads
abort ID' drops an upload and the bytes the node holds for it.`,
		Example: `  artmesh uploads
  artmesh uploads abort upl_01JD8X3V6Q4Z2M5N7P9R1S3T5V
  artmesh uploads -q | xargs -n1 artmesh uploads abort`,
		Args: cobra.NoArgs,
		RunE: list,
	}
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List your unconfirmed uploads (as uploads alone does)",
		Example: "  artmesh uploads ls --json",
		Args:    cobra.NoArgs,
		RunE:    list,
	}
	abort := &cobra.Command{
		Use:     "abort ID",
		Short:   "Abandon an unconfirmed upload: the node drops the bytes it holds for it",
		Example: "  artmesh uploads abort upl_01JD8X3V6Q4Z2M5N7P9R1S3T5V",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			if err := api.AbortUpload(cmd.Context(), args[0]); err != nil {
				return err
			}
			c.say("aborted upload %s", args[0])
			return nil
		},
	}
	cmd.AddCommand(ls, abort)
	return cmd
}
