package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
)

// SchemaFromSalesforce turns Salesforce's describe of an object (GET
// /sobjects/{object}/describe) into a Schema. A field is required when it
// must be given on create: createable, not defaulted, and said not to be
// nillable.
func SchemaFromSalesforce(object string, describe []byte) (*Schema, error) {
	var d struct {
		Name   string `json:"name"`
		Fields []struct {
			Name               string `json:"name"`
			Label              string `json:"label"`
			Type               string `json:"type"`
			Length             int    `json:"length"`
			RestrictedPicklist bool   `json:"restrictedPicklist"`
			PicklistValues     []struct {
				Value  string `json:"value"`
				Active *bool  `json:"active"`
			} `json:"picklistValues"`
			Nillable          *bool `json:"nillable"`
			DefaultedOnCreate bool  `json:"defaultedOnCreate"`
			Createable        bool  `json:"createable"`
			Updateable        bool  `json:"updateable"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(describe, &d); err != nil {
		return nil, fmt.Errorf("salesforce describe of %s: %w", object, err)
	}
	if len(d.Fields) == 0 {
		return nil, fmt.Errorf("salesforce describe of %s: no fields", object)
	}
	s := &Schema{CRM: "salesforce", Object: object, CaseInsensitive: true}
	for _, df := range d.Fields {
		f := SchemaField{Name: df.Name, Label: df.Label, Type: salesforceTypes[df.Type],
			Required:   df.Createable && df.Nillable != nil && !*df.Nillable && !df.DefaultedOnCreate,
			ReadOnly:   !df.Createable && !df.Updateable,
			CreateOnly: df.Createable && !df.Updateable}
		if f.Type == "" {
			f.Type = TypeOther
		}
		if f.Type == TypeText {
			f.MaxLength = df.Length
		}
		for _, v := range df.PicklistValues {
			if v.Active == nil || *v.Active {
				f.Picklist = append(f.Picklist, v.Value)
			}
		}
		// A combobox is text with suggestions; a picklist that is not
		// restricted takes any value.
		f.OpenPicklist = len(f.Picklist) > 0 && (f.Type != TypePicklist && f.Type != TypeMultiPicklist || !df.RestrictedPicklist)
		s.Fields = append(s.Fields, f)
	}
	return s, s.validate()
}

// salesforceTypes maps Salesforce's field types to a Schema's.
var salesforceTypes = map[string]string{
	"string": TypeText, "textarea": TypeText, "combobox": TypeText, "email": TypeText, "phone": TypeText,
	"url": TypeText, "encryptedstring": TypeText,
	"id": TypeReference, "reference": TypeReference,
	"int": TypeInteger, "long": TypeInteger,
	"double": TypeNumber, "currency": TypeNumber, "percent": TypeNumber,
	"boolean": TypeBoolean, "date": TypeDate, "datetime": TypeDateTime,
	"picklist": TypePicklist, "multipicklist": TypeMultiPicklist,
}

// SchemaFromHubSpot turns HubSpot's properties of an object (GET
// /crm/v3/properties/{object}) into a Schema. HubSpot gives no lengths.
func SchemaFromHubSpot(object string, properties []byte) (*Schema, error) {
	var d struct {
		Results []struct {
			Name      string `json:"name"`
			Label     string `json:"label"`
			Type      string `json:"type"`
			FieldType string `json:"fieldType"`
			Options   []struct {
				Value  string `json:"value"`
				Hidden bool   `json:"hidden"`
			} `json:"options"`
			Calculated           bool `json:"calculated"`
			ModificationMetadata struct {
				ReadOnlyValue bool `json:"readOnlyValue"`
			} `json:"modificationMetadata"`
		} `json:"results"`
	}
	if err := json.Unmarshal(properties, &d); err != nil {
		return nil, fmt.Errorf("hubspot properties of %s: %w", object, err)
	}
	if len(d.Results) == 0 {
		return nil, errors.New("hubspot properties of " + object + ": none")
	}
	s := &Schema{CRM: "hubspot", Object: object}
	for _, p := range d.Results {
		f := SchemaField{Name: p.Name, Label: p.Label, Type: hubspotTypes[p.Type],
			ReadOnly: p.Calculated || p.ModificationMetadata.ReadOnlyValue}
		switch {
		case f.Type == "":
			f.Type = TypeOther
		case p.Type == "enumeration" && p.FieldType == "checkbox":
			f.Type = TypeMultiPicklist
		case p.Type == "enumeration" && p.FieldType == "booleancheckbox":
			f.Type = TypeBoolean
		}
		if f.Type == TypePicklist || f.Type == TypeMultiPicklist {
			for _, o := range p.Options {
				f.Picklist = append(f.Picklist, o.Value)
			}
		}
		s.Fields = append(s.Fields, f)
	}
	// The hubspot target sends these beside the properties.
	s.TargetFields = []string{"associations"}
	return s, s.validate()
}

// hubspotTypes maps HubSpot's property types to a Schema's.
var hubspotTypes = map[string]string{
	"string": TypeText, "phone_number": TypeText, "number": TypeNumber, "bool": TypeBoolean,
	"date": TypeDate, "datetime": TypeDateTime, "enumeration": TypePicklist,
}
