package mapping

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// Doc is what mapping expressions can use: the interaction's fields and the
// functions, for `ctibridge mapping fields` and editors. It is generated from
// the code, so it cannot drift from what Load accepts.
type Doc struct {
	Fields    []FieldDoc `json:"fields"`
	Functions []FuncDoc  `json:"functions"`
}

// FieldDoc is one field of the interaction.
type FieldDoc struct {
	// Name is the field as an expression writes it, such as "agent.name";
	// the fields of a list's items are written "parties[].phone".
	Name string `json:"name"`
	// Type is text, number, true/false, time, map, record or list, and
	// "(may be missing)" for a record or time an interaction may lack.
	Type string `json:"type"`
	Doc  string `json:"doc"`
}

// FuncDoc is one function expressions may call.
type FuncDoc struct {
	Name      string `json:"name"`
	Signature string `json:"signature"` // optional arguments in brackets
	Doc       string `json:"doc"`
	Example   string `json:"example"`
}

// Reference returns the fields of connector.Interaction that expressions
// can read, walked from its expr tags and types, and the functions they can
// call.
func Reference() Doc {
	var d Doc
	walkFields(reflect.TypeFor[connector.Interaction](), "", func(name string, t reflect.Type) {
		d.Fields = append(d.Fields, FieldDoc{Name: name, Type: adminType(t), Doc: fieldDocs[name]})
	})
	for _, f := range functions(&funcEnv{redactor: &redactor{}}) {
		d.Functions = append(d.Functions, FuncDoc{Name: f.name, Signature: f.sig, Doc: f.doc, Example: f.example})
	}
	return d
}

// WriteText writes d as two aligned tables, for a terminal.
func (d Doc) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIELD\tTYPE\tMEANING")
	for _, f := range d.Fields {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Name, f.Type, f.Doc)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tEXAMPLE\tWHAT IT GIVES")
	for _, f := range d.Functions {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Signature, f.Example, f.Doc)
	}
	return tw.Flush()
}

// walkFields calls fn for every field of struct type t an expression can
// read, depth first, with the records' and lists' fields after their own.
func walkFields(t reflect.Type, prefix string, fn func(name string, t reflect.Type)) {
	for f := range t.Fields() {
		name := exprName(f)
		if name == "" {
			continue
		}
		name = prefix + name
		fn(name, f.Type)
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct && ft.Elem() != reflect.TypeFor[time.Time]():
			walkFields(ft.Elem(), name+".", fn)
		case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]():
			walkFields(ft, name+".", fn)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			walkFields(ft.Elem(), name+"[].", fn)
		}
	}
}

// adminType names a field's type for an admin.
func adminType(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		return adminType(t.Elem()) + " (may be missing)"
	}
	switch {
	case t == reflect.TypeFor[time.Time]():
		return "time"
	case t.Kind() == reflect.String:
		return "text"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64 || t.Kind() == reflect.Float64:
		return "number"
	case t.Kind() == reflect.Bool:
		return "true/false"
	case t.Kind() == reflect.Map:
		return "map"
	case t.Kind() == reflect.Struct:
		return "record"
	case t.Kind() == reflect.Slice:
		return "list"
	}
	return strings.ToLower(t.Kind().String())
}

// fieldDocs explains each field; a test checks that every field has one.
var fieldDocs = map[string]string{
	"platform":         `the contact-center platform: "genesys", "five9" or "brightpattern"`,
	"id":               "the platform's id of the interaction; stable across its events",
	"globalId":         "a cross-system id, when the platform has one",
	"channel":          `"voice", "chat", "email" or "other"`,
	"direction":        `"inbound", "outbound", "internal" or "unknown"`,
	"ani":              "the calling number (E.164, such as +14155550142, when it could be read as one)",
	"dnis":             "the called number",
	"phone":            "the customer's phone number, when the platform gives one besides ani and dnis",
	"email":            "the customer's email address, for email interactions",
	"leg":              "the agent's leg of the interaction (the agent's id): each agent of a transferred call gets their own interaction, with the same id and their own leg",
	"agent":            "the agent who handled the interaction",
	"agent.id":         "the agent's id on the platform",
	"agent.name":       "the agent's full name",
	"agent.username":   "the agent's login name",
	"agent.email":      "the agent's email address, often the same as their CRM user's",
	"queue":            "the queue, skill or service the interaction came through",
	"campaign":         "the outbound campaign",
	"start":            "when the interaction started (UTC)",
	"end":              "when it ended (UTC)",
	"duration":         "how long it lasted, in whole seconds",
	"disposition":      "the outcome the agent chose",
	"disposition.code": "the outcome's code",
	"disposition.name": "the outcome's name, such as \"Sale Closed\"",
	"subject":          "a subject the platform or the agent gave",
	"notes":            "the agent's notes or the interaction's description",
	"recordingUrl":     "a link to the recording",
	"attached":         `the platform's custom data (Genesys user data, Five9 call variables, Bright Pattern attached data): attached.Name or attached["Name With Spaces"]`,
	"who":              "the CRM person the interaction is about (contact or lead), if the agent picked one",
	"who.type":         `the record's type, such as "Contact" or "Lead"`,
	"who.id":           "the record's CRM id",
	"who.name":         "the record's name",
	"what":             "the CRM record the interaction relates to (account, case, opportunity…), if the agent picked one",
	"what.type":        `the record's type, such as "Case"`,
	"what.id":          "the record's CRM id",
	"what.name":        "the record's name",
	"objects":          "every CRM record linked to the interaction",
	"objects[].type":   "the record's type",
	"objects[].id":     "the record's CRM id",
	"objects[].name":   "the record's name",
	"parties":          "the call's participants",
	"parties[].name":   "the participant's name",
	"parties[].phone":  "the participant's number",
	"parties[].userId": "the participant's user id, for agents",
	"isConsultation":   "true for an agent's consultation leg, which is usually not logged",
}
