package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ctibridge/ctibridge"

// internalPrefix is where the packages that only main wires live.
const internalPrefix = "cmd/ctibridge/internal/"

type pkgInfo struct {
	path    string
	doc     string
	imports []string
}

// listPackages asks the go tool about every package of the module.
func listPackages(tb testing.TB) []pkgInfo {
	tb.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Doc}}\t{{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		tb.Fatalf("go list: %v", err)
	}
	var pkgs []pkgInfo
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "\t", 3)
		pkgs = append(pkgs, pkgInfo{path: f[0], doc: f[1], imports: strings.Fields(f[2])})
	}
	return pkgs
}

func isStd(path string) bool { return !strings.Contains(strings.Split(path, "/")[0], ".") }

// internalImports says which of cmd/ctibridge/internal's packages each of
// them may import: the pipeline and the HTTP pieces build on small leaves,
// and nothing below main reaches sideways into a peer of its own level.
var internalImports = map[string][]string{
	"access":   {"httpjson"},
	"admin":    {"httpjson", "ingest", "metrics"},
	"bench":    {"config", "ingest"},
	"config":   {"jobs"},
	"dial":     {"access", "httpjson"},
	"gws":      {"ingest"},
	"httpjson": nil,
	"ingest":   nil,
	"jobs":     nil,
	"logging":  nil,
	"metrics":  {"ingest"},
	"server":   {"access", "dial", "httpjson", "ingest", "metrics", "tlsfile"},
	"targets":  {"config"},
	"tlsfile":  nil,
}

// TestImportRules enforces the layout of DESIGN.md: connector uses only the
// standard library; a platform or CRM package uses connector and never
// another vendor's; mapping uses connector but not the outbox; the outbox
// knows nothing of connectors or mappings; only cmd/ctibridge wires them,
// and its internal packages import each other only as internalImports
// allows.
func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.path, module), "/")
		for _, imp := range p.imports {
			if isStd(imp) {
				continue
			}
			own := strings.HasPrefix(imp, module+"/")
			irel := strings.TrimPrefix(imp, module+"/")
			var bad bool
			switch {
			case rel == "connector":
				bad = true
			case rel == "connector/connectortest":
				bad = !own || irel != "connector"
			case rel == "connector/connectortest/spectest":
				// Test support only: it checks test requests against
				// OpenAPI documents.
				bad = !strings.HasPrefix(imp, "github.com/getkin/kin-openapi/")
			case strings.HasPrefix(rel, "connector/"):
				bad = !own || irel != "connector"
			case rel == "mapping":
				bad = own && irel != "connector"
			case rel == "outbox":
				bad = own
			case strings.HasPrefix(rel, internalPrefix):
				name := strings.TrimPrefix(rel, internalPrefix)
				allowed, known := internalImports[name]
				if !known {
					t.Errorf("%s is not in internalImports: say which internal packages it may import", rel)
				}
				if peer, ok := strings.CutPrefix(irel, internalPrefix); own && ok {
					bad = !slices.Contains(allowed, peer)
				}
			}
			if bad {
				t.Errorf("%s imports %s, which the layout forbids", rel, imp)
			}
		}
	}
}

// TestPackageDocs requires a package doc comment on every package.
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.doc == "" {
			t.Errorf("%s has no package doc comment", p.path)
		}
	}
}
