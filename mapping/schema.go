package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// A Schema is a CRM object's field list, as `ctibridge targets describe`
// writes it from the CRM's own description, in a format that is the same
// for every CRM. Set.CheckSchemas checks rules against it, so that an admin
// learns of a misspelt field, a value of the wrong type or a text that is
// too long from `mapping check` rather than from a rejected record.
//
// A schema file is named TARGET.OBJECT.schema.json, after the target and
// object the rules name, such as salesforce.Task.schema.json.
type Schema struct {
	// CRM is the kind of CRM described, such as "salesforce" or "hubspot".
	CRM string `json:"crm"`
	// Object is the object's name in the CRM, such as "Task" or "calls".
	Object string `json:"object"`
	// Source says where the field list came from: a describe call and
	// when, or the documentation it was written from.
	Source string `json:"source,omitempty"`
	// CaseInsensitive is set when the CRM reads field names in any case
	// (Salesforce).
	CaseInsensitive bool `json:"caseInsensitive,omitempty"`
	// TargetFields are names the target takes from a rule's fields itself
	// rather than sending them as fields, such as HubSpot's associations.
	TargetFields []string `json:"targetFields,omitempty"`
	// Fields are the object's fields.
	Fields []SchemaField `json:"fields"`
}

// SchemaField is one field of a Schema.
type SchemaField struct {
	Name string `json:"name"`
	// Type is one of the Type constants.
	Type string `json:"type"`
	// Label is the field's name in the CRM's screens, when it has one.
	Label string `json:"label,omitempty"`
	// MaxLength is the most characters a text field takes; 0: unknown or
	// no limit.
	MaxLength int `json:"maxLength,omitempty"`
	// Picklist are the values a picklist takes.
	Picklist []string `json:"picklist,omitempty"`
	// OpenPicklist is set when the CRM takes values not in Picklist too
	// (Salesforce's unrestricted picklists, comboboxes).
	OpenPicklist bool `json:"openPicklist,omitempty"`
	// Required is set when a record cannot be created without the field.
	Required bool `json:"required,omitempty"`
	// ReadOnly is set when the CRM sets the field and no API call may.
	ReadOnly bool `json:"readOnly,omitempty"`
	// CreateOnly is set when the field may be set on create but not on
	// update.
	CreateOnly bool `json:"createOnly,omitempty"`
}

// The types of a SchemaField.
const (
	TypeText          = "text"          // free text, up to MaxLength
	TypeInteger       = "integer"       // a whole number
	TypeNumber        = "number"        // any number
	TypeBoolean       = "boolean"       // true or false
	TypeDate          = "date"          // a day: 2026-03-02
	TypeDateTime      = "datetime"      // a time: RFC 3339, or milliseconds since 1970
	TypePicklist      = "picklist"      // one of Picklist
	TypeMultiPicklist = "multipicklist" // some of Picklist, separated by ';'
	TypeReference     = "reference"     // the id of another record
	TypeOther         = "other"         // anything else, not checked
)

var schemaTypes = []string{TypeText, TypeInteger, TypeNumber, TypeBoolean, TypeDate, TypeDateTime,
	TypePicklist, TypeMultiPicklist, TypeReference, TypeOther}

// SchemaSuffix ends the name of every schema file.
const SchemaSuffix = ".schema.json"

// SchemaFileName returns the name of the schema file of a target's object.
func SchemaFileName(target, object string) string {
	return target + "." + object + SchemaSuffix
}

// Schemas are the schemas of a directory, by target and then object.
type Schemas map[string]map[string]*Schema

// Lookup returns the schema of a target's object, or nil.
func (s Schemas) Lookup(target, object string) *Schema { return s[target][object] }

// Names returns "target.object" of every schema, sorted.
func (s Schemas) Names() []string {
	var names []string
	for t, objs := range s {
		for o := range objs {
			names = append(names, t+"."+o)
		}
	}
	sort.Strings(names)
	return names
}

// LoadSchemas reads every TARGET.OBJECT.schema.json file in dir. A
// directory without any gives no schemas and no error; a file that is not
// a valid schema is an error naming it.
func LoadSchemas(dir string) (Schemas, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*"+SchemaSuffix))
	if err != nil {
		return nil, err
	}
	out := Schemas{}
	for _, name := range names {
		base := strings.TrimSuffix(filepath.Base(name), SchemaSuffix)
		i := strings.LastIndexByte(base, '.')
		if i <= 0 || i == len(base)-1 {
			return nil, fmt.Errorf("%s: a schema file is named TARGET.OBJECT%s", name, SchemaSuffix)
		}
		s, err := ReadSchema(name)
		if err != nil {
			return nil, err
		}
		target, object := base[:i], base[i+1:]
		if out[target] == nil {
			out[target] = map[string]*Schema{}
		}
		out[target][object] = s
	}
	return out, nil
}

// ReadSchema reads and validates one schema file.
func ReadSchema(path string) (*Schema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Schema
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: not a schema file: %w", path, err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

func (s *Schema) validate() error {
	if len(s.Fields) == 0 {
		return errors.New("fields: none")
	}
	seen := map[string]bool{}
	for i, f := range s.Fields {
		switch {
		case f.Name == "":
			return fmt.Errorf("fields[%d]: name is empty", i)
		case seen[f.Name]:
			return fmt.Errorf("fields[%d]: %s is listed twice", i, f.Name)
		case !slices.Contains(schemaTypes, f.Type):
			return fmt.Errorf("fields[%d] (%s): type %q is not one of %s", i, f.Name, f.Type, strings.Join(schemaTypes, ", "))
		case f.MaxLength < 0:
			return fmt.Errorf("fields[%d] (%s): maxLength is negative", i, f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

// WriteFile writes s as indented JSON to path.
func (s *Schema) WriteFile(path string) error {
	if err := s.validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// field returns the field called name, or nil.
func (s *Schema) field(name string) *SchemaField {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i]
		}
	}
	if s.CaseInsensitive {
		for i := range s.Fields {
			if strings.EqualFold(s.Fields[i].Name, name) {
				return &s.Fields[i]
			}
		}
	}
	return nil
}

func (s *Schema) names() []string {
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	return names
}

var (
	reDate     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	reDateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$`)
	reInteger  = regexp.MustCompile(`^[+-]?\d+$`)
	reNumber   = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)
)

// Objects returns the objects the rules for target write, sorted.
func (s *Set) Objects(target string) []string {
	var objs []string
	for _, r := range s.rules {
		if r.target == target && !slices.Contains(objs, r.object) {
			objs = append(objs, r.object)
		}
	}
	sort.Strings(objs)
	return objs
}
