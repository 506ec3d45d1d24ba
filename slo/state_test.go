package slo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fixedUnix is the time, in Unix seconds, of the clock of every test that
// names corrupt files.
const fixedUnix = 1_800_000_000

func openTestStore(t *testing.T, dir string, logger *slog.Logger, reg prometheus.Registerer) *Store {
	t.Helper()
	s, err := OpenStore(dir, logger, reg)
	if err != nil {
		t.Fatalf("OpenStore(%q): %v", dir, err)
	}
	s.now = func() time.Time { return time.Unix(fixedUnix, 0) }
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func sampleSections() map[string][]byte {
	return map[string][]byte{
		"history":   []byte("probe history bytes"),
		"slo/avail": {0, 1, 2, 0xff, 0xfe},
		"empty":     {},
	}
}

// mustEncode returns the encoding of sections, failing the test on error.
func mustEncode(t testing.TB, sections map[string][]byte) []byte {
	t.Helper()
	b, err := encodeState(sections)
	if err != nil {
		t.Fatalf("encodeState: %v", err)
	}
	return b
}

func assertSections(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	if !maps.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("sections = %q, want %q", got, want)
	}
}

func assertFormatKind(t *testing.T, err error, want formatErrorKind) {
	t.Helper()
	var fe *formatError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v, want a formatError of kind %d", err, want)
	}
	if fe.kind != want {
		t.Fatalf("error kind = %d (%v), want %d", fe.kind, err, want)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		sections map[string][]byte
	}{
		{"no sections", map[string][]byte{}},
		{"nil map", nil},
		{"one section", map[string][]byte{"a": []byte("x")}},
		{"several sections", sampleSections()},
		{"longest name", map[string][]byte{strings.Repeat("n", MaxSectionNameBytes): []byte("v")}},
		{"multi-byte lengths", map[string][]byte{"big": bytes.Repeat([]byte{7}, 70_000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			encoded := mustEncode(t, tt.sections)
			got, err := decodeState(encoded)
			if err != nil {
				t.Fatalf("decodeState: %v", err)
			}
			want := tt.sections
			if want == nil {
				want = map[string][]byte{}
			}
			assertSections(t, got, want)
		})
	}
}

func TestEncodeLayout(t *testing.T) {
	got := mustEncode(t, map[string][]byte{"b": []byte("2"), "a": []byte("1")})
	body := []byte("RLBDSTATE\n\x00\x00\x00\x01\x02\x01a\x011\x01b\x012")
	want := binary.BigEndian.AppendUint32(slices.Clone(body), crc32c(body))
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding = %q, want %q", got, want)
	}
	if crc32c(body) == crc32.ChecksumIEEE(body) {
		t.Fatalf("test cannot tell Castagnoli from IEEE on this input")
	}
}

// crc32c is the checksum the format uses, computed independently of the
// encoder.
func crc32c(b []byte) uint32 {
	return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
}

func TestEncodeIsDeterministic(t *testing.T) {
	sections := map[string][]byte{}
	for i := range 50 {
		sections[string(rune('A'+i))] = []byte{byte(i)}
	}
	first := mustEncode(t, sections)
	for range 20 {
		if again := mustEncode(t, maps.Clone(sections)); !bytes.Equal(again, first) {
			t.Fatalf("encoding changed between calls")
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := mustEncode(t, sampleSections())
	withVersion := func(v uint32) []byte {
		b := slices.Clone(valid)
		binary.BigEndian.PutUint32(b[len(stateMagic):], v)
		return b
	}
	// reChecksum fixes the checksum of a hand-built body, so the rule
	// checks are reached.
	reChecksum := func(body []byte) []byte {
		return binary.BigEndian.AppendUint32(body, crc32c(body))
	}
	header := []byte(stateMagic + "\x00\x00\x00\x01")
	tests := []struct {
		name string
		file []byte
		want formatErrorKind
	}{
		{"empty file", nil, kindTruncated},
		{"bad magic", append([]byte("XLBDSTATE\n"), valid[len(stateMagic):]...), kindBadMagic},
		{"short non-magic", []byte("hello"), kindBadMagic},
		{"unknown version 2", withVersion(2), kindUnknownVersion},
		{"unknown version 0", withVersion(0), kindUnknownVersion},
		{"trailing garbage", append(slices.Clone(valid), "junk"...), kindTrailingGarbage},
		{"trailing zero byte", append(slices.Clone(valid), 0), kindTrailingGarbage},
		{"checksum flipped", func() []byte { b := slices.Clone(valid); b[len(b)-1] ^= 1; return b }(), kindBadChecksum},
		{"unsorted names", reChecksum(append(slices.Clone(header), "\x02\x01b\x00\x01a\x00"...)), kindMalformed},
		{"duplicate names", reChecksum(append(slices.Clone(header), "\x02\x01a\x00\x01a\x00"...)), kindMalformed},
		{"empty name", reChecksum(append(slices.Clone(header), "\x01\x00\x00"...)), kindMalformed},
		{"non-minimal varint", reChecksum(append(slices.Clone(header), "\x81\x00\x01a\x00"...)), kindMalformed},
		{"name too long", reChecksum(append(append(slices.Clone(header), "\x01\x81\x02"...), strings.Repeat("n", 257)+"\x00"...)), kindMalformed},
		{"varint overflow", append(slices.Clone(header), bytes.Repeat([]byte{0xff}, 11)...), kindMalformed},
		{"count larger than file", reChecksum(append(slices.Clone(header), "\x7f"...)), kindTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sections, err := decodeState(tt.file)
			if sections != nil {
				t.Errorf("sections = %q, want nil", sections)
			}
			assertFormatKind(t, err, tt.want)
		})
	}
}

func TestDecodeTruncatedAtEveryLength(t *testing.T) {
	valid := mustEncode(t, sampleSections())
	for n := range len(valid) {
		if _, err := decodeState(valid[:n]); err == nil {
			t.Fatalf("decodeState of the first %d of %d bytes succeeded", n, len(valid))
		} else {
			var fe *formatError
			if !errors.As(err, &fe) {
				t.Fatalf("length %d: error %v is not a formatError", n, err)
			}
		}
	}
}

func TestDecodeEveryFlippedByte(t *testing.T) {
	valid := mustEncode(t, sampleSections())
	for i := range valid {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			b := slices.Clone(valid)
			b[i] ^= mask
			if sections, err := decodeState(b); err == nil {
				t.Fatalf("byte %d ^ %#x: decodeState succeeded with %q", i, mask, sections)
			}
		}
	}
}

func TestSaveLoadRestore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	want := sampleSections()

	first, err := OpenStore(dir, nil, nil)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	if err := first.Save(want); err != nil {
		t.Fatalf("Save: %v", err)
	}
	written, err := os.ReadFile(filepath.Join(dir, "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	reg := prometheus.NewRegistry()
	second := openTestStore(t, dir, nil, reg)
	got, err := second.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	assertSections(t, got, want)
	if size := testutil.ToFloat64(second.metrics.sizeBytes); size != float64(len(written)) {
		t.Errorf("reliabilityd_state_size_bytes = %v, want %d", size, len(written))
	}

	// Saving what was loaded writes the very same bytes.
	if err := second.Save(got); err != nil {
		t.Fatalf("Save: %v", err)
	}
	rewritten, err := os.ReadFile(filepath.Join(dir, "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rewritten, written) {
		t.Errorf("re-saved file differs from the original")
	}
}

func TestOpenStoreCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	openTestStore(t, dir, nil, nil)
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("state directory not created: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o750 {
		t.Errorf("state directory mode = %o, want 750", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if names := entryNames(entries); !slices.Equal(names, []string{"lock"}) {
		t.Errorf("state directory holds %q, want only the lock file", names)
	}
}

func TestOpenStoreLock(t *testing.T) {
	dir := t.TempDir()
	first, err := OpenStore(dir, nil, nil)
	if err != nil {
		t.Fatalf("first OpenStore: %v", err)
	}
	second, err := OpenStore(dir, nil, nil)
	if err == nil {
		_ = second.Close()
		_ = first.Close()
		t.Fatal("second OpenStore on a locked directory succeeded")
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("error %q does not say that %q is locked", err, dir)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	third, err := OpenStore(dir, nil, nil)
	if err != nil {
		t.Fatalf("OpenStore after Close: %v", err)
	}
	if err := third.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestClosedStoreRefusesWork(t *testing.T) {
	s, err := OpenStore(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(sampleSections()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Save after Close = %v, want a closed-store error", err)
	}
	if _, err := s.Load(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Load after Close = %v, want a closed-store error", err)
	}
}

// skipIfPermissionsIgnored skips when chmod does not restrict us (root, or
// a filesystem that ignores modes): the test would prove nothing.
func skipIfPermissionsIgnored(t *testing.T, dir string) {
	t.Helper()
	f, err := os.CreateTemp(dir, "perm-check-*")
	if err == nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		t.Skip("skipping: directory mode 0500 does not stop this user from writing (running as root?)")
	}
}

func TestOpenStoreUnwritableDir(t *testing.T) {
	tests := []struct {
		name     string
		withLock bool // a lock file left by an earlier run, opened read-write
	}{
		{"fresh directory", false},
		{"directory with lock file", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.withLock {
				if err := os.WriteFile(filepath.Join(dir, "lock"), nil, 0o640); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
			skipIfPermissionsIgnored(t, dir)

			s, err := OpenStore(dir, nil, nil)
			if err == nil {
				_ = s.Close()
				t.Fatal("OpenStore on a read-only directory succeeded")
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the directory %q", err, dir)
			}
		})
	}
}

func TestOpenStoreRemovesStaleTempFile(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "state.bin.tmp")
	if err := os.WriteFile(tmp, []byte("half written"), 0o640); err != nil {
		t.Fatal(err)
	}
	openTestStore(t, dir, nil, nil)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale %s still there after OpenStore (stat: %v)", tmp, err)
	}
}

func TestSaveLeavesNoTempFile(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, nil, nil)
	for range 3 {
		if err := s.Save(sampleSections()); err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if names := entryNames(entries); !slices.Equal(names, []string{"lock", "state.bin"}) {
		t.Errorf("state directory holds %q, want [lock state.bin]", names)
	}
}

func TestSaveRejectsInvalidSections(t *testing.T) {
	tests := []struct {
		name     string
		sections map[string][]byte
		wantErr  string
	}{
		{"empty name", map[string][]byte{"": []byte("x")}, "name is empty"},
		{"name too long", map[string][]byte{strings.Repeat("n", MaxSectionNameBytes+1): nil}, "more than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir, nil, nil)
			if err := s.Save(map[string][]byte{"good": []byte("v1")}); err != nil {
				t.Fatal(err)
			}
			err := s.Save(tt.sections)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), s.Path()) {
				t.Fatalf("Save = %v, want an error naming %q and containing %q", err, s.Path(), tt.wantErr)
			}
			got, err := s.Load()
			if err != nil {
				t.Fatal(err)
			}
			assertSections(t, got, map[string][]byte{"good": []byte("v1")})
		})
	}
}

func TestValidateSectionSizeBound(t *testing.T) {
	tests := []struct {
		dataLen int
		wantErr bool
	}{
		{0, false},
		{MaxSectionBytes, false},
		{MaxSectionBytes + 1, true},
	}
	for _, tt := range tests {
		err := validateSection("s", tt.dataLen)
		if (err != nil) != tt.wantErr {
			t.Errorf("validateSection(%d bytes) = %v, want error %v", tt.dataLen, err, tt.wantErr)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := openTestStore(t, t.TempDir(), nil, reg)
	got, err := s.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got == nil || len(got) != 0 {
		t.Errorf("Load = %q, want an empty non-nil map", got)
	}
	if n := testutil.ToFloat64(s.metrics.corruptFiles); n != 0 {
		t.Errorf("reliabilityd_state_corrupt_files_total = %v, want 0", n)
	}
}

func TestLoadCorruptFileMovedAside(t *testing.T) {
	valid := mustEncode(t, sampleSections())
	flipped := slices.Clone(valid)
	flipped[len(stateMagic)+6] ^= 0x10
	newer := slices.Clone(valid)
	binary.BigEndian.PutUint32(newer[len(stateMagic):], 2)
	tests := []struct {
		name    string
		content []byte
		cause   string
	}{
		{"bad magic", []byte("GARBAGE!GARBAGE!GARBAGE!"), "bad magic"},
		{"unknown version", newer, "unsupported format version 2"},
		{"truncated", valid[:len(valid)/2], "only"},
		{"empty", []byte{}, "shorter than the magic"},
		{"flipped byte", flipped, "checksum mismatch"},
		{"trailing garbage", append(slices.Clone(valid), "xyz"...), "trailing garbage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			statePath := filepath.Join(dir, "state.bin")
			if err := os.WriteFile(statePath, tt.content, 0o640); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			reg := prometheus.NewRegistry()
			s := openTestStore(t, dir, slog.New(slog.NewTextHandler(&logs, nil)), reg)

			got, err := s.Load()
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got == nil || len(got) != 0 {
				t.Errorf("Load = %q, want an empty non-nil map", got)
			}
			movedTo := filepath.Join(dir, "state.bin.corrupt-1800000000")
			moved, err := os.ReadFile(movedTo)
			if err != nil {
				t.Fatalf("corrupt file not moved to %s: %v", movedTo, err)
			}
			if !bytes.Equal(moved, tt.content) {
				t.Errorf("moved file content = %q, want %q", moved, tt.content)
			}
			if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still exists after Load (stat: %v)", statePath, err)
			}
			if n := testutil.ToFloat64(s.metrics.corruptFiles); n != 1 {
				t.Errorf("reliabilityd_state_corrupt_files_total = %v, want 1", n)
			}
			line := logs.String()
			for _, want := range []string{"level=WARN", statePath, movedTo, tt.cause} {
				if !strings.Contains(line, want) {
					t.Errorf("log %q does not contain %q", line, want)
				}
			}
			// The daemon runs on: the next Save writes a fresh, valid file.
			if err := s.Save(map[string][]byte{"new": []byte("state")}); err != nil {
				t.Fatalf("Save after corrupt Load: %v", err)
			}
			again, err := s.Load()
			if err != nil {
				t.Fatal(err)
			}
			assertSections(t, again, map[string][]byte{"new": []byte("state")})
		})
	}
}

func TestLoadCorruptTwiceInOneSecond(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	s := openTestStore(t, dir, nil, reg)
	statePath := filepath.Join(dir, "state.bin")
	for i, content := range []string{"first bad file", "second bad file", "third bad file"} {
		if err := os.WriteFile(statePath, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(); err != nil {
			t.Fatalf("Load %d: %v", i, err)
		}
	}
	want := map[string]string{
		"state.bin.corrupt-1800000000":   "first bad file",
		"state.bin.corrupt-1800000000.1": "second bad file",
		"state.bin.corrupt-1800000000.2": "third bad file",
	}
	for name, content := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != content {
			t.Errorf("%s = %q (%v), want %q", name, got, err, content)
		}
	}
	if n := testutil.ToFloat64(s.metrics.corruptFiles); n != 3 {
		t.Errorf("reliabilityd_state_corrupt_files_total = %v, want 3", n)
	}
}

func TestLoadUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	statePath := filepath.Join(dir, "state.bin")
	if err := os.WriteFile(statePath, mustEncode(t, sampleSections()), 0o000); err != nil {
		t.Fatal(err)
	}
	if f, err := os.Open(statePath); err == nil {
		_ = f.Close()
		t.Skip("skipping: a mode 0000 file is readable by this user (running as root?)")
	}
	s := openTestStore(t, dir, nil, prometheus.NewRegistry())
	got, err := s.Load()
	if err == nil {
		t.Fatalf("Load of an unreadable file = %q, nil; want an error", got)
	}
	if !strings.Contains(err.Error(), statePath) || !errors.Is(err, os.ErrPermission) {
		t.Errorf("error %q does not name %s or is not a permission error", err, statePath)
	}
	if _, err := os.Stat(statePath); err != nil {
		t.Errorf("unreadable file was moved: %v", err)
	}
	if n := testutil.ToFloat64(s.metrics.corruptFiles); n != 0 {
		t.Errorf("reliabilityd_state_corrupt_files_total = %v, want 0", n)
	}
}

func TestReadBoundedRefusesLargeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.bin")
	if err := os.WriteFile(path, make([]byte, 100), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := readBounded(path, 99)
	assertFormatKind(t, err, kindTooLarge)
	b, err := readBounded(path, 100)
	if err != nil || len(b) != 100 {
		t.Errorf("readBounded at the limit = %d bytes, %v; want 100, nil", len(b), err)
	}
}

func TestStoreMetricsShareRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	dir := t.TempDir()
	first, err := OpenStore(dir, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Save(sampleSections()); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening on the same registry reuses the registered series.
	second := openTestStore(t, dir, nil, reg)
	if second.metrics.sizeBytes != first.metrics.sizeBytes {
		t.Errorf("reopened store registered a new size gauge instead of reusing the existing one")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP reliabilityd_state_corrupt_files_total State files found corrupt at load and moved aside.
# TYPE reliabilityd_state_corrupt_files_total counter
reliabilityd_state_corrupt_files_total 0
`), "reliabilityd_state_corrupt_files_total"); err != nil {
		t.Error(err)
	}
}

func entryNames(entries []os.DirEntry) []string {
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte(stateMagic))
	f.Add(mustEncode(f, map[string][]byte{}))
	f.Add(mustEncode(f, sampleSections()))
	f.Add(mustEncode(f, map[string][]byte{"a": bytes.Repeat([]byte{1}, 300)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		sections, err := decodeState(b)
		if err != nil {
			var fe *formatError
			if !errors.As(err, &fe) {
				t.Fatalf("decodeState error %v is not a formatError", err)
			}
			return
		}
		again, err := encodeState(sections)
		if err != nil {
			t.Fatalf("re-encoding decoded sections: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %q\nwant %q", again, b)
		}
	})
}

func BenchmarkSave(b *testing.B) {
	sections := make(map[string][]byte, 10)
	for i := range 10 {
		data := make([]byte, 1<<20)
		for j := range data {
			data[j] = byte(i + j)
		}
		sections["section-"+string(rune('a'+i))] = data
	}
	s, err := OpenStore(b.TempDir(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetBytes(10 << 20)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Save(sections); err != nil {
			b.Fatal(err)
		}
	}
}
