package api

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"

	"github.com/artmesh/artmesh"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  artmesh.Filter
		bad   bool
	}{
		{"", artmesh.Filter{}, false},
		{"content_type=text/plain&name=a&limit=5&offset=10", artmesh.Filter{ContentType: "text/plain", Name: "a", Limit: 5, Offset: 10}, false},
		{"cursor=MTphYmM&limit=5", artmesh.Filter{Cursor: "MTphYmM", Limit: 5}, false},
		{"metadata.year=2025", artmesh.Filter{Meta: []artmesh.MetaMatch{{Key: "year", Value: "2025"}}}, false},
		{"metadata.k=a&metadata.k=b", artmesh.Filter{Meta: []artmesh.MetaMatch{{Key: "k", Value: "a"}, {Key: "k", Value: "b"}}}, false},
		{"metadata.a.b=c", artmesh.Filter{Meta: []artmesh.MetaMatch{{Key: "a.b", Value: "c"}}}, false},
		{"metadata.=x", artmesh.Filter{}, true},
		{"limit=0", artmesh.Filter{}, true},
		{"limit=1001", artmesh.Filter{}, true},
		{"limit=x", artmesh.Filter{}, true},
		{"offset=-1", artmesh.Filter{}, true},
		{"color=red", artmesh.Filter{}, true},
	} {
		r := httptest.NewRequest("GET", "/v1/artifacts?"+tc.query, nil)
		got, err := parseFilter(r)
		if tc.bad {
			if !errors.Is(err, artmesh.Invalid) {
				t.Errorf("%q: err %v, want Invalid", tc.query, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, %v; want %+v", tc.query, got, err, tc.want)
		}
	}
}

// FuzzParseFilter checks that any query either parses into a filter within
// the API's limits or is refused as Invalid, and never panics.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"metadata.year=2025&limit=10", "content_type=a%2Fb", "metadata.=1", "limit=-1", "%zz", "offset=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		if _, err := url.ParseQuery(query); err != nil {
			return
		}
		r := httptest.NewRequest("GET", "/v1/artifacts", nil)
		r.URL.RawQuery = query
		got, err := parseFilter(r)
		if err != nil {
			if !errors.Is(err, artmesh.Invalid) {
				t.Fatalf("%q: error %v is not Invalid", query, err)
			}
			return
		}
		if got.Limit < 0 || got.Limit > artmesh.MaxListLimit || got.Offset < 0 {
			t.Fatalf("%q: filter %+v outside the limits", query, got)
		}
		for _, m := range got.Meta {
			if m.Key == "" {
				t.Fatalf("%q: empty metadata key", query)
			}
		}
	})
}
