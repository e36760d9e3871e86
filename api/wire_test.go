package api

import (
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/artmesh/artmesh/api/apitype"
	"github.com/artmesh/artmesh/catalog"
	"github.com/artmesh/artmesh/node"
	"github.com/artmesh/artmesh/node/blockstore"
)

// wireFields describes how encoding/json sees the fields of the struct
// type t: each JSON name with its Go type and, when withOptions is set,
// its omitempty and omitzero options. Embedded structs without a name
// contribute their fields, as encoding/json promotes them.
func wireFields(t reflect.Type, withOptions bool) map[string]string {
	out := map[string]string{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			maps.Copy(out, wireFields(f.Type, withOptions))
			continue
		}
		if name == "" {
			name = f.Name
		}
		desc := f.Type.String()
		if withOptions {
			for _, o := range strings.Split(opts, ",") {
				if o == "omitempty" || o == "omitzero" {
					desc += "," + o
				}
			}
		}
		out[name] = desc
	}
	return out
}

// TestWireTypesMatchNode checks the apitype shapes that mirror a value the
// server encodes (or decodes into) as node gives it: the same JSON names,
// Go types and omit options, so that what the client decodes is what the
// server sends. A field added on one side belongs on the other.
func TestWireTypesMatchNode(t *testing.T) {
	for _, tt := range []struct {
		server, wire any
		request      bool // a body the server decodes: omit options do not matter
		// part: the server's value is a part of the answer, which adds
		// fields of its own (repo stat adds the scrubber's).
		part bool
	}{
		{node.Info{}, apitype.NodeInfo{}, false, false},
		{node.MemberInfo{}, apitype.Member{}, false, false},
		{node.Invite{}, apitype.Invite{}, false, false},
		{node.Pin{}, apitype.Pin{}, false, false},
		{catalog.Policy{}, apitype.Policy{}, false, false},
		{node.VersionPlacement{}, apitype.VersionPlacement{}, false, false},
		{blockstore.Stat{}, apitype.RepoStat{}, false, true},
		{node.UploadStatus{}, apitype.UploadStatus{}, false, false},
		{node.UploadInput{}, apitype.UploadRequest{}, true, false},
		{node.SignedURLInfo{}, apitype.SignedURLInfo{}, false, false},
	} {
		st, wt := reflect.TypeOf(tt.server), reflect.TypeOf(tt.wire)
		got, want := wireFields(wt, !tt.request), wireFields(st, !tt.request)
		for name, w := range want {
			if g, ok := got[name]; !ok {
				t.Errorf("%v has %q (%s); %v does not", st, name, w, wt)
			} else if g != w {
				t.Errorf("%q is %s in %v but %s in %v", name, w, st, g, wt)
			}
		}
		for name, g := range got {
			if _, ok := want[name]; !ok && !tt.part {
				t.Errorf("%v has %q (%s); %v does not", wt, name, g, st)
			}
		}
	}
}

// TestWireStatesMatchNode checks the state names apitype gives clients
// against those node and the catalog set.
func TestWireStatesMatchNode(t *testing.T) {
	for _, tt := range [][2]string{
		{apitype.PinQueued, node.PinQueued},
		{apitype.PinFetching, node.PinFetching},
		{apitype.PinPinned, node.PinPinned},
		{apitype.PinFailed, node.PinFailed},
		{apitype.PlacementOK, node.PlacementOK},
		{apitype.PlacementRepairing, node.PlacementRepairing},
		{apitype.PlacementUnderReplicated, node.PlacementUnderReplicated},
		{apitype.UploadOpen, catalog.StateOpen},
		{apitype.UploadReceived, catalog.StateReceived},
		{apitype.UploadConfirmed, catalog.StateConfirmed},
	} {
		if tt[0] != tt[1] {
			t.Errorf("apitype says %q where node says %q", tt[0], tt[1])
		}
	}
}
