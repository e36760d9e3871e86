package api

import (
	"mime"
	"testing"
)

func TestContentDisposition(t *testing.T) {
	for _, tt := range []struct {
		name, want string
	}{
		{"report.pdf", `attachment; filename="report.pdf"`},
		{"with space.txt", `attachment; filename="with space.txt"`},
		{"résumé.pdf", `attachment; filename="r_sum_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`},
		{"数据.json", `attachment; filename="__.json"; filename*=UTF-8''%E6%95%B0%E6%8D%AE.json`},
		{`say "hi".txt`, `attachment; filename="say _hi_.txt"; filename*=UTF-8''say%20%22hi%22.txt`},
		{`back\slash`, `attachment; filename="back_slash"; filename*=UTF-8''back%5Cslash`},
		{"tab\tnew\x7f", `attachment; filename="tab_new_"; filename*=UTF-8''tab%09new%7F`},
		{"a;b=c%", `attachment; filename="a;b=c%"`},
		{"", `attachment; filename="download"`},
	} {
		got := contentDisposition(tt.name)
		if got != tt.want {
			t.Errorf("contentDisposition(%q) = %s, want %s", tt.name, got, tt.want)
			continue
		}
		// A client that reads RFC 8187 gets the exact name back.
		_, params, err := mime.ParseMediaType(got)
		if err != nil {
			t.Errorf("%q: %s does not parse: %v", tt.name, got, err)
			continue
		}
		if tt.name != "" && params["filename"] != tt.name {
			t.Errorf("%q: parsed back as %q", tt.name, params["filename"])
		}
	}
}
