// Package mapping turns a normalized connector.Interaction into CRM activity
// records, following rules that admins write in TOML files:
//
//	[[rule]]
//	name   = "salesforce-calls"
//	target = "salesforce"
//	object = "Task"
//	when   = 'channel == "voice" && !isConsultation'
//
//	[rule.fields]
//	Subject         = { expr = '"Call " + (direction == "inbound" ? "from " + ani : "to " + dnis)', max_length = 255 }
//	CallDisposition = 'lookup("dispositions", disposition?.name, "Other")'
//
//	[lookups.dispositions]
//	"Sale Closed" = "Sale"
//
// A field is an expression, or a table of the expression and its options
// (max_length, omit_empty, required, redact). Expressions are
// github.com/expr-lang/expr, compiled once when the files are loaded and
// type-checked against the Interaction, so a misspelt field is an error at
// load time rather than at 3 a.m. They may call the functions Reference
// lists. Loading is strict and reports every problem at once, each placed at
// its line and column (Problems). docs/mapping.md is the admin's guide.
package mapping

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/nyaruka/phonenumbers"
)

// Set is a loaded, compiled set of mapping rules. It is immutable and safe
// for concurrent use.
type Set struct {
	rules    []*rule
	redactor *redactor
	exprOpts []expr.Option // for Explain
}

// File is one mapping file's name and contents.
type File struct {
	Name string // as errors should show it, such as "mappings/salesforce.toml"
	Data []byte
}

// Options says what the rules may refer to.
type Options struct {
	// Targets are the names of the configured targets; a rule naming any
	// other is an error.
	Targets []string
	// DefaultRegion is the region e164() reads national numbers in when a
	// call gives none, such as "US" or "DE". Without it, such numbers stay
	// as they are.
	DefaultRegion string
}

// LoadDir loads every *.toml file in dir as one Set. Its error, like
// Load's, is Problems.
func LoadDir(dir string, opts Options) (*Set, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, Problems{{File: dir, Msg: err.Error()}}
	}
	if len(names) == 0 {
		return nil, Problems{{File: dir, Msg: "no mapping files (*.toml)"}}
	}
	var files []File
	var probs Problems
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			probs = append(probs, Problem{File: name, Msg: err.Error()})
			continue
		}
		files = append(files, File{Name: name, Data: data})
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return Load(files, opts)
}

// Load parses and compiles files as one Set. Rule names are unique across
// the files, and lookups and redaction patterns are shared by them. The
// error, when there is one, is Problems: every problem found, in file order.
func Load(files []File, opts Options) (*Set, error) {
	var probs Problems
	var specs []*fileSpec
	for _, f := range files {
		spec, ps := parseFile(f)
		probs = append(probs, ps...)
		if spec != nil {
			specs = append(specs, spec)
		}
	}

	region := strings.ToUpper(opts.DefaultRegion)
	if region != "" && !phonenumbers.GetSupportedRegions()[region] {
		probs = append(probs, Problem{File: "(configuration)", Msg: fmt.Sprintf("the default region %q is not a region; use a two-letter country code such as \"US\", \"GB\" or \"DE\"", opts.DefaultRegion)})
	}
	env := &funcEnv{lookups: map[string]map[string]any{}, redactor: &redactor{}, region: region}
	lookupAt := map[string]Problem{}
	var allFieldsAt *Problem
	for _, spec := range specs {
		for _, l := range spec.lookups {
			if first, dup := lookupAt[l.name]; dup {
				probs = append(probs, spec.src.problem(l.at, "lookup table %q is already defined at %s:%d", l.name, first.File, first.Line))
				continue
			}
			lookupAt[l.name] = spec.src.problem(l.at, "")
			env.lookups[l.name] = l.values
		}
		for _, p := range spec.redact.patterns {
			re, err := compilePattern(p.s)
			if err != nil {
				probs = append(probs, spec.src.problem(p.at, "redact.patterns: %v", err))
				continue
			}
			env.redactor.patterns = append(env.redactor.patterns, re)
		}
		if af := spec.redact.allFields; af.set {
			here := spec.src.problem(af.at, "")
			if allFieldsAt != nil && env.redactor.all != af.v {
				probs = append(probs, spec.src.problem(af.at, "redact.all_fields is %v here but %v at %s:%d; say it once", af.v, env.redactor.all, allFieldsAt.File, allFieldsAt.Line))
			} else if allFieldsAt == nil {
				allFieldsAt = &here
				env.redactor.all = af.v
			}
		}
	}

	fs := functions(env)
	targets := slices.Clone(opts.Targets)
	sort.Strings(targets)
	c := newCompiler(fs, targets)
	c.redactAll = env.redactor.all
	s := &Set{redactor: env.redactor, exprOpts: c.opts}
	nameAt := map[string]Problem{}
	for _, spec := range specs {
		for _, rs := range spec.rules {
			r := c.rule(spec.src, rs)
			if rs.nameOK {
				if first, dup := nameAt[rs.name.s]; dup {
					c.problem(spec.src, rs.name.at, "rule name %q is already used at %s:%d", rs.name.s, first.File, first.Line)
					continue
				}
				nameAt[rs.name.s] = spec.src.problem(rs.name.at, "")
			}
			if r != nil && rs.nameOK {
				s.rules = append(s.rules, r)
			}
		}
	}
	probs = append(probs, c.probs...)
	if len(probs) > 0 {
		return nil, probs.sortByPlace(files)
	}
	return s, nil
}

// Rules returns the rule names, in load order.
func (s *Set) Rules() []string {
	names := make([]string, len(s.rules))
	for i, r := range s.rules {
		names[i] = r.name
	}
	return names
}

// Targets returns the targets the rules deliver to, sorted.
func (s *Set) Targets() []string {
	var ts []string
	for _, r := range s.rules {
		if !slices.Contains(ts, r.target) {
			ts = append(ts, r.target)
		}
	}
	sort.Strings(ts)
	return ts
}
