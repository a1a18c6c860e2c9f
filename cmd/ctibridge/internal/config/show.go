package config

import (
	"reflect"
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

// redacted returns a copy of c with every secret replaced.
func (c Config) redacted() Config {
	hide := func(s *string) {
		if *s != "" {
			*s = redacted
		}
	}
	hide(&c.Admin.Token)
	src := c.Sources
	for _, a := range []*SourceAuth{&src.BrightPattern.SourceAuth, &src.Genesys.SourceAuth, &src.Five9.SourceAuth} {
		hide(&a.Token)
	}
	hide(&src.Genesys.GWS.Password)
	c.Sources = src
	targets := make(map[string]TargetConfig, len(c.Targets))
	for name, t := range c.Targets {
		hide(&t.Secret)
		hide(&t.ClientSecret)
		if len(t.Headers) > 0 {
			h := make(map[string]string, len(t.Headers))
			for k := range t.Headers {
				h[k] = redacted
			}
			t.Headers = h
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
			if opts == "squash" {
				for k, x := range tree(v.Field(i)).(map[string]any) {
					out[k] = x
				}
				continue
			}
			if name != "" {
				out[name] = tree(v.Field(i))
			}
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[k.String()] = tree(v.MapIndex(k))
		}
		return out
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = tree(v.Index(i))
		}
		return out
	}
	return v.Interface()
}
