package artmesh

import (
	"errors"
	"testing"
)

func TestLimits(t *testing.T) {
	const u = Unlimited
	none := Quota{Bytes: u, Staged: u, Uploads: u, Streams: u}
	defaults := Quota{Bytes: 100, Uploads: 5}
	for _, tc := range []struct {
		name     string
		override Quota
		admin    bool
		want     Quota
	}{
		{"no override: the defaults, unlimited where unset", Quota{}, false, Quota{Bytes: 100, Staged: u, Uploads: 5, Streams: u}},
		{"admins are unlimited", Quota{}, true, none},
		{"an override wins", Quota{Bytes: 7, Streams: 2}, false, Quota{Bytes: 7, Staged: u, Uploads: 5, Streams: 2}},
		{"an override binds an admin", Quota{Bytes: 7}, true, Quota{Bytes: 7, Staged: u, Uploads: u, Streams: u}},
		{"unlimited lifts a default", Quota{Bytes: u}, false, Quota{Bytes: u, Staged: u, Uploads: 5, Streams: u}},
	} {
		if got := Limits(tc.override, defaults, tc.admin); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if got := Limits(Quota{}, Quota{}, false); got != none {
		t.Errorf("no defaults: %+v, want unlimited", got)
	}
}

func TestQuotaValidate(t *testing.T) {
	for _, tc := range []struct {
		q    Quota
		want Kind
	}{
		{Quota{}, Other},
		{Quota{Bytes: Unlimited, Staged: 1, Uploads: 0, Streams: 9}, Other},
		{Quota{Streams: -2}, Invalid},
		{Quota{Bytes: -5}, Invalid},
	} {
		err := tc.q.Validate()
		if tc.want == Other && err != nil || tc.want != Other && !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.q, err, tc.want)
		}
	}
	for _, tc := range []struct {
		n, limit int64
		want     bool
	}{{5, Unlimited, true}, {5, 5, true}, {6, 5, false}, {1 << 62, Unlimited, true}} {
		if got := Within(tc.n, tc.limit); got != tc.want {
			t.Errorf("Within(%d, %d) = %v", tc.n, tc.limit, got)
		}
	}
}
