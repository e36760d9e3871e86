package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/artmesh/artmesh/node"
)

func TestParseByteSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"64MiB", 64 << 20, true},
		{"64mib", 64 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1 GiB", 1 << 30, true},
		{"1.5GiB", 3 << 29, true},
		{"512K", 512 << 10, true},
		{"2G", 2 << 30, true},
		{"500MB", 500e6, true},
		{"1TB", 1e12, true},
		{"10B", 10, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1", 0, false},
		{"10x", 0, false},
		{"1..5GiB", 0, false},
		{"9999999999TiB", 0, false},
		{"99999999999999999999", 0, false},
	} {
		got, err := parseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for n, want := range map[int64]string{0: "0", 1 << 30: "1GiB", 64 << 20: "64MiB", 1000: "1000", 3 << 29: "1536MiB"} {
		b := byteSize(n)
		if got := b.String(); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestDaemonFlags(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		check func(node.Config) bool
		err   string
	}{
		{nil, func(c node.Config) bool {
			return c.DeadHolderAfter == node.DefaultDeadHolderAfter && c.CacheSize == node.DefaultCacheSize &&
				c.ReplicateTimeout == 5*time.Minute && c.DeadVoterAfter == node.DefaultDeadVoterAfter && c.TokenSkew == node.DefaultTokenSkew &&
				c.EagerCopyMax == node.DefaultEagerCopyMax && c.DeadMemberAfter == 72*time.Hour
		}, ""},
		{[]string{"--eager-copy-max", "1MiB"}, func(c node.Config) bool { return c.EagerCopyMax == 1<<20 }, ""},
		{[]string{"--eager-copy-max", "0"}, func(c node.Config) bool { return c.EagerCopyMax < 0 }, ""},
		{[]string{"--dead-member-after", "5s", "--dead-voter-after", "1s"}, func(c node.Config) bool {
			return c.DeadMemberAfter == 5*time.Second && c.DeadVoterAfter == time.Second
		}, ""},
		{[]string{"--dead-member-after", "0s"}, nil, "--dead-member-after must be a duration above 0"},
		{[]string{"--dead-holder-after", "5s"}, func(c node.Config) bool { return c.DeadHolderAfter == 5*time.Second }, ""},
		{[]string{"--cache-size", "64MiB"}, func(c node.Config) bool { return c.CacheSize == 64<<20 }, ""},
		{[]string{"--cache-size", "0"}, func(c node.Config) bool { return c.CacheSize == -1 }, ""},
		{[]string{"--replicate-timeout", "30s"}, func(c node.Config) bool { return c.ReplicateTimeout == 30*time.Second }, ""},
		{[]string{"--token-clock-skew", "0s"}, func(c node.Config) bool { return c.TokenSkew < 0 }, ""},
		{[]string{"--dead-holder-after", "0s"}, nil, "--dead-holder-after must be a duration above 0"},
		{[]string{"--replicate-timeout", "-1s"}, nil, "--replicate-timeout must be a duration above 0"},
		{[]string{"--cache-size", "lots"}, nil, `"lots" is not a size`},
		{nil, func(c node.Config) bool { return c.DiskReserve == 0 }, ""},
		{[]string{"--disk-reserve", "512MiB"}, func(c node.Config) bool { return c.DiskReserve == 512<<20 }, ""},
		{[]string{"--disk-reserve", "0"}, func(c node.Config) bool { return c.DiskReserve < 0 }, ""},
		{[]string{"--disk-reserve", "some"}, nil, `--disk-reserve: "some" is not a size`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := &daemonFlags{}
			cmd := newDaemonCmdFlags(f)
			err := cmd.ParseFlags(tt.args)
			var cfg node.Config
			if err == nil {
				cfg, err = f.nodeConfig("/repo", nil)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || cfg.Repo != "/repo" || !tt.check(cfg) {
				t.Errorf("config %+v, %v", cfg, err)
			}
		})
	}
	// Through the command line: a bad size is a usage error, before
	// anything starts.
	code, _, errOut := runCLI(t, map[string]string{}, "daemon", "--cache-size", "10x")
	if code != 2 || !strings.Contains(errOut, `"10x" is not a size`) {
		t.Errorf("daemon --cache-size 10x: exit %d, %s", code, errOut)
	}
}

func TestDaemonLogFormat(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string // what the line starts with; "" for a usage error
		err  string
	}{
		{nil, "time=", ""},
		{[]string{"--log-format", "text"}, "time=", ""},
		{[]string{"--log-format", "json"}, `{"time":`, ""},
		{[]string{"--log-format", "json", "--log-level", "warn"}, "", ""},
		{[]string{"--log-format", "xml"}, "", `--log-format "xml": use text or json`},
		{[]string{"--log-level", "loud"}, "", `--log-level "loud": use debug, info, warn or error`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := &daemonFlags{}
			if err := newDaemonCmdFlags(f).ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			var buf strings.Builder
			log, err := f.logger(&buf)
			if tt.err != "" {
				var ue usageError
				if err == nil || err.Error() != tt.err || !errors.As(err, &ue) {
					t.Fatalf("error %v, want the usage error %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Info("hello", "k", "v")
			got := buf.String()
			if tt.want == "" {
				if got != "" {
					t.Fatalf("an info line was written at --log-level warn: %q", got)
				}
				return
			}
			if !strings.HasPrefix(got, tt.want) || !strings.Contains(got, "hello") {
				t.Fatalf("line %q, want it to start with %q", got, tt.want)
			}
		})
	}
	code, _, errOut := runCLI(t, map[string]string{}, "daemon", "--log-format", "yaml")
	if code != 2 || !strings.Contains(errOut, `--log-format "yaml": use text or json`) {
		t.Errorf("daemon --log-format yaml: exit %d, %s", code, errOut)
	}
}
