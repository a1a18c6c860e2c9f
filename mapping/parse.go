package mapping

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"github.com/pelletier/go-toml/v2"

	"github.com/ctibridge/ctibridge/connector"
)

// fileSpec is a mapping file as written.
type fileSpec struct {
	Rules   []ruleSpec                   `toml:"rule"`
	Lookups map[string]map[string]string `toml:"lookups"`
}

type ruleSpec struct {
	Name   string            `toml:"name"`
	Target string            `toml:"target"`
	Object string            `toml:"object"`
	When   string            `toml:"when"`
	Key    string            `toml:"key"`
	Fields map[string]string `toml:"fields"`
}

// decode reads one file strictly: an unknown key is an error with its line.
func decode(f File) (fileSpec, error) {
	var spec fileSpec
	dec := toml.NewDecoder(bytes.NewReader(f.Data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&spec)
	var derr *toml.DecodeError
	var serr *toml.StrictMissingError
	switch {
	case errors.As(err, &serr):
		var msgs []string
		for _, e := range serr.Errors {
			line, col := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d:%d: unknown key %s", f.Name, line, col, strings.Join(e.Key(), ".")))
		}
		return spec, errors.New(strings.Join(msgs, "\n"))
	case errors.As(err, &derr):
		line, col := derr.Position()
		return spec, fmt.Errorf("%s:%d:%d: %s", f.Name, line, col, derr.Error())
	case err != nil:
		return spec, fmt.Errorf("%s: %w", f.Name, err)
	}
	return spec, nil
}

// compiler compiles rules against the Interaction and the Set's functions.
type compiler struct {
	lookups map[string]map[string]string
	targets map[string]bool
	opts    []expr.Option
}

func newCompiler(lookups map[string]map[string]string, targets []string) *compiler {
	c := &compiler{lookups: lookups, targets: map[string]bool{}}
	for _, t := range targets {
		c.targets[t] = true
	}
	c.opts = append([]expr.Option{expr.Env(connector.Interaction{})}, functions(lookups)...)
	return c
}

func (c *compiler) rule(file string, index int, rs ruleSpec) (*rule, error) {
	var errs []error
	name := rs.Name
	where := fmt.Sprintf("%s: rule %d", file, index+1)
	if name == "" {
		errs = append(errs, fmt.Errorf("%s: name is required", where))
	} else {
		where = fmt.Sprintf("%s: rule %q", file, name)
	}
	switch {
	case rs.Target == "":
		errs = append(errs, fmt.Errorf("%s: target is required", where))
	case !c.targets[rs.Target]:
		errs = append(errs, fmt.Errorf("%s: target %q is not configured (configured: %s)", where, rs.Target, c.targetList()))
	}
	if rs.Object == "" {
		errs = append(errs, fmt.Errorf("%s: object is required", where))
	}
	if len(rs.Fields) == 0 {
		errs = append(errs, fmt.Errorf("%s: fields: at least one field is required", where))
	}
	r := &rule{file: file, name: name, target: rs.Target, object: rs.Object}
	var err error
	if strings.TrimSpace(rs.When) != "" {
		if r.when, err = c.compile(rs.When, expr.AsBool()); err != nil {
			errs = append(errs, fmt.Errorf("%s: when: %w", where, err))
		}
	}
	if strings.TrimSpace(rs.Key) != "" {
		if r.key, err = c.compile(rs.Key, expr.AsKind(reflect.String)); err != nil {
			errs = append(errs, fmt.Errorf("%s: key: %w", where, err))
		}
	}
	names := make([]string, 0, len(rs.Fields))
	for n := range rs.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p, err := c.compile(rs.Fields[n])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: field %s: %w", where, n, err))
			continue
		}
		r.fields = append(r.fields, field{name: n, prog: p})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func (c *compiler) compile(src string, opts ...expr.Option) (*vm.Program, error) {
	p, err := expr.Compile(src, append(c.opts[:len(c.opts):len(c.opts)], opts...)...)
	if err != nil {
		return nil, err
	}
	if err := c.checkLookups(p); err != nil {
		return nil, err
	}
	return p, nil
}

// checkLookups rejects a lookup() call that names a table no file defines:
// expr cannot know that the first argument names a table.
func (c *compiler) checkLookups(p *vm.Program) error {
	var errs []error
	node := p.Node()
	ast.Walk(&node, visitor(func(n *ast.Node) {
		call, ok := (*n).(*ast.CallNode)
		if !ok {
			return
		}
		id, ok := call.Callee.(*ast.IdentifierNode)
		if !ok || id.Value != "lookup" || len(call.Arguments) == 0 {
			return
		}
		s, ok := call.Arguments[0].(*ast.StringNode)
		if !ok {
			errs = append(errs, errors.New("lookup: the table name must be a quoted string"))
			return
		}
		if _, ok := c.lookups[s.Value]; !ok {
			errs = append(errs, fmt.Errorf("lookup: no [lookups.%s] table is defined", s.Value))
		}
	}))
	return errors.Join(errs...)
}

func (c *compiler) targetList() string {
	if len(c.targets) == 0 {
		return "none"
	}
	ts := make([]string, 0, len(c.targets))
	for t := range c.targets {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return strings.Join(ts, ", ")
}

type visitor func(*ast.Node)

func (v visitor) Visit(n *ast.Node) { v(n) }
