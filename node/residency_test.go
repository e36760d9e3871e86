package node

import (
	"testing"
	"time"
)

// TestResidencyTrimmer checks that the node trims only over its budget,
// and backs off after a trim that left it over budget.
func TestResidencyTrimmer(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		resident  []int64 // what successive reads say
		steps     []time.Duration
		wantTrims int
	}{
		{"under budget", []int64{50, 50, 50}, []time.Duration{0, time.Second, 2 * time.Second}, 0},
		{"over, trimmed under", []int64{150, 40, 150, 40}, []time.Duration{0, 250 * time.Millisecond}, 2},
		{"over, stays over: backs off", []int64{150, 140, 150, 140}, []time.Duration{0, 250 * time.Millisecond, trimBackoff}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r residencyTrimmer
			reads, trims := 0, 0
			resident := func() (int64, error) {
				v := tc.resident[min(reads, len(tc.resident)-1)]
				reads++
				return v, nil
			}
			for _, d := range tc.steps {
				if err := r.step(t0.Add(d), 100, resident, func() error { trims++; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			if trims != tc.wantTrims {
				t.Errorf("%d trims, want %d", trims, tc.wantTrims)
			}
		})
	}
}
