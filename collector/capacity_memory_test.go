package collector

import (
	"context"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

func TestMemorySource(t *testing.T) {
	// testdata/procfs/meminfo: MemTotal 16384000 kB, MemAvailable
	// 4096000 kB. Usage = (16384000 - 4096000) * 1024 = 12288000 * 1024 =
	// 12582912000 bytes; Limit = 16384000 * 1024 = 16777216000 bytes.
	src, err := NewCapacitySource(config.CapacitySource{Memory: true}, 0, CapacityDeps{ProcRoot: "testdata/procfs"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := src.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (Measurement{Usage: 12582912000, Limit: 16777216000}); m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
}

func TestMemorySourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		meminfo  string // "" leaves the file out
		want     Reason
		contains string
	}{
		{name: "no meminfo", want: ReasonNotFound, contains: "meminfo"},
		// Kernels before 3.14.
		{name: "no MemAvailable", meminfo: "MemTotal:       16384000 kB\nMemFree:         1024000 kB\n",
			want: ReasonProtocol, contains: "no MemTotal or MemAvailable"},
		{name: "unparsable", meminfo: "MemTotal:       lots kB\nMemAvailable:    4096000 kB\n",
			want: ReasonProtocol, contains: "meminfo"},
		{name: "available above total", meminfo: "MemTotal:       1000 kB\nMemAvailable:    2000 kB\n",
			want: ReasonProtocol, contains: "MemAvailable 2048000 bytes out of a MemTotal of 1024000 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.meminfo != "" {
				writeFixture(t, root, "meminfo", tc.meminfo)
			}
			src, err := NewCapacitySource(config.CapacitySource{Memory: true}, 0, CapacityDeps{ProcRoot: root})
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Sample(context.Background())
			wantSourceError(t, err, tc.want, tc.contains)
		})
	}
}

func TestMemorySourceContextDone(t *testing.T) {
	src, err := NewCapacitySource(config.CapacitySource{Memory: true}, 0, CapacityDeps{ProcRoot: "testdata/procfs"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = src.Sample(ctx)
	wantSourceError(t, err, ReasonTimeout)
}

// TestMemorySourceLive reads the real /proc/meminfo: the figures move, so
// only their consistency is checked.
func TestMemorySourceLive(t *testing.T) {
	src, err := NewCapacitySource(config.CapacitySource{Memory: true}, 0, CapacityDeps{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := src.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !(m.Usage > 0 && m.Usage < m.Limit) || int64(m.Limit)%1024 != 0 {
		t.Errorf("got %+v, want 0 < usage < limit, limit a whole number of KiB", m)
	}
}
