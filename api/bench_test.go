package api

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"testing"
)

// BenchmarkIngestHTTP measures a durable create of a 256 MiB body through
// the HTTP API of a real node.
func BenchmarkIngestHTTP(b *testing.B) {
	t := &testing.T{}
	_ = t
	srv, key := newTestServerTB(b)
	data := make([]byte, 256<<20)
	rand.Read(data)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		data[0]++
		req, _ := http.NewRequest("POST", srv.URL+"/v1/artifacts?name=big", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			b.Fatal(resp.Status)
		}
	}
}
