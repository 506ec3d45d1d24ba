package slo

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// File layout, version 1 (docs/state.md):
//
//	magic "RLBDSTATE\n" | uint32 BE version | uvarint count |
//	count × (uvarint name length | name | uvarint data length | data) |
//	uint32 BE CRC32-Castagnoli of everything before it
const (
	stateMagic   = "RLBDSTATE\n"
	stateVersion = 1

	// MaxSectionBytes bounds one section's data so a damaged length field
	// can never make the reader allocate or trust absurd sizes.
	MaxSectionBytes = 1 << 30
	// MaxSectionNameBytes bounds a section's name.
	MaxSectionNameBytes = 256
	// maxStateFileBytes bounds the whole file: Load refuses to read more
	// than this into memory, and Save refuses to write what Load would
	// refuse.
	maxStateFileBytes = 4 << 30

	headerBytes = len(stateMagic) + 4
	crcBytes    = 4

	stateFileName = "state.bin"
	tempFileName  = stateFileName + ".tmp"
	lockFileName  = "lock"
	corruptInfix  = ".corrupt-"

	// maxCorruptSuffix bounds the search for a free name when several
	// corrupt files are moved aside within the same second.
	maxCorruptSuffix = 1000

	dirPerm  = 0o750
	filePerm = 0o640
)

// Store reads and writes the daemon's state file in one directory, which it
// locks for its whole life so that two daemons never write the same state.
// Its methods are safe for concurrent use; in the daemon the Flusher is its
// only writer.
type Store struct {
	dir      string
	path     string
	tempPath string
	logger   *slog.Logger
	metrics  storeMetrics
	// now names corrupt files; tests replace it.
	now func() time.Time

	mu       sync.Mutex // serializes file operations; guards lockFile
	lockFile *os.File   // nil once closed
}

type storeMetrics struct {
	corruptFiles prometheus.Counter
	sizeBytes    prometheus.Gauge
}

func newStoreMetrics(reg prometheus.Registerer) (storeMetrics, error) {
	var m storeMetrics
	var err error
	m.corruptFiles, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reliabilityd_state_corrupt_files_total",
		Help: "State files found corrupt at load and moved aside.",
	}))
	if err != nil {
		return m, err
	}
	m.sizeBytes, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "reliabilityd_state_size_bytes",
		Help: "Size of the state file as last loaded or saved.",
	}))
	return m, err
}

// register registers c on reg, or returns the collector already registered
// under the same description, so that a store reopened on the same registry
// (tests, a restart of the component) keeps counting on the same series.
// A nil reg registers nothing.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register state metrics: %w", err)
}

// OpenStore opens the state directory dir: it creates it (mode 0750) if
// missing, takes an exclusive lock on dir/lock, checks that it can create
// files there and removes a temporary file left by a crash during Save.
// It starts no goroutines. A second OpenStore on a directory locked by a
// live Store, in this or another process, fails with an error naming dir.
// A nil logger discards logs; a nil reg registers no metrics.
func OpenStore(dir string, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("create state directory %q: %w", dir, err)
	}
	lockFile, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:      dir,
		path:     filepath.Join(dir, stateFileName),
		tempPath: filepath.Join(dir, tempFileName),
		logger:   logger,
		now:      time.Now,
		lockFile: lockFile,
	}
	if err := s.prepareDir(); err != nil {
		_ = s.Close()
		return nil, err
	}
	if s.metrics, err = newStoreMetrics(reg); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("state directory %q: %w", dir, err)
	}
	return s, nil
}

// lockDir takes a non-blocking exclusive flock on dir/lock. The lock dies
// with the process, so a crash never leaves a stale lock behind; the lock
// file itself is left in place because removing it would race with the
// next daemon taking it.
func lockDir(dir string) (*os.File, error) {
	lockPath := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("open lock file of state directory %q: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %q is locked by another process (is another reliabilityd using the same --storage.path?): %w", dir, err)
		}
		return nil, fmt.Errorf("lock state directory %q: %w", dir, err)
	}
	// The pid is only a hint for whoever inspects a locked directory.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// prepareDir checks the directory is writable now rather than at the first
// flush, minutes later, and removes the temporary file of a Save that a
// crash interrupted (it was never renamed, so it holds nothing of value).
func (s *Store) prepareDir() error {
	probe, err := os.CreateTemp(s.dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("state directory %q is not writable: %w", s.dir, err)
	}
	name := probe.Name()
	closeErr := probe.Close()
	if err := errors.Join(closeErr, os.Remove(name)); err != nil {
		return fmt.Errorf("state directory %q: write check: %w", s.dir, err)
	}
	if err := os.Remove(s.tempPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale temporary state file %q: %w", s.tempPath, err)
	}
	return nil
}

// Dir returns the state directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the path of the state file.
func (s *Store) Path() string { return s.path }

// Load reads the state file and returns its sections by name. The caller
// owns the returned map and slices. A missing file yields an empty map. A
// corrupt file (bad magic, unknown version, truncated, bad checksum,
// trailing garbage) is renamed to state.bin.corrupt-<unix seconds>, logged
// and counted, and Load returns an empty map and nil: the daemon runs on
// with empty state and the evidence is kept. Any other failure to read the
// file is returned as an error.
func (s *Store) Load() (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockFile == nil {
		return nil, fmt.Errorf("load state file %q: store is closed", s.path)
	}
	data, err := readBounded(s.path, maxStateFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		s.metrics.sizeBytes.Set(0)
		return map[string][]byte{}, nil
	}
	var formatErr *formatError
	if err != nil && !errors.As(err, &formatErr) {
		return nil, fmt.Errorf("read state file %q: %w", s.path, err)
	}
	sections := map[string][]byte{}
	if err == nil {
		sections, err = decodeState(data)
	}
	if err != nil {
		return s.moveAside(err)
	}
	s.metrics.sizeBytes.Set(float64(len(data)))
	return sections, nil
}

// readBounded reads path whole unless it is larger than limit, which is
// reported as a formatError: such a file cannot have been written by Save.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.Size() > limit {
		return nil, &formatError{kind: kindTooLarge, msg: fmt.Sprintf("file is %d bytes, more than the %d bytes allowed", info.Size(), limit)}
	}
	// The size is only a hint: read to EOF so a file that grew since Stat
	// is still read consistently, within the limit.
	buf := bytes.NewBuffer(make([]byte, 0, info.Size()+1))
	n, err := buf.ReadFrom(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, &formatError{kind: kindTooLarge, msg: fmt.Sprintf("file is more than the %d bytes allowed", limit)}
	}
	return buf.Bytes(), nil
}

// moveAside renames the corrupt state file out of the way so the next Save
// does not overwrite the evidence, and reports an empty state.
func (s *Store) moveAside(cause error) (map[string][]byte, error) {
	s.metrics.corruptFiles.Inc()
	s.metrics.sizeBytes.Set(0)
	target, err := s.corruptPath()
	if err != nil {
		return nil, fmt.Errorf("state file %q is corrupt (%w) and cannot be moved aside: %w", s.path, cause, err)
	}
	if err := os.Rename(s.path, target); err != nil {
		return nil, fmt.Errorf("state file %q is corrupt (%w) and cannot be moved aside: %w", s.path, cause, err)
	}
	if err := syncDir(s.dir); err != nil {
		s.logger.Warn("Cannot sync state directory after moving corrupt state file", "dir", s.dir, "err", err)
	}
	s.logger.Warn("State file is corrupt; moved it aside and starting with empty state",
		"file", s.path, "moved_to", target, "err", cause)
	return map[string][]byte{}, nil
}

// PreserveCopy copies the state file to state.bin.corrupt-<unix seconds>,
// leaving it in place, and counts it as a corrupt file. The daemon calls it
// when the file is sound but a section in it cannot be read: the next
// flush would overwrite that section. It returns the copy's path.
func (s *Store) PreserveCopy() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.path)
	if err != nil {
		return "", fmt.Errorf("reading state file: %w", err)
	}
	target, err := s.corruptPath()
	if err != nil {
		return "", err
	}
	if err := writeFileSynced(target, data); err != nil {
		return "", err
	}
	s.metrics.corruptFiles.Inc()
	return target, nil
}

// corruptPath returns state.bin.corrupt-<unix seconds>, with a numeric
// suffix when that name is taken (two corrupt files within a second), as
// rename would silently replace an earlier piece of evidence.
func (s *Store) corruptPath() (string, error) {
	base := s.path + corruptInfix + strconv.FormatInt(s.now().Unix(), 10)
	candidate := base
	for i := 1; i <= maxCorruptSuffix; i++ {
		_, err := os.Lstat(candidate)
		if errors.Is(err, fs.ErrNotExist) {
			return candidate, nil
		}
		if err != nil {
			return "", err
		}
		candidate = base + "." + strconv.Itoa(i)
	}
	return "", fmt.Errorf("more than %d corrupt state files named %q*", maxCorruptSuffix, base)
}

// Save writes sections as the new state file atomically: a crash at any
// point leaves either the previous file or the new one, never a mix. It
// writes state.bin.tmp, fsyncs it, renames it over state.bin and fsyncs the
// directory so the rename itself is durable. The output is deterministic:
// sections are written sorted by name. Save does not retain sections.
func (s *Store) Save(sections map[string][]byte) error {
	names, size, err := planEncoding(sections)
	if err != nil {
		return fmt.Errorf("save state file %q: %w", s.path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockFile == nil {
		return fmt.Errorf("save state file %q: store is closed", s.path)
	}
	if err := s.writeTemp(names, sections); err != nil {
		_ = os.Remove(s.tempPath)
		return err
	}
	if err := os.Rename(s.tempPath, s.path); err != nil {
		_ = os.Remove(s.tempPath)
		return fmt.Errorf("rename %q to %q: %w", s.tempPath, s.path, err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("sync state directory %q: %w", s.dir, err)
	}
	s.metrics.sizeBytes.Set(float64(size))
	return nil
}

func (s *Store) writeTemp(names []string, sections map[string][]byte) error {
	f, err := os.OpenFile(s.tempPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, filePerm)
	if err != nil {
		return fmt.Errorf("create temporary state file %q: %w", s.tempPath, err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	err = encodeSorted(w, names, sections)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write temporary state file %q: %w", s.tempPath, err)
	}
	return nil
}

// writeFileSynced writes a new file with data and fsyncs it and its
// directory.
func writeFileSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return fmt.Errorf("create %q: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %q: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir fsyncs a directory so that a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if closeErr := d.Close(); err == nil {
		err = closeErr
	}
	return err
}

// Close releases the directory lock. Further Load and Save calls fail.
// Closing twice is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockFile == nil {
		return nil
	}
	f := s.lockFile
	s.lockFile = nil
	// Closing the descriptor drops the flock as well; unlocking first makes
	// the release explicit even if the descriptor were duplicated.
	unlockErr := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if err := errors.Join(unlockErr, f.Close()); err != nil {
		return fmt.Errorf("unlock state directory %q: %w", s.dir, err)
	}
	return nil
}

// formatErrorKind classifies why a state file could not be decoded.
type formatErrorKind int

// The kinds of formatError.
const (
	kindBadMagic formatErrorKind = iota + 1
	kindUnknownVersion
	kindTruncated
	kindBadChecksum
	kindTrailingGarbage
	// kindMalformed is a file that breaks the format's rules (unsorted,
	// duplicate or oversized sections, overlong varints). Save never
	// writes one, so with a valid checksum it means a buggy writer.
	kindMalformed
	kindTooLarge
)

// formatError is returned by the decoder for a file that is not a valid
// state file; Load moves such files aside.
type formatError struct {
	kind formatErrorKind
	msg  string
}

func (e *formatError) Error() string { return "invalid state file: " + e.msg }

func formatErrorf(kind formatErrorKind, format string, args ...any) *formatError {
	return &formatError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// validateSection checks one section against the format's bounds. It takes
// the data length, not the data, so the bound is testable without
// allocating a gibibyte.
func validateSection(name string, dataLen int) error {
	switch {
	case name == "":
		return errors.New("section name is empty")
	case len(name) > MaxSectionNameBytes:
		return fmt.Errorf("section name %.32q... is %d bytes, more than %d", name, len(name), MaxSectionNameBytes)
	case dataLen > MaxSectionBytes:
		return fmt.Errorf("section %q is %d bytes, more than %d", name, dataLen, MaxSectionBytes)
	}
	return nil
}

// planEncoding validates sections and returns their names sorted and the
// exact size of the encoded file.
func planEncoding(sections map[string][]byte) ([]string, int64, error) {
	names := make([]string, 0, len(sections))
	size := int64(headerBytes + uvarintSize(uint64(len(sections))) + crcBytes)
	for name, data := range sections {
		if err := validateSection(name, len(data)); err != nil {
			return nil, 0, err
		}
		names = append(names, name)
		size += int64(uvarintSize(uint64(len(name))) + len(name) + uvarintSize(uint64(len(data))) + len(data))
	}
	if size > maxStateFileBytes {
		return nil, 0, fmt.Errorf("state would be %d bytes, more than the %d bytes allowed", size, int64(maxStateFileBytes))
	}
	slices.Sort(names)
	return names, size, nil
}

// encodeState returns the encoded file for sections.
func encodeState(sections map[string][]byte) ([]byte, error) {
	names, size, err := planEncoding(sections)
	if err != nil {
		return nil, err
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if err := encodeSorted(buf, names, sections); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// encodeSorted streams the file to w, checksumming as it goes, so that a
// large state is never copied into one buffer first.
func encodeSorted(w io.Writer, names []string, sections map[string][]byte) error {
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	out := io.MultiWriter(w, crc)
	var scratch [binary.MaxVarintLen64]byte
	writeUvarint := func(v uint64) error {
		_, err := out.Write(binary.AppendUvarint(scratch[:0], v))
		return err
	}
	header := binary.BigEndian.AppendUint32([]byte(stateMagic), stateVersion)
	if _, err := out.Write(header); err != nil {
		return err
	}
	if err := writeUvarint(uint64(len(names))); err != nil {
		return err
	}
	for _, name := range names {
		data := sections[name]
		if err := writeUvarint(uint64(len(name))); err != nil {
			return err
		}
		if _, err := io.WriteString(out, name); err != nil {
			return err
		}
		if err := writeUvarint(uint64(len(data))); err != nil {
			return err
		}
		if _, err := out.Write(data); err != nil {
			return err
		}
	}
	_, err := w.Write(binary.BigEndian.AppendUint32(scratch[:0], crc.Sum32()))
	return err
}

// decodeState parses a state file. The returned slices alias b. It accepts
// only the canonical encoding (sorted unique names, minimal varints, no
// trailing bytes), so that whatever it accepts re-encodes to the same bytes.
// Rule violations are reported only after the checksum is verified, so a
// damaged byte is reported as damage, not as a rule violation.
func decodeState(b []byte) (map[string][]byte, error) {
	if err := checkHeader(b); err != nil {
		return nil, err
	}
	p := sectionParser{buf: b, pos: headerBytes}
	sections, end, err := p.parse()
	if err != nil {
		return nil, err
	}
	if len(b)-end < crcBytes {
		return nil, formatErrorf(kindTruncated, "file ends %d bytes into the 4-byte checksum", len(b)-end)
	}
	want := binary.BigEndian.Uint32(b[end:])
	if got := crc32.Checksum(b[:end], crc32.MakeTable(crc32.Castagnoli)); got != want {
		return nil, formatErrorf(kindBadChecksum, "checksum mismatch: file says %08x, content has %08x", want, got)
	}
	if extra := len(b) - end - crcBytes; extra > 0 {
		return nil, formatErrorf(kindTrailingGarbage, "%d bytes of trailing garbage after the checksum", extra)
	}
	if p.ruleErr != nil {
		return nil, p.ruleErr
	}
	return sections, nil
}

func checkHeader(b []byte) error {
	if len(b) < len(stateMagic) {
		if bytes.HasPrefix([]byte(stateMagic), b) {
			return formatErrorf(kindTruncated, "file is %d bytes, shorter than the magic", len(b))
		}
		return formatErrorf(kindBadMagic, "bad magic: not a reliabilityd state file")
	}
	if string(b[:len(stateMagic)]) != stateMagic {
		return formatErrorf(kindBadMagic, "bad magic %q: not a reliabilityd state file", b[:len(stateMagic)])
	}
	if len(b) < headerBytes {
		return formatErrorf(kindTruncated, "file is %d bytes, shorter than the header", len(b))
	}
	if v := binary.BigEndian.Uint32(b[len(stateMagic):]); v != stateVersion {
		return formatErrorf(kindUnknownVersion, "unsupported format version %d (this reliabilityd reads version %d; was the file written by a newer release?)", v, stateVersion)
	}
	return nil
}

// sectionParser walks the sections of a version 1 file. Running out of
// bytes ends the walk at once; rule violations are remembered in ruleErr
// and the walk goes on, so the checksum can be checked first.
type sectionParser struct {
	buf      []byte
	pos      int
	ruleErr  error
	lastName string
}

func (p *sectionParser) parse() (map[string][]byte, int, error) {
	count, err := p.uvarint("section count")
	if err != nil {
		return nil, 0, err
	}
	// Every section takes at least 3 bytes, which bounds both the loop and
	// the map hint whatever the count field says.
	if maxCount := uint64(len(p.buf)-p.pos) / 3; count > maxCount {
		return nil, 0, formatErrorf(kindTruncated, "section count %d does not fit in the %d bytes left", count, len(p.buf)-p.pos)
	}
	sections := make(map[string][]byte, count)
	for i := range int(count) {
		name, data, err := p.section(i)
		if err != nil {
			return nil, 0, err
		}
		sections[name] = data
	}
	return sections, p.pos, nil
}

func (p *sectionParser) section(i int) (string, []byte, error) {
	nameLen, err := p.uvarint(fmt.Sprintf("name length of section %d", i))
	if err != nil {
		return "", nil, err
	}
	name, err := p.bytes(nameLen, fmt.Sprintf("name of section %d", i))
	if err != nil {
		return "", nil, err
	}
	dataLen, err := p.uvarint(fmt.Sprintf("data length of section %q", name))
	if err != nil {
		return "", nil, err
	}
	data, err := p.bytes(dataLen, fmt.Sprintf("data of section %q", name))
	if err != nil {
		return "", nil, err
	}
	nameStr := string(name)
	if err := validateSection(nameStr, len(data)); err != nil {
		p.breakRule("%v", err)
	}
	if i > 0 && nameStr <= p.lastName {
		p.breakRule("section %q follows %q: names must be sorted and unique", nameStr, p.lastName)
	}
	p.lastName = nameStr
	return nameStr, data, nil
}

func (p *sectionParser) breakRule(format string, args ...any) {
	if p.ruleErr == nil {
		p.ruleErr = formatErrorf(kindMalformed, format, args...)
	}
}

func (p *sectionParser) uvarint(what string) (uint64, error) {
	v, n := binary.Uvarint(p.buf[p.pos:])
	switch {
	case n == 0:
		return 0, formatErrorf(kindTruncated, "file ends inside the %s at offset %d", what, p.pos)
	case n < 0:
		return 0, formatErrorf(kindMalformed, "%s at offset %d overflows 64 bits", what, p.pos)
	}
	if n != uvarintSize(v) {
		p.breakRule("%s at offset %d is not minimally encoded", what, p.pos)
	}
	p.pos += n
	return v, nil
}

func (p *sectionParser) bytes(n uint64, what string) ([]byte, error) {
	if left := uint64(len(p.buf) - p.pos); n > left {
		return nil, formatErrorf(kindTruncated, "%s at offset %d is %d bytes but only %d are left", what, p.pos, n, left)
	}
	b := p.buf[p.pos : p.pos+int(n) : p.pos+int(n)]
	p.pos += int(n)
	return b, nil
}

func uvarintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
