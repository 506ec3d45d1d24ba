package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// fencedBlock returns the body of the first ```lang block after marker in
// doc.
func fencedBlock(t *testing.T, doc, marker, lang string) string {
	t.Helper()
	_, after, ok := strings.Cut(doc, marker)
	if !ok {
		t.Fatalf("docs/configuration.md lacks %q", marker)
	}
	_, body, ok := strings.Cut(after, "```"+lang+"\n")
	if !ok {
		t.Fatalf("no ```%s block after %q", lang, marker)
	}
	body, _, ok = strings.Cut(body, "```")
	if !ok {
		t.Fatalf("unterminated ```%s block after %q", lang, marker)
	}
	return body
}

// TestDocsExamples keeps docs/configuration.md honest: its complete example
// loads, and its error example prints exactly what the docs show.
func TestDocsExamples(t *testing.T) {
	raw, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)

	t.Run("complete example", func(t *testing.T) {
		example := fencedBlock(t, doc, "## Complete example", "yaml")
		cfg, err := Parse([]byte(example), "reliability.yml")
		if err != nil {
			t.Fatalf("the complete example does not load:\n%v", err)
		}
		if len(cfg.Services) != 2 || len(cfg.Services[0].Probes) != 4 {
			t.Errorf("complete example: %d services, want 2 (checkout with 4 probes)", len(cfg.Services))
		}
	})
	t.Run("error example", func(t *testing.T) {
		bad := fencedBlock(t, doc, "<!-- error-example", "yaml")
		want := fencedBlock(t, doc, "<!-- error-example", "text")
		_, err := Parse([]byte(bad), "reliability.yml")
		if err == nil {
			t.Fatal("the error example loads without error")
		}
		if got := err.Error() + "\n"; got != want {
			t.Errorf("the error example gives:\n%s\nthe docs show:\n%s", got, want)
		}
	})
}

// TestDocsCoverFields: every YAML field of the configuration is in
// docs/configuration.md.
func TestDocsCoverFields(t *testing.T) {
	docs := configurationDocs(t)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ.PkgPath() != reflect.TypeOf(Config{}).PkgPath() {
			return
		}
		seen[typ] = true
		for i := 0; i < typ.NumField(); i++ {
			field := typ.Field(i)
			name, _, _ := strings.Cut(field.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			// In a code span (`history.successes` counts for successes) or a heading.
			documented := regexp.MustCompile("`[^`\n]*\\b" + name + "\\b[^`\n]*`|(?m)^#+ " + name + "$")
			if !documented.MatchString(docs) {
				t.Errorf("field %s.%s is not documented in docs/configuration.md or docs/probes/", path, name)
			}
			walk(field.Type, path+"."+name)
		}
	}
	walk(reflect.TypeOf(Config{}), "config")
	if len(seen) < 8 {
		t.Errorf("walked only %d config types", len(seen))
	}
}

// configurationDocs returns docs/configuration.md and the probe type pages
// in docs/probes/, which document the configuration together.
func configurationDocs(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob("../docs/probes/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var docs strings.Builder
	for _, file := range append([]string{"../docs/configuration.md"}, files...) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		docs.Write(data)
		docs.WriteString("\n")
	}
	return docs.String()
}
