package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressMin is the smallest transfer that gets a progress bar.
const progressMin = 8 << 20

// progress draws a bar on stderr for a transfer of size bytes. It is
// inert (all methods do nothing) unless stderr is a terminal, the output
// is not --json and the size is known and over progressMin.
type progress struct {
	bar *progressbar.ProgressBar
}

// newProgress returns the progress of a transfer described by desc
// ("put report.pdf").
func (c *cli) newProgress(size int64, desc string) *progress {
	if c.jsonOut || !c.stderrTTY || size <= progressMin {
		return &progress{}
	}
	w := c.stderr
	return &progress{bar: progressbar.NewOptions64(size,
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionFullWidth(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
}

// reader counts what r yields on the bar.
func (p *progress) reader(r io.Reader) io.Reader {
	if p.bar == nil {
		return r
	}
	return &progressReader{r: r, bar: p.bar}
}

// set moves the bar to n bytes done, as when a transfer resumes there.
func (p *progress) set(n int64) {
	if p.bar != nil {
		_ = p.bar.Set64(n)
	}
}

// done ends the bar: full when the transfer succeeded, else left where it
// stopped.
func (p *progress) done(err error) {
	if p.bar == nil || p.bar.IsFinished() {
		return
	}
	if err == nil {
		_ = p.bar.Finish()
		return
	}
	_ = p.bar.Exit()
}

// progressReader adds what it reads to a bar. The bar's own errors (such
// as more bytes than announced) never break the transfer.
type progressReader struct {
	r   io.Reader
	bar *progressbar.ProgressBar
}

// Seek lets a client rewind the body to send it again (see client's
// retries) when the reader under it can.
func (p *progressReader) Seek(off int64, whence int) (int64, error) {
	s, ok := p.r.(io.Seeker)
	if !ok {
		return 0, errors.New("the input cannot be read again")
	}
	n, err := s.Seek(off, whence)
	if err == nil {
		_ = p.bar.Set64(n)
	}
	return n, err
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		_ = p.bar.Add(n)
	}
	return n, err
}
