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
//	Subject         = '"Call " + (direction == "inbound" ? "from " + ani : "to " + dnis)'
//	CallDisposition = 'lookup("dispositions", disposition?.name, "Other")'
//
//	[lookups.dispositions]
//	"Sale Closed" = "Sale"
//
// Expressions are github.com/expr-lang/expr, compiled once when the files are
// loaded and type-checked against the Interaction, so a misspelt field is an
// error at load time rather than at 3 a.m. Loading is strict and reports
// every problem at once.
package mapping

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/expr-lang/expr/vm"

	"github.com/ctibridge/ctibridge/connector"
)

// Set is a loaded, compiled set of mapping rules. It is immutable and safe
// for concurrent use.
type Set struct {
	rules   []*rule
	lookups map[string]map[string]string
}

// rule is one compiled [[rule]].
type rule struct {
	file   string
	name   string
	target string
	object string
	when   *vm.Program // nil: every interaction
	key    *vm.Program // nil: {platform}:{id}:{rule}
	fields []field     // sorted by name
}

type field struct {
	name string
	prog *vm.Program
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
}

// LoadDir loads every *.toml file in dir as one Set.
func LoadDir(dir string, opts Options) (*Set, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no mapping files (*.toml)", dir)
	}
	var files []File
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: name, Data: data})
	}
	return Load(files, opts)
}

// Load parses and compiles files as one Set. Rule names are unique across
// the files and lookups are shared by them. The error, when there is one,
// lists every problem found, each prefixed with its file.
func Load(files []File, opts Options) (*Set, error) {
	var errs []error
	s := &Set{lookups: map[string]map[string]string{}}
	var specs []fileRules
	for _, f := range files {
		spec, err := decode(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for name, table := range spec.Lookups {
			if _, dup := s.lookups[name]; dup {
				errs = append(errs, fmt.Errorf("%s: lookup %q is defined in more than one file", f.Name, name))
				continue
			}
			s.lookups[name] = table
		}
		specs = append(specs, fileRules{f.Name, spec.Rules})
	}
	c := newCompiler(s.lookups, opts.Targets)
	seen := map[string]string{}
	for _, fr := range specs {
		for i, rs := range fr.rules {
			r, err := c.rule(fr.file, i, rs)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if other, dup := seen[r.name]; dup {
				errs = append(errs, fmt.Errorf("%s: rule %q: name already used in %s", fr.file, r.name, other))
				continue
			}
			seen[r.name] = fr.file
			s.rules = append(s.rules, r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

type fileRules struct {
	file  string
	rules []ruleSpec
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

// Apply returns the activities in for which each matching rule makes, in rule
// order. It is all or nothing: if any rule fails, it returns no activities
// and an error naming the rule and field, so that the event can be kept and
// mapped again once the rule is fixed.
func (s *Set) Apply(in *connector.Interaction) ([]connector.Activity, error) {
	var out []connector.Activity
	for _, r := range s.rules {
		a, ok, err := r.apply(in)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, a)
		}
	}
	return out, nil
}

func (r *rule) apply(in *connector.Interaction) (connector.Activity, bool, error) {
	if r.when != nil {
		ok, err := vm.Run(r.when, in)
		if err != nil {
			return connector.Activity{}, false, fmt.Errorf("rule %q: when: %w", r.name, err)
		}
		if ok != true {
			return connector.Activity{}, false, nil
		}
	}
	a := connector.Activity{
		Rule:          r.name,
		Target:        r.target,
		Object:        r.object,
		Platform:      in.Platform,
		InteractionID: in.ID,
		Key:           in.Platform + ":" + in.ID + ":" + r.name,
		Fields:        make(map[string]any, len(r.fields)),
	}
	if r.key != nil {
		k, err := vm.Run(r.key, in)
		if err != nil {
			return a, false, fmt.Errorf("rule %q: key: %w", r.name, err)
		}
		if k == "" {
			return a, false, fmt.Errorf("rule %q: key: evaluates to an empty string", r.name)
		}
		a.Key = k.(string)
	}
	for _, f := range r.fields {
		v, err := vm.Run(f.prog, in)
		if err != nil {
			return a, false, fmt.Errorf("rule %q: field %s: %w", r.name, f.name, err)
		}
		a.Fields[f.name] = v
	}
	return a, true, nil
}
