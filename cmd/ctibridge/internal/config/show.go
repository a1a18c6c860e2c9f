package config

import (
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// redacted stands in for a secret's value in Show's output.
const redacted = "[redacted]"

// Show returns c as TOML, in the keys of the config file, with every
// secret (tokens, passwords, signing and client secrets, header values)
// replaced by "[redacted]": what an operator may paste into a ticket.
func (c Config) Show() ([]byte, error) {
	return toml.Marshal(tree(reflect.ValueOf(c.redacted())))
}

// redacted returns a copy of c with every secret replaced, or left out
// where a *_file key names the file it came from.
func (c Config) redacted() Config {
	hide := func(s *string, file string) {
		switch {
		case file != "":
			*s = "" // the file's name is shown instead
		case *s != "":
			*s = redacted
		}
	}
	hide(&c.Admin.Token, c.Admin.TokenFile)
	src := c.Sources
	for _, a := range []*SourceAuth{&src.BrightPattern.SourceAuth, &src.Genesys.SourceAuth, &src.Five9.SourceAuth} {
		hide(&a.Token, a.TokenFile)
	}
	hide(&src.Genesys.GWS.Password, src.Genesys.GWS.PasswordFile)
	c.Sources = src
	targets := make(map[string]TargetConfig, len(c.Targets))
	for name, t := range c.Targets {
		hide(&t.Secret, t.SecretFile)
		hide(&t.ClientSecret, t.ClientSecretFile)
		if len(t.Headers) > 0 {
			h := make(map[string]string, len(t.Headers))
			for k := range t.Headers {
				h[k] = redacted
			}
			t.Headers = h
		}
		if t.Options != nil {
			opts := make(map[string]any, len(t.Options))
			for k, v := range t.Options {
				if slices.Contains(secretOptions, k) && v != "" {
					v = redacted
				}
				opts[k] = v
			}
			for k, file := range t.optionFiles {
				delete(opts, k)
				opts[k+"_file"] = file
			}
			t.Options = opts
		}
		targets[name] = t
	}
	c.Targets = targets
	return c
}

// tree turns a config value into maps keyed by the koanf tags, durations
// written as the file writes them ("30s").
func tree(v reflect.Value) any {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	switch v.Kind() {
	case reflect.Struct:
		out := map[string]any{}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("koanf"), ",")
			fv := v.Field(i)
			switch {
			case opts == "squash" || opts == "remain":
				if fv.Kind() == reflect.Map && fv.IsNil() {
					continue
				}
				for k, x := range tree(fv).(map[string]any) {
					out[k] = x
				}
			case name == "" || name == "-":
			case v.Type() == reflect.TypeFor[TargetConfig]() && sharedKeys[name] != nil && fv.IsZero():
				// a key some types do not take, unset: the file leaves it out
			case (fv.Kind() == reflect.Pointer || fv.Kind() == reflect.Slice || fv.Kind() == reflect.Map) && fv.IsNil():
				// unset: the default applies, as when the file leaves it out
			case (fv.Kind() == reflect.String || fv.Kind() == reflect.Bool) && fv.IsZero():
				// empty text and false are what a file that leaves the key
				// out says too; some keys apply to some target types only
			case fv.Kind() == reflect.Pointer:
				out[name] = tree(fv.Elem())
			default:
				out[name] = tree(fv)
			}
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[k.String()] = tree(v.MapIndex(k))
		}
		return out
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return tree(v.Elem())
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = tree(v.Index(i))
		}
		return out
	}
	return v.Interface()
}
