package mapping

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	exprcompiler "github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/vm"

	"github.com/ctibridge/ctibridge/connector"
)

// program is a compiled expression and where it is written, to place the
// errors it gives at run time.
type program struct {
	*vm.Program
	src *source
	tok text
}

// offset returns the byte offset in the file of the expression's i-th
// character.
func (p *program) offset(i int) int { return exprOffset(p.src, p.tok, i) }

func exprOffset(src *source, t text, i int) int {
	if t.start < 0 || !t.set {
		return t.at
	}
	offs := stringOffsets(src.data, t.start, t.end, t.s)
	return offs[max(0, min(i, len(offs)-1))]
}

// compiler compiles a Set's expressions against the Interaction and the
// Set's functions, collecting every problem.
type compiler struct {
	funcs map[string]*function
	names []string // the Interaction's fields and the functions, for suggestions
	opts  []expr.Option
	// config is opts applied once. expr.Compile would build it afresh for
	// every expression, and learn the Interaction's type afresh each time:
	// that was most of the time a load took.
	config  *conf.Config
	targets []string
	// redactAll is [redact] all_fields: every field is redacted unless it
	// says redact = false.
	redactAll bool
	probs     Problems
}

func newCompiler(fs []*function, targets []string) *compiler {
	c := &compiler{funcs: map[string]*function{}, targets: targets}
	c.opts = []expr.Option{expr.Env(connector.Interaction{}), exprOption(fs)}
	c.config = conf.CreateNew()
	for _, op := range c.opts {
		op(c.config)
	}
	c.config.Check()
	for _, f := range fs {
		c.funcs[f.name] = f
		c.names = append(c.names, f.name)
	}
	c.names = append(c.names, fieldNames(reflect.TypeFor[connector.Interaction]())...)
	return c
}

func (c *compiler) problem(src *source, off int, format string, args ...any) {
	c.probs = append(c.probs, src.problem(off, format, args...))
}

// compile compiles the expression t, which must give a value of kind expect
// (reflect.Invalid: any); where names it in messages, such as
// `rule "calls": field Subject`.
func (c *compiler) compile(src *source, t text, where string, expect reflect.Kind) *program {
	p, err := c.compileExpr(t.s, expect)
	if err != nil {
		from, msg := 0, err.Error()
		var fe *file.Error
		if errors.As(err, &fe) {
			from, msg = fe.From, fe.Message
		}
		c.problem(src, exprOffset(src, t, from), "%s: %s", where, c.polish(msg))
		return nil
	}
	prog := &program{Program: p, src: src, tok: t}
	if !c.checkCalls(prog, where) {
		return nil
	}
	return prog
}

// compileExpr does what expr.Compile does, with c's configuration.
func (c *compiler) compileExpr(input string, expect reflect.Kind) (*vm.Program, error) {
	c.config.Expect, c.config.ExpectAny = expect, expect != reflect.Invalid
	tree, err := checker.ParseCheck(input, c.config)
	if err != nil {
		return nil, err
	}
	if c.config.Optimize {
		if err := optimizer.Optimize(&tree.Node, c.config); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				return nil, fe.Bind(tree.Source)
			}
			return nil, err
		}
	}
	return exprcompiler.Compile(tree, c.config)
}

// checkCalls rejects the expr built-ins the function set does not keep,
// and runs the functions' load-time checks on every call in p.
func (c *compiler) checkCalls(p *program, where string) bool {
	ok := true
	report := func(at int, format string, args ...any) {
		c.problem(p.src, p.offset(at), "%s: "+format, append([]any{where}, args...)...)
		ok = false
	}
	node := p.Node()
	ast.Walk(&node, visitor(func(n *ast.Node) {
		switch call := (*n).(type) {
		case *ast.BuiltinNode:
			if c.funcs[call.Name] == nil {
				report(call.Location().From, "unknown function %s%s", call.Name, suggest(call.Name, c.names))
			}
		case *ast.CallNode:
			id, isIdent := call.Callee.(*ast.IdentifierNode)
			if !isIdent {
				return
			}
			f := c.funcs[id.Value]
			if f == nil || f.check == nil {
				return
			}
			arg, msg := f.check(call.Arguments)
			if msg == "" {
				return
			}
			at := call.Location().From
			if arg >= 0 && arg < len(call.Arguments) {
				at = call.Arguments[arg].Location().From
			}
			if !strings.HasPrefix(msg, f.name+":") {
				msg = f.name + ": " + msg
			}
			report(at, "%s", msg)
		}
	}))
	return ok
}

type visitor func(*ast.Node)

func (v visitor) Visit(n *ast.Node) { v(n) }

var (
	reUnknownName = regexp.MustCompile(`^unknown name (\S+)$`)
	reNoField     = regexp.MustCompile(`^type \*?connector\.(\w+) has no field (\S+)$`)
	goTypes       = strings.NewReplacer(
		"*connector.CRMObject", "CRM record", "connector.CRMObject", "CRM record",
		"*connector.Disposition", "disposition", "connector.Disposition", "disposition",
		"connector.Agent", "agent", "connector.Party", "party",
		"*time.Time", "time", "time.Time", "time",
		"map[string]interface {}", "map", "interface {}", "any value",
		"[]connector.CRMObject", "list of CRM records", "[]connector.Party", "list of parties",
	)
)

// polish rewrites expr's compile messages in an admin's words, and suggests
// the name that was probably meant.
func (c *compiler) polish(msg string) string {
	if m := reUnknownName.FindStringSubmatch(msg); m != nil {
		return msg + suggest(m[1], c.names)
	}
	if m := reNoField.FindStringSubmatch(msg); m != nil {
		if t, ok := recordTypes[m[1]]; ok {
			return fmt.Sprintf("%s has no field %s%s", goTypes.Replace("connector."+m[1]), m[2], suggest(m[2], fieldNames(t)))
		}
	}
	return goTypes.Replace(msg)
}

var (
	reCannotGet   = regexp.MustCompile(`^cannot get (\S+) from (\S+)$`)
	reCannotFetch = regexp.MustCompile(`^cannot fetch (\S+) from <nil>$`)
	reNilMethod   = regexp.MustCompile(`^value method \S+\.(\S+) called using nil \*\S+ pointer$`)
)

// polishRuntime rewrites expr's run-time messages in an admin's words. n
// is the expression that failed, to name what was missing and suggest a
// fix that works: ?. guards reading a field, but not calling a method, such
// as start?.UnixMilli() on a call with no start.
func polishRuntime(msg string, n ast.Node) string {
	if m := reCannotGet.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s is missing in this interaction, so it has no %s: write %s?.%s to allow that", m[2], m[1], m[2], m[1])
	}
	name := ""
	if m := reCannotFetch.FindStringSubmatch(msg); m != nil {
		name = m[1]
	} else if m := reNilMethod.FindStringSubmatch(msg); m != nil {
		name = m[1]
	}
	if name == "" {
		return goTypes.Replace(msg)
	}
	mem := findMember(n, name)
	if mem == nil {
		return fmt.Sprintf("cannot get %s from nothing (nil): write ?.%s to allow a missing value", name, name)
	}
	recv := mem.Node.String()
	if strings.ContainsAny(recv, " ") {
		recv = "(" + recv + ")"
	}
	switch {
	case mem.Method:
		return fmt.Sprintf("%s is missing in this interaction (nil), so %s() cannot be called on it, and ?. does not guard a method call: write %s != nil ? %s.%s() : nil",
			recv, name, recv, recv, name)
	case mem.Optional:
		return fmt.Sprintf("%s is missing in this interaction (nil): write %s != nil ? %s.%s : nil", recv, recv, recv, name)
	}
	return fmt.Sprintf("%s is missing in this interaction (nil), so it has no %s: write %s?.%s to allow a missing value", recv, name, recv, name)
}

// findMember returns the first access of member or method name in n.
func findMember(n ast.Node, name string) *ast.MemberNode {
	if n == nil {
		return nil
	}
	v := &memberFinder{name: name}
	ast.Walk(&n, v)
	return v.found
}

type memberFinder struct {
	name  string
	found *ast.MemberNode
}

func (v *memberFinder) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok || v.found != nil {
		return
	}
	if p, ok := m.Property.(*ast.StringNode); ok && p.Value == v.name {
		v.found = m
	}
}

// recordTypes are the Interaction's record types, by Go name.
var recordTypes = map[string]reflect.Type{
	"Agent":       reflect.TypeFor[connector.Agent](),
	"Disposition": reflect.TypeFor[connector.Disposition](),
	"CRMObject":   reflect.TypeFor[connector.CRMObject](),
	"Party":       reflect.TypeFor[connector.Party](),
}

// fieldNames returns the names expressions use for t's fields.
func fieldNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if name := exprName(f); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// exprName is the name an expression uses for f, or "" if it cannot.
func exprName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("expr")
	switch tag {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return tag
}

// rule compiles one rule; it returns nil if the rule has problems.
func (c *compiler) rule(src *source, rs *ruleSpec) *rule {
	before := len(c.probs)
	where := rs.where()
	r := &rule{src: src, at: rs.at, name: rs.name.s, target: rs.target.s, object: rs.object.s, when: rs.when.s}
	if rs.target.set && strings.TrimSpace(rs.target.s) != "" && !slices.Contains(c.targets, rs.target.s) {
		configured := "none"
		if len(c.targets) > 0 {
			configured = strings.Join(c.targets, ", ")
		}
		c.problem(src, rs.target.at, "%s: target %q is not configured (configured: %s)%s", where, rs.target.s, configured, suggest(rs.target.s, c.targets))
	}
	if strings.TrimSpace(rs.when.s) != "" {
		// Not expr.AsBool: it would read nothing as false, and fail on
		// anything else with a message about casts.
		r.whenProg = c.compile(src, rs.when, where+": when", reflect.Invalid)
		if p := r.whenProg; p != nil {
			if t := p.Node().Type(); t.Kind() != reflect.Bool && t.Kind() != reflect.Interface {
				c.problem(src, p.offset(0), "%s: when must give true or false, but this expression gives %s", where, typeName(t))
				r.whenProg = nil
			}
		}
	}
	if strings.TrimSpace(rs.key.s) != "" {
		r.keyProg = c.compile(src, rs.key, where+": key", reflect.String)
	} else if rs.key.set {
		c.problem(src, rs.key.at, "%s: key must not be empty; leave it out for the default {platform}:{id}:{leg}:{rule}", where)
	}
	for _, fs := range rs.fields {
		fwhere := fmt.Sprintf("%s: field %s", where, tomlKey(fs.name))
		if strings.TrimSpace(fs.expr.s) == "" {
			c.problem(src, fs.expr.at, "%s: the expression is empty; write nil for a field that is always empty", fwhere)
			continue
		}
		p := c.compile(src, fs.expr, fwhere, reflect.Invalid)
		if p == nil {
			continue
		}
		f := field{
			name:      fs.name,
			at:        fs.at,
			prog:      p,
			maxLen:    fs.maxLen,
			omitEmpty: rs.omitEmpty.v,
			required:  fs.required.v,
		}
		if fs.omitEmpty.set {
			f.omitEmpty = fs.omitEmpty.v
		}
		if f.required {
			f.omitEmpty = false
		}
		f.redact = c.redactAll
		if fs.redact.set {
			f.redact = fs.redact.v
		}
		if t := p.Node().Type(); fs.maxLen > 0 && t.Kind() != reflect.String && t.Kind() != reflect.Interface {
			c.problem(src, fs.maxLenAt, "%s: max_length applies to text, but this expression gives %s", fwhere, typeName(t))
		}
		r.fields = append(r.fields, f)
	}
	if len(c.probs) > before {
		return nil
	}
	return r
}

// typeName names a Go type for an admin.
func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true/false"
	case reflect.Map:
		return "a map"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			return "a time"
		}
		return "a record"
	}
	return t.String()
}
