package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// byteSize is a flag value that is a number of bytes, given as a whole
// number or with a unit: 64MiB, 1.5GiB, 500MB. K, M, G and T alone are
// binary (KiB ...); KB, MB, GB and TB are decimal.
type byteSize int64

// byteUnits are the units a byteSize takes, lower case.
var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// parseByteSize reads a size such as "1048576", "64MiB" or "1.5 GiB".
func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := byteUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%q is not a size: give bytes, or a number with a unit such as 64MiB or 1GiB", s)
	}
	tooLarge := fmt.Errorf("%q is too large a size", s)
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, tooLarge
		}
		if n > math.MaxInt64/mult {
			return 0, tooLarge
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: give bytes, or a number with a unit such as 64MiB or 1GiB", s)
	}
	v := math.Round(f * float64(mult))
	if v >= math.MaxInt64 {
		return 0, tooLarge
	}
	return int64(v), nil
}

// String gives the size in the largest binary unit that divides it.
func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// Set parses a flag's value.
func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

// Type names the value in the flag's help.
func (b *byteSize) Type() string { return "size" }
