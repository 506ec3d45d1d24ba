package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem in a configuration, located both by position in
// the file (when known) and by field path, e.g.
// `reliability.yml:14:9: services[0].probes[1].http.url: must be ...`.
type FieldError struct {
	// File is the configuration file; empty for a configuration built in code.
	File string
	// Line and Column are 1-based; 0 when unknown (YAML syntax errors carry
	// no column, configurations built in code no position at all).
	Line   int
	Column int
	// Path is the field path with list indexes, e.g. services[0].name;
	// empty when the problem concerns the whole file.
	Path string
	Msg  string
}

// Error formats e as FILE:LINE:COLUMN: PATH: MSG, leaving out what is
// unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	location := e.File
	if e.Line > 0 {
		location += ":" + strconv.Itoa(e.Line)
		if e.Column > 0 {
			location += ":" + strconv.Itoa(e.Column)
		}
		if e.File == "" {
			location = "line " + location[1:]
		}
	}
	if location != "" {
		b.WriteString(location + ": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a configuration, sorted by position. Load,
// Parse and Validate return it as their error, so callers can print it whole
// or take it apart with errors.As.
type Errors []*FieldError

// Error joins the problems one per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, fe := range e {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives errors.Is and errors.As access to each FieldError.
func (e Errors) Unwrap() []error {
	errs := make([]error, len(e))
	for i, fe := range e {
		errs[i] = fe
	}
	return errs
}

// sortErrors orders errors by position; errors without a position go last,
// by path, so the output is stable.
func sortErrors(errs Errors) {
	key := func(fe *FieldError) (int, int) {
		if fe.Line == 0 {
			return int(^uint(0) >> 1), 0
		}
		return fe.Line, fe.Column
	}
	sort.SliceStable(errs, func(i, j int) bool {
		li, ci := key(errs[i])
		lj, cj := key(errs[j])
		if li != lj {
			return li < lj
		}
		if ci != cj {
			return ci < cj
		}
		return errs[i].Path < errs[j].Path
	})
}

// Load reads, decodes, defaults and validates the configuration file
// filename. Problems in the file come back as Errors; a file that cannot be
// read as an error naming it.
func Load(filename string) (*Config, error) {
	data, err := os.ReadFile(filename)
	if err != nil {
		return nil, fmt.Errorf("reading config file %q: %w", filename, err)
	}
	return Parse(data, filename)
}

// Parse decodes, defaults and validates a configuration held in data.
// filename names the source in errors, and relative paths in the
// configuration are resolved against its directory (made absolute, so
// resolving is idempotent). All problems are reported at once, as Errors.
func Parse(data []byte, filename string) (*Config, error) {
	cfg := &Config{Global: DefaultGlobalConfig, Filename: filename}

	root, err := parseNodes(data)
	if err != nil {
		return nil, syntaxError(data, filename, err)
	}
	index := newNodeIndex(root)

	decodeErrs, err := decode(data, cfg, index)
	if err != nil {
		// Not a type error: the decoder stopped (e.g. excessive aliasing),
		// so the partial config says nothing worth validating.
		return nil, Errors{{File: filename, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}

	resolveDefaults(cfg, index.isSet)
	resolvePaths(cfg, configDir(filename))

	errs := make(Errors, 0, len(decodeErrs))
	errs = append(errs, decodeErrs...)
	errs = append(errs, suppressed(cfg.validate(), decodeErrs)...)
	if len(errs) == 0 {
		return cfg, nil
	}
	for _, fe := range errs {
		fe.File = filename
		if fe.Line == 0 {
			fe.Line, fe.Column = index.position(fe.Path)
		}
	}
	errs = dedupe(errs)
	sortErrors(errs)
	return nil, errs
}

// parseNodes parses data into a node tree for positions. A file holds one
// document: a second one would be silently ignored by the decoder, so it is
// reported. An empty file gives a nil root.
func parseNodes(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &extraDocumentError{line: extra.Line}
	case !errors.Is(err, io.EOF):
		return nil, err
	}
	return &root, nil
}

type extraDocumentError struct{ line int }

func (e *extraDocumentError) Error() string {
	return fmt.Sprintf("yaml: line %d: a configuration file holds one YAML document, found a second one", e.line)
}

// syntaxError turns an error of the YAML parser into Errors. The line
// yaml.v3 reports is reliable only for scanner errors: parser errors
// ("did not find expected key") report the 0-based line of the enclosing
// collection, and errors on the first line report none. So unless the
// reported line is known to be good, the line is found as the shortest
// prefix of the file that fails with the same message.
func syntaxError(data []byte, filename string, err error) error {
	var extra *extraDocumentError
	if errors.As(err, &extra) {
		return Errors{{File: filename, Line: extra.line, Msg: "a configuration file holds one YAML document, found a second one"}}
	}
	line, _, msg := splitPosition(strings.TrimPrefix(err.Error(), "yaml: "))
	if line == 0 || isParserProblem(msg) {
		if found := failingLine(data, msg); found > 0 {
			line = found
		}
	}
	return Errors{{File: filename, Line: line, Msg: "invalid YAML: " + msg}}
}

// isParserProblem tells the messages of yaml.v3's parser (as opposed to its
// scanner) apart.
func isParserProblem(msg string) bool {
	for _, prefix := range []string{"did not find expected ", "found duplicate %", "found incompatible YAML document", "found undefined tag handle"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// failingLine returns the smallest number of leading lines of data that
// fail to parse with msg, or 0. The parser stops at the first problem, so
// every prefix that contains the problem fails with it: a binary search
// needs O(log lines) parses.
func failingLine(data []byte, msg string) int {
	ends := lineEnds(data)
	fails := func(lines int) bool {
		_, err := parseNodes(data[:ends[lines-1]])
		if err == nil {
			return false
		}
		_, _, got := splitPosition(strings.TrimPrefix(err.Error(), "yaml: "))
		return got == msg
	}
	lines := sort.Search(len(ends), func(i int) bool { return fails(i + 1) }) + 1
	if lines > len(ends) {
		return 0
	}
	return lines
}

// lineEnds returns the offset just past each line of data.
func lineEnds(data []byte) []int {
	var ends []int
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	return ends
}

// decode decodes data into cfg with unknown fields rejected. Type errors
// are returned located and reworded; any other error stops decoding.
func decode(data []byte, cfg *Config, index *nodeIndex) (Errors, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(cfg)
	var typeErr *yaml.TypeError
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return nil, nil
	case errors.As(err, &typeErr):
		errs := make(Errors, 0, len(typeErr.Errors))
		for _, msg := range typeErr.Errors {
			errs = append(errs, index.locate(msg))
		}
		return errs, nil
	}
	return nil, err
}

// suppressed drops validation errors about fields whose decoding already
// failed: they would only repeat the decode error in other words (a list
// given for url also leaves url empty). A duplicate key leaves its whole
// mapping undecoded, so it covers its siblings too.
func suppressed(validation, decoding Errors) Errors {
	var covered []string
	for _, fe := range decoding {
		if strings.HasPrefix(fe.Msg, "duplicate key ") {
			covered = append(covered, parentPath(fe.Path))
		} else {
			covered = append(covered, fe.Path)
		}
	}
	kept := validation[:0]
	for _, fe := range validation {
		if !coveredBy(fe.Path, covered) {
			kept = append(kept, fe)
		}
	}
	return kept
}

func coveredBy(path string, covered []string) bool {
	for _, c := range covered {
		if c == "" || path == c || strings.HasPrefix(path, c+".") || strings.HasPrefix(path, c+"[") {
			return true
		}
	}
	return false
}

// dedupe drops repeated errors: an anchored node decoded through several
// aliases fails once per alias.
func dedupe(errs Errors) Errors {
	seen := make(map[FieldError]bool, len(errs))
	kept := errs[:0]
	for _, fe := range errs {
		if !seen[*fe] {
			seen[*fe] = true
			kept = append(kept, fe)
		}
	}
	return kept
}

// resolveDefaults fills what defaults to global settings. isSet tells
// whether a field path was written in the file, so that an explicit zero
// stays zero (and fails validation) rather than being replaced. A defaulted
// timeout is capped at the interval; an explicit one is left for validation
// to reject.
func resolveDefaults(cfg *Config, isSet func(path string) bool) {
	global := &cfg.Global
	if global.ProbeInterval > 0 && global.ProbeTimeout > global.ProbeInterval && !isSet("global.probe_timeout") {
		global.ProbeTimeout = global.ProbeInterval
	}
	resolvePrometheusSourceDefaults(cfg.PrometheusSources, isSet)
	for i := range cfg.Services {
		if r := cfg.Services[i].Recovery; r != nil {
			resolveRecoveryDefaults(r, servicePath(i)+".recovery", isSet)
		}
		for j := range cfg.Services[i].SLOs {
			slo := &cfg.Services[i].SLOs[j]
			if slo.Window == 0 && slo.Calendar == "" && !isSet(sloPath(i, j)+".window") {
				slo.Window = DefaultSLOWindow
			}
		}
		for j := range cfg.Services[i].Capacity {
			resource := &cfg.Services[i].Capacity[j]
			path := capacityPath(i, j)
			if resource.Interval == 0 && !isSet(path+".interval") {
				resource.Interval = DefaultCapacityConfig.Interval
			}
			if resource.Timeout == 0 && !isSet(path+".timeout") {
				resource.Timeout = DefaultCapacityConfig.Timeout
				if resource.Interval > 0 {
					resource.Timeout = min(resource.Timeout, resource.Interval)
				}
			}
			if !isSet(path + ".forecast") {
				resource.Forecast = DefaultForecastConfig
			}
		}
		for j := range cfg.Services[i].Probes {
			probe := &cfg.Services[i].Probes[j]
			path := probePath(i, j)
			if probe.Interval == 0 && !isSet(path+".interval") {
				probe.Interval = global.ProbeInterval
			}
			if probe.Timeout == 0 && !isSet(path+".timeout") {
				probe.Timeout = global.ProbeTimeout
				if probe.Interval > 0 {
					probe.Timeout = min(probe.Timeout, probe.Interval)
				}
			}
		}
	}
}

// configDir is the absolute directory relative paths are resolved against;
// "" (leave them alone) for a configuration without a file.
func configDir(filename string) string {
	if filename == "" {
		return ""
	}
	dir := filepath.Dir(filename)
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// resolvePaths makes the file paths of cfg absolute against dir, so probers
// read the same files whatever the daemon's working directory.
func resolvePaths(cfg *Config, dir string) {
	if dir == "" {
		return
	}
	resolve := func(path *string) {
		if *path != "" && !filepath.IsAbs(*path) {
			*path = filepath.Join(dir, *path)
		}
	}
	resolveTLS := func(tc *TLSConfig) { tc.resolvePaths(resolve) }
	for i := range cfg.PrometheusSources {
		cfg.PrometheusSources[i].resolvePaths(resolve)
	}
	for i := range cfg.Services {
		if r := cfg.Services[i].Recovery; r != nil {
			for j := range r.Backups {
				if f := r.Backups[j].File; f != nil {
					resolve(&f.Glob)
				}
				if h := r.Backups[j].HTTP; h != nil {
					resolve(&h.BearerTokenFile)
					resolveTLS(&h.TLSConfig)
				}
			}
		}
		for j := range cfg.Services[i].Capacity {
			source := &cfg.Services[i].Capacity[j].Source
			resolve(&source.Filesystem)
			if source.Process != nil {
				resolve(&source.Process.PIDFile)
			}
		}
		for j := range cfg.Services[i].Probes {
			probe := &cfg.Services[i].Probes[j]
			if h := probe.HTTP; h != nil {
				resolveTLS(&h.TLSConfig)
				resolve(&h.BearerTokenFile)
				if h.BasicAuth != nil {
					resolve(&h.BasicAuth.PasswordFile)
				}
			}
			if t := probe.TCP; t != nil {
				resolveTLS(&t.TLSConfig)
			}
			if r, ok := probe.Section().(pathResolver); ok {
				r.resolvePaths(resolve)
			}
		}
	}
}

// pathResolver is implemented by probe sections with file paths of their
// own: resolvePaths calls resolve with a pointer to each path.
type pathResolver interface {
	resolvePaths(resolve func(path *string))
}

// resolvePaths calls resolve with each file path of tc.
func (tc *TLSConfig) resolvePaths(resolve func(path *string)) {
	resolve(&tc.CAFile)
	resolve(&tc.CertFile)
	resolve(&tc.KeyFile)
}

// String returns the effective configuration (defaults filled, paths
// resolved) as YAML. It holds no secrets: credentials are only file paths.
func (c *Config) String() string {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return fmt.Sprintf("# cannot render the configuration: %v\n", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Sprintf("# cannot render the configuration: %v\n", err)
	}
	return b.String()
}

func servicePath(i int) string  { return "services[" + strconv.Itoa(i) + "]" }
func probePath(i, j int) string { return servicePath(i) + ".probes[" + strconv.Itoa(j) + "]" }
func sloPath(i, j int) string   { return servicePath(i) + ".slos[" + strconv.Itoa(j) + "]" }
func capacityPath(i, j int) string {
	return servicePath(i) + ".capacity[" + strconv.Itoa(j) + "]"
}

// joinPath appends a struct field name to a path.
func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// parentPath strips the last element (field, index or map key) of a path.
func parentPath(path string) string {
	if strings.HasSuffix(path, `"]`) {
		if i := strings.LastIndex(path, `["`); i >= 0 {
			return path[:i]
		}
	}
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndex(path, "["); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[:i]
	}
	return ""
}

// nodeIndex locates the nodes of a parsed file by field path and by line,
// so that decode and validation errors point at what the user wrote. Each
// node also carries the Go type it decodes into, which tells apart several
// candidates on one line (flow style) and words type errors.
type nodeIndex struct {
	byPath map[string]*yaml.Node
	byLine map[int][]indexEntry
	// used marks the nodes errors were attributed to, see pick.
	used   map[*yaml.Node]bool
	fields map[reflect.Type]map[string]reflect.Type
}

type indexEntry struct {
	node *yaml.Node
	path string
	// key marks a mapping key; path is then the path of its value and typ
	// the type of the mapping holding it.
	key bool
	typ reflect.Type
}

func newNodeIndex(root *yaml.Node) *nodeIndex {
	index := &nodeIndex{byPath: map[string]*yaml.Node{}, byLine: map[int][]indexEntry{}, used: map[*yaml.Node]bool{},
		fields: map[reflect.Type]map[string]reflect.Type{}}
	if root != nil {
		index.walk(root, "", reflect.TypeOf(Config{}))
	}
	return index
}

// walk records n and its descendants. Aliases are recorded but not
// followed: the anchored node is indexed where it is written, which is
// also where the decoder reports it.
func (ix *nodeIndex) walk(n *yaml.Node, path string, typ reflect.Type) {
	for typ != nil && typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		for _, child := range n.Content {
			ix.walk(child, path, typ)
		}
		return
	}
	if _, ok := ix.byPath[path]; !ok {
		ix.byPath[path] = n
	}
	ix.byLine[n.Line] = append(ix.byLine[n.Line], indexEntry{node: n, path: path, typ: typ})
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			childPath, childType := ix.childOf(path, typ, key.Value)
			if key.Kind != yaml.ScalarNode {
				// A collection as a key has no name; only the decoder's
				// complaint about it is worth locating.
				childPath, childType = path, nil
			}
			ix.byLine[key.Line] = append(ix.byLine[key.Line], indexEntry{node: key, path: childPath, key: true, typ: typ})
			ix.walk(value, childPath, childType)
		}
	case yaml.SequenceNode:
		var elem reflect.Type
		if typ != nil && (typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array) {
			elem = typ.Elem()
		}
		for i, item := range n.Content {
			ix.walk(item, path+"["+strconv.Itoa(i)+"]", elem)
		}
	}
}

// childOf returns the path and Go type of the value under key in a mapping
// decoded into typ (nil when the key is unknown).
func (ix *nodeIndex) childOf(path string, typ reflect.Type, key string) (string, reflect.Type) {
	if typ == nil {
		return joinPath(path, key), nil
	}
	switch typ.Kind() {
	case reflect.Map:
		return path + "[" + strconv.Quote(key) + "]", typ.Elem()
	case reflect.Struct:
		return joinPath(path, key), ix.fieldTypes(typ)[key]
	}
	return joinPath(path, key), nil
}

// fieldTypes maps the keys yaml.v3 decodes into a struct to their field
// types. Cached per index: reflecting on every key of a large file costs
// more than parsing it.
func (ix *nodeIndex) fieldTypes(typ reflect.Type) map[string]reflect.Type {
	if fields, ok := ix.fields[typ]; ok {
		return fields
	}
	fields := map[string]reflect.Type{}
	for _, field := range reflect.VisibleFields(typ) {
		if name := yamlName(field); name != "" {
			fields[name] = field.Type
		}
	}
	ix.fields[typ] = fields
	return fields
}

// yamlName is the key yaml.v3 decodes into field, "" for none.
func yamlName(field reflect.StructField) string {
	if !field.IsExported() || field.Anonymous {
		return ""
	}
	name, _, _ := strings.Cut(field.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return strings.ToLower(field.Name)
	}
	return name
}

// yamlFieldNames lists the keys a struct accepts, for suggestions.
func yamlFieldNames(typ reflect.Type) []string {
	var names []string
	for _, field := range reflect.VisibleFields(typ) {
		if name := yamlName(field); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// isSet tells whether path was written in the file.
func (ix *nodeIndex) isSet(path string) bool {
	_, ok := ix.byPath[path]
	return ok
}

// position returns where path, or its nearest written ancestor, is in the
// file; 0, 0 when nothing of it is.
func (ix *nodeIndex) position(path string) (line, column int) {
	for {
		if n, ok := ix.byPath[path]; ok {
			return n.Line, n.Column
		}
		if path == "" {
			return 0, 0
		}
		path = parentPath(path)
	}
}

// locate turns one message of a *yaml.TypeError into a FieldError. The
// messages come in these shapes (yaml.v3 and this package's scalar types):
//
//	line L: column C: <message>
//	line L: field X not found in type T
//	line L: mapping key "X" already defined at line M
//	line L: field X already set in type T
//	line L: cannot unmarshal !!tag `value` into T
func (ix *nodeIndex) locate(msg string) *FieldError {
	line, column, rest := splitPosition(msg)
	if column > 0 {
		return ix.atPosition(line, column, rest)
	}
	if name, typeName, ok := cutAround(rest, "field ", " not found in type "); ok {
		entry := ix.findKey(line, name, typeName)
		return ix.fieldError(entry, line, unknownFieldMessage(name, entry.typ))
	}
	if quoted, firstLine, ok := cutAround(rest, "mapping key ", " already defined at line "); ok {
		name, err := strconv.Unquote(quoted)
		if err != nil {
			name = quoted
		}
		entry := ix.findKey(line, name, "")
		return ix.fieldError(entry, line, fmt.Sprintf("duplicate key %q (first defined on line %s)", name, firstLine))
	}
	if name, typeName, ok := cutAround(rest, "field ", " already set in type "); ok {
		entry := ix.findKey(line, name, typeName)
		return ix.fieldError(entry, line, fmt.Sprintf("duplicate key %q", name))
	}
	if got, typeName, ok := cutAround(rest, "cannot unmarshal ", " into "); ok {
		entry := ix.findValue(line, got, typeName)
		return ix.fieldError(entry, line, mismatchMessage(entry, got, typeName))
	}
	entry := ix.first(line)
	return ix.fieldError(entry, line, rest)
}

func (ix *nodeIndex) fieldError(entry indexEntry, line int, msg string) *FieldError {
	fe := &FieldError{Line: line, Path: entry.path, Msg: msg}
	if entry.node != nil {
		fe.Line, fe.Column = entry.node.Line, entry.node.Column
	}
	return fe
}

// atPosition locates an error our scalar types reported with a column. The
// innermost node wins where several start at one position.
func (ix *nodeIndex) atPosition(line, column int, msg string) *FieldError {
	fe := &FieldError{Line: line, Column: column, Msg: msg}
	for _, entry := range ix.byLine[line] {
		if !entry.key && entry.node.Column == column {
			fe.Path = entry.path
		}
	}
	return fe
}

// findKey finds the mapping key name on line, preferring one in a mapping
// of type typeName ("config.plain" stands for any of our structs: their
// UnmarshalYAML decodes through a local type of that name).
func (ix *nodeIndex) findKey(line int, name, typeName string) indexEntry {
	return ix.pick(line, func(e indexEntry) bool {
		return e.key && e.node.Value == name
	}, typeName)
}

// findValue finds the node of a "cannot unmarshal" error on line. got is
// the tag and value as yaml.v3 printed them: "!!map", "!!seq" or
// "!!str `value`", long values cut to 7 bytes and "...".
func (ix *nodeIndex) findValue(line int, got, typeName string) indexEntry {
	tag, value, hasValue := strings.Cut(got, " ")
	value = strings.TrimSuffix(strings.TrimPrefix(value, "`"), "`")
	truncated := strings.HasSuffix(value, "...")
	matches := func(e indexEntry) bool {
		n := e.node
		switch {
		case tag == "!!map":
			return n.Kind == yaml.MappingNode
		case tag == "!!seq":
			return n.Kind == yaml.SequenceNode
		case n.Kind != yaml.ScalarNode:
			// yaml.v3 prints a collection's explicit tag in place of !!map
			// or !!seq.
			return n.Tag == tag
		case !hasValue:
			return false
		}
		if truncated {
			return strings.HasPrefix(n.Value, strings.TrimSuffix(value, "..."))
		}
		return n.Value == value
	}
	entry := ix.pick(line, func(e indexEntry) bool { return !e.key && matches(e) }, typeName)
	if entry.node == nil {
		// A key decoded into a string (struct field names) can fail too.
		entry = ix.pick(line, func(e indexEntry) bool { return e.key && matches(e) }, "string")
	}
	return entry
}

// pick chooses among the entries on line accepted by match: preferably
// one whose Go type is typeName, and one not picked before, since the
// decoder reports in document order and identical messages on one line
// (flow style) stand for successive nodes.
func (ix *nodeIndex) pick(line int, match func(indexEntry) bool, typeName string) indexEntry {
	var typed, fresh, first indexEntry
	for _, entry := range ix.byLine[line] {
		if !match(entry) {
			continue
		}
		unused := !ix.used[entry.node]
		if typed.node == nil && unused && typeMatches(entry.typ, typeName) {
			typed = entry
		}
		if fresh.node == nil && unused {
			fresh = entry
		}
		if first.node == nil {
			first = entry
		}
	}
	for _, entry := range []indexEntry{typed, fresh, first} {
		if entry.node != nil {
			ix.used[entry.node] = true
			return entry
		}
	}
	return indexEntry{}
}

func typeMatches(typ reflect.Type, typeName string) bool {
	if typ == nil || typeName == "" {
		return false
	}
	return typ.String() == typeName || (typeName == "config.plain" && typ.Kind() == reflect.Struct)
}

func (ix *nodeIndex) first(line int) indexEntry {
	if entries := ix.byLine[line]; len(entries) > 0 {
		return entries[0]
	}
	return indexEntry{}
}

// unknownFieldMessage words an unknown key, suggesting the closest known
// one when the key looks like a typo of it.
func unknownFieldMessage(name string, owner reflect.Type) string {
	msg := fmt.Sprintf("unknown field %q", name)
	if owner == nil || owner.Kind() != reflect.Struct {
		return msg
	}
	best, bestDistance := "", 3
	for _, known := range yamlFieldNames(owner) {
		if d := editDistance(name, known); d < bestDistance {
			best, bestDistance = known, d
		}
	}
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return msg
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// mismatchMessage words a type mismatch: what was expected, what was found.
func mismatchMessage(entry indexEntry, got, typeName string) string {
	typ := entry.typ
	if !typeMatches(typ, typeName) {
		typ = nil
	}
	return fmt.Sprintf("expected %s, got %s", describeType(typ, typeName), describeNode(entry.node, got))
}

func describeType(typ reflect.Type, typeName string) string {
	if typ == nil {
		return describeTypeName(typeName)
	}
	switch typ.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return describeTypeName(typeName)
}

// describeTypeName words a Go type known only by the name yaml.v3 printed.
func describeTypeName(typeName string) string {
	switch {
	case strings.HasPrefix(typeName, "[]"):
		return "a list"
	case strings.HasPrefix(typeName, "map["), strings.HasPrefix(typeName, "config."):
		// Our named types that reach this message are all structs.
		return "a mapping"
	case typeName == "string":
		return "a string"
	case typeName == "bool":
		return "true or false"
	case strings.HasPrefix(typeName, "int"):
		return "an integer"
	case strings.HasPrefix(typeName, "uint"):
		return "a non-negative integer"
	case strings.HasPrefix(typeName, "float"):
		return "a number"
	}
	return "a value of type " + typeName
}

// describeNode words what the user wrote: a quoted string, a plain number
// or boolean, or the kind of a collection.
func describeNode(n *yaml.Node, got string) string {
	if n == nil {
		return got
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	value := n.Value
	if len(value) > 40 {
		value = value[:37] + "..."
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(value)
	}
	return value
}

// splitPosition splits "line L: column C: rest" (both parts optional).
func splitPosition(msg string) (line, column int, rest string) {
	rest = msg
	line, rest = cutNumber(rest, "line ")
	if line > 0 {
		column, rest = cutNumber(rest, "column ")
	}
	return line, column, rest
}

func cutNumber(msg, prefix string) (int, string) {
	after, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return 0, msg
	}
	digits, rest, ok := strings.Cut(after, ": ")
	n, err := strconv.Atoi(digits)
	if !ok || err != nil {
		return 0, msg
	}
	return n, rest
}

// cutAround returns what stands between prefix and the last sep in msg, and
// what follows sep.
func cutAround(msg, prefix, sep string) (before, after string, ok bool) {
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, sep)
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+len(sep):], true
}
