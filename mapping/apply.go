package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/ctibridge/ctibridge/connector"
)

// rule is one compiled [[rule]].
type rule struct {
	src                  *source
	at                   int // the [[rule]] header
	name, target, object string
	when                 string   // as written; "" matches every interaction
	whenProg             *program // nil: every interaction
	keyProg              *program // nil: DefaultKey
	fields               []field  // in file order
}

type field struct {
	name      string
	at        int // the field's key
	prog      *program
	maxLen    int // 0: no limit
	omitEmpty bool
	required  bool
	redact    bool
}

// A RuleError is a rule that failed on an interaction. Its Problem places
// the failure in the mapping file: the expression that failed, or the field
// whose value broke one of its options.
type RuleError struct {
	Rule string // the rule's name
	// Field is the field that failed, or "" when the rule's when or key did.
	Field string
	Problem
	Err error // the expression's error, if one failed
}

// Error returns the failure on one line, rule and field first, as
// `rule "r": field F: msg (file:line:col)`: it is what lists of failed
// events show, where the start of a message is what gets read.
func (e *RuleError) Error() string {
	p := e.Problem
	if p.Line == 0 {
		return fmt.Sprintf("%s (%s)", p.Msg, p.File)
	}
	return fmt.Sprintf("%s (%s:%d:%d)", p.Msg, p.File, p.Line, p.Col)
}

func (e *RuleError) Unwrap() error { return e.Err }

// evaluation is one interaction being mapped: the interaction, boxed once
// as the expressions' environment, and a VM.
type evaluation struct {
	set *Set
	in  *connector.Interaction
	env any
	vm  *vm.VM
}

var vms = sync.Pool{New: func() any { return new(vm.VM) }}

func (s *Set) evaluate(in *connector.Interaction) *evaluation {
	// The interaction is copied into the environment by value, once: expr
	// reads a field of a value it cannot address without copying it, so
	// reading ani or agent.id costs no allocation.
	return &evaluation{set: s, in: in, env: *in, vm: vms.Get().(*vm.VM)}
}

func (ev *evaluation) done() { vms.Put(ev.vm) }

// Apply returns the activities each matching rule makes of in, in rule
// order. It is all or nothing: if any rule fails, it returns no activities
// and the first rule's *RuleError, naming the rule and field. ApplyEach
// keeps the rules that succeed.
func (s *Set) Apply(in *connector.Interaction) ([]connector.Activity, error) {
	outs, err := s.ApplyEach(in)
	if err != nil {
		return nil, err
	}
	var acts []connector.Activity
	for _, o := range outs {
		if o.Err != nil {
			return nil, o.Err
		}
		acts = append(acts, o.Activity)
	}
	return acts, nil
}

// An Outcome is what one rule made of an interaction: its activity, or
// why it failed.
type Outcome struct {
	Rule   string // the rule's name
	Target string // the rule's target
	// Activity is the rule's record; zero when Err is set.
	Activity connector.Activity
	// Err is why the rule failed, a *RuleError naming the rule and the
	// part of it (when, key or field) that failed.
	Err error
}

// ApplyEach maps in rule by rule. It returns an Outcome for each rule that
// matches in, or that fails deciding whether it does, in rule order: the
// rule's activity or its error. One rule's failure never keeps back the
// others' activities: the caller delivers those and keeps each failed rule
// with its error, to map again once the rule or the data is fixed.
//
// rules, when given, limits the run to the rules of those names, such as
// the ones that failed before; a name no rule has is skipped. The error is
// for a nil interaction only.
func (s *Set) ApplyEach(in *connector.Interaction, rules ...string) ([]Outcome, error) {
	if in == nil {
		return nil, errors.New("mapping: no interaction to map")
	}
	ev := s.evaluate(in)
	defer ev.done()
	var out []Outcome
	for _, r := range s.rules {
		if len(rules) > 0 && !slices.Contains(rules, r.name) {
			continue
		}
		o := Outcome{Rule: r.name, Target: r.target}
		ok, _, err := ev.match(r)
		switch {
		case err != nil:
			o.Err = err
		case !ok:
			continue
		default:
			if o.Activity, err = ev.activity(r); err != nil {
				o.Activity, o.Err = connector.Activity{}, err
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// run runs p; an error names the rule and the part of it that failed: its
// when or key, or the field fieldName.
func (ev *evaluation) run(r *rule, p *program, part, fieldName string) (any, error) {
	v, err := ev.vm.Run(p.Program, ev.env)
	if err == nil {
		return v, nil
	}
	from, msg := 0, err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		from, msg = fe.From, fe.Message
	}
	if fieldName != "" {
		part = "field " + tomlKey(fieldName)
	}
	return nil, r.fail(p.offset(from), fieldName, err, "%s: %s", part, polishRuntime(msg, p.Node()))
}

func (r *rule) fail(off int, fieldName string, err error, format string, args ...any) *RuleError {
	p := r.src.problem(off, "rule %q: "+format, append([]any{r.name}, args...)...)
	return &RuleError{Rule: r.name, Field: fieldName, Problem: p, Err: err}
}

// match evaluates r's when: whether r matches, and what when gave.
func (ev *evaluation) match(r *rule) (bool, any, error) {
	if r.whenProg == nil {
		return true, true, nil
	}
	v, err := ev.run(r, r.whenProg, "when", "")
	if err != nil {
		return false, nil, err
	}
	switch v := v.(type) {
	case bool:
		return v, v, nil
	case nil:
		return false, nil, nil
	}
	return false, v, r.fail(r.whenProg.offset(0), "", nil, "when must give true or false, not %s", describeValue(v))
}

// activity makes r's activity of the interaction.
func (ev *evaluation) activity(r *rule) (connector.Activity, error) {
	in := ev.in
	a := connector.Activity{
		Rule:          r.name,
		Target:        r.target,
		Object:        r.object,
		Platform:      in.Platform,
		InteractionID: in.ID,
		Who:           in.Who,
		What:          in.What,
		Phone:         in.CustomerPhone(),
	}
	if r.keyProg != nil {
		v, err := ev.run(r, r.keyProg, "key", "")
		if err != nil {
			return a, err
		}
		k, _ := v.(string)
		if k == "" {
			return a, r.fail(r.keyProg.offset(0), "", nil, "key: gave %s; the key must be text that is never empty", describeValue(v))
		}
		a.Key = k
	} else {
		if in.Platform == "" || in.ID == "" {
			return a, r.fail(r.at, "", nil, "key: the interaction has no platform or id, so the default key {platform}:{id}:{leg}:{rule} would not be unique")
		}
		a.Key = DefaultKey(in, r.name)
	}
	a.Fields = make(map[string]any, len(r.fields))
	for i := range r.fields {
		f := &r.fields[i]
		v, err := ev.run(r, f.prog, "", f.name)
		if err != nil {
			return a, err
		}
		if f.redact {
			v = ev.set.redactor.redactValue(v)
		}
		if f.maxLen > 0 {
			if s, ok := v.(string); ok && len(s) > f.maxLen {
				v = truncateText(s, f.maxLen, "")
			}
		}
		if isEmpty(v) {
			if f.required {
				return a, r.fail(f.at, f.name, nil, "field %s is required, but its expression gave %s for this interaction", tomlKey(f.name), describeValue(v))
			}
			if f.omitEmpty {
				continue
			}
			if isNil(v) {
				v = nil
			}
		}
		a.Fields[f.name] = v
	}
	return a, nil
}

// DefaultKey is the key of rule's activity of in when the rule sets none:
// {platform}:{id}:{rule}, or {platform}:{id}:{leg}:{rule} for an
// interaction with a Leg, so that each agent of a transferred call, who
// shares the call's id with the others, gets a record of their own.
func DefaultKey(in *connector.Interaction, rule string) string {
	if in.Leg == "" {
		return in.Platform + ":" + in.ID + ":" + rule
	}
	return in.Platform + ":" + in.ID + ":" + in.Leg + ":" + rule
}

// redactValue redacts v with the [redact] patterns.
func (r *redactor) redactValue(v any) any {
	out, _ := redactValue(v, r.patterns)
	return out
}

// A RuleResult says what one rule made of an interaction, for previews.
type RuleResult struct {
	Rule   string `json:"rule"`
	Target string `json:"target"`
	Object string `json:"object"`
	File   string `json:"file"`
	Line   int    `json:"line"` // of the rule's [[rule]]
	// Matched reports whether the rule's when held.
	Matched bool `json:"matched"`
	// When is the rule's when as written; "" matches every interaction.
	When string `json:"when,omitempty"`
	// Reason says why the rule did not match, such as
	// `when is false: channel == "voice" is false (channel is "chat")`.
	Reason string `json:"reason,omitempty"`
	// Activity is what the rule made, when it matched and did not fail.
	Activity *connector.Activity `json:"activity,omitempty"`
	// Err is why the rule failed, a *RuleError.
	Err error `json:"-"`
}

// MarshalJSON writes r with its error as text.
func (r RuleResult) MarshalJSON() ([]byte, error) {
	type plain RuleResult
	v := struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain: plain(r)}
	if r.Err != nil {
		v.Error = r.Err.Error()
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // when = 'a && b' stays readable
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Explain says what each rule makes of in, rule by rule: whether it
// matched and, if not, why; the activity it made, or why it failed. Unlike
// Apply, a failing rule does not stop the others.
func (s *Set) Explain(in *connector.Interaction) []RuleResult {
	if in == nil {
		in = &connector.Interaction{}
	}
	ev := s.evaluate(in)
	defer ev.done()
	out := make([]RuleResult, 0, len(s.rules))
	for _, r := range s.rules {
		res := RuleResult{
			Rule: r.name, Target: r.target, Object: r.object,
			File: r.src.name, Line: r.src.problem(r.at, "").Line, When: r.when,
		}
		ok, v, err := ev.match(r)
		switch {
		case err != nil:
			res.Err = err
		case !ok:
			res.Reason = s.whyNot(ev, r, v)
		default:
			res.Matched = true
			if a, err := ev.activity(r); err != nil {
				res.Err = err
			} else {
				res.Activity = &a
			}
		}
		out = append(out, res)
	}
	return out
}

// whyNot explains a when that did not hold: which of its conditions (the
// parts joined by &&) failed, and the values that condition read.
func (s *Set) whyNot(ev *evaluation, r *rule, v any) string {
	reason := fmt.Sprintf("when is %s", short(v))
	conds := conditions(r.whenProg.Node())
	for _, cond := range conds {
		cv, err := s.eval(ev, cond.String())
		if err != nil || cv == true {
			continue
		}
		if len(conds) > 1 {
			reason += fmt.Sprintf(": %s is %s", cond.String(), short(cv))
		}
		var vals []string
		for _, ref := range references(cond) {
			if ref == cond.String() || len(vals) == 3 {
				continue
			}
			if rv, err := s.eval(ev, ref); err == nil {
				vals = append(vals, fmt.Sprintf("%s is %s", ref, short(rv)))
			}
		}
		if len(vals) > 0 {
			reason += " (" + strings.Join(vals, ", ") + ")"
		}
		break
	}
	return reason
}

// eval compiles and runs src on the interaction, for explanations.
func (s *Set) eval(ev *evaluation, src string) (any, error) {
	p, err := expr.Compile(src, s.exprOpts...)
	if err != nil {
		return nil, err
	}
	return ev.vm.Run(p, ev.env)
}

// conditions splits a chain of && into its parts.
func conditions(n ast.Node) []ast.Node {
	if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "&&" || b.Operator == "and") {
		return append(conditions(b.Left), conditions(b.Right)...)
	}
	return []ast.Node{n}
}

// references returns the interaction's fields n reads, as written, such
// as "channel" and "disposition?.name".
func references(n ast.Node) []string {
	var refs []string
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		switch n := n.(type) {
		case *ast.IdentifierNode, *ast.MemberNode, *ast.ChainNode:
			if s := n.String(); !strings.ContainsAny(s, "(#") && !slices.Contains(refs, s) {
				refs = append(refs, s)
			}
		case *ast.UnaryNode:
			walk(n.Node)
		case *ast.BinaryNode:
			walk(n.Left)
			walk(n.Right)
		case *ast.CallNode:
			for _, a := range n.Arguments {
				walk(a)
			}
		case *ast.BuiltinNode:
			for _, a := range n.Arguments {
				walk(a)
			}
		case *ast.ConditionalNode:
			walk(n.Cond)
			walk(n.Exp1)
			walk(n.Exp2)
		}
	}
	walk(n)
	return refs
}

// short shows a value in an explanation.
func short(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case string:
		return fmt.Sprintf("%q", v)
	case bool, int, int64, float64:
		return fmt.Sprint(v)
	}
	if isNil(v) {
		return "nil"
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) > 80 {
		return describeValue(v)
	}
	return string(b)
}
