package catalog

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/artmesh/artmesh"
	"github.com/hashicorp/raft"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func TestZZScaleExp(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ZZN"))
	if n == 0 {
		t.Skip()
	}
	h := newTestFSM(t)
	h.agent("owner")
	const batch = 32
	tenth := n / 10
	start := time.Now()
	st0 := h.f.state().db.bolt.Stats()
	io0 := ioWrite()
	for i := 0; i < n; i += batch {
		logs := make([]*raft.Log, 0, batch)
		for j := i; j < i+batch; j++ {
			id, at := h.nextID()
			sum := sha256.Sum256([]byte(strconv.Itoa(j)))
			m, _ := mh.Encode(sum[:], mh.SHA2_256)
			c := cid.NewCidV1(cid.Raw, m).String()
			yes := func(k int) json.RawMessage {
				if j%k == 0 {
					return json.RawMessage(`"yes"`)
				}
				return json.RawMessage(`"no"`)
			}
			data, err := encodeCommand(CreateArtifact{
				ID: id, Name: fmt.Sprintf("scale-%d.json", j), ContentType: "application/json", Owner: "owner",
				Metadata: artmesh.Metadata{"p1": yes(100), "p10": yes(10), "seq": json.RawMessage(strconv.Itoa(j))},
				CID:      c, SizeBytes: 40, At: at,
			})
			if err != nil {
				t.Fatal(err)
			}
			h.index++
			logs = append(logs, &raft.Log{Index: h.index, Type: raft.LogCommand, Data: data})
		}
		for _, res := range h.f.ApplyBatch(logs) {
			if err, ok := res.(error); ok {
				t.Fatal(err)
			}
		}
		if (i+batch)%tenth < batch {
			st := h.f.state().db.bolt.Stats()
			d := st.TxStats.Sub(&st0.TxStats)
			io := ioWrite()
			el := time.Since(start)
			k := float64(i + batch - (n/10)*((i+batch)/tenth-1))
			_ = k
			t.Logf("%7d: %.1f us/create, spill %.1f write %.1f pagealloc %.1f KiB/create, io %.1f KiB/create",
				i+batch, float64(el.Microseconds())/float64(tenth), float64(d.GetSpill())/float64(tenth), float64(d.GetWrite())/float64(tenth), float64(d.GetPageAlloc())/1024/float64(tenth), float64(io-io0)/1024/float64(tenth))
			st0, io0, start = st, io, time.Now()
		}
	}
}

func ioWrite() int64 {
	b, _ := os.ReadFile("/proc/self/io")
	var v int64
	for _, l := range splitLines(string(b)) {
		if len(l) > 12 && l[:12] == "write_bytes:" {
			v, _ = strconv.ParseInt(trimSpace(l[12:]), 10, 64)
		}
	}
	return v
}
func splitLines(s string) []string {
	var out []string
	st := 0
	for i := range s {
		if s[i] == '\n' {
			out = append(out, s[st:i])
			st = i + 1
		}
	}
	return out
}
func trimSpace(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	return s
}
