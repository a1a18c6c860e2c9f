package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/robfig/cron/v3"
)

// Config is ctibridge's configuration. config.example.toml documents every
// key; DefaultConfig is what runs with no file at all.
type Config struct {
	Server  ServerConfig            `koanf:"server"`
	Store   StoreConfig             `koanf:"store"`
	Mapping MappingConfig           `koanf:"mapping"`
	Targets map[string]TargetConfig `koanf:"targets"`
	Sources SourcesConfig           `koanf:"sources"`
	Log     LogConfig               `koanf:"log"`
}

// ServerConfig is the ingest listener.
type ServerConfig struct {
	Listen          string        `koanf:"listen"`
	MaxBodyBytes    int64         `koanf:"max_body_bytes"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
}

// StoreConfig is the SQLite outbox.
type StoreConfig struct {
	Path          string        `koanf:"path"`
	Retention     time.Duration `koanf:"retention"`
	PurgeSchedule string        `koanf:"purge_schedule"`
}

// MappingConfig says where the mapping files are.
type MappingConfig struct {
	// Dir holds *.toml mapping files; empty uses the embedded default,
	// which logs every interaction to the "jsonl" target.
	Dir string `koanf:"dir"`
}

// TargetConfig is one delivery target. Which keys apply depends on Type.
type TargetConfig struct {
	Type string `koanf:"type"`
	// jsonl
	Path string `koanf:"path"`
	// webhook
	URL        string            `koanf:"url"`
	Secret     string            `koanf:"secret"`
	SecretFile string            `koanf:"secret_file"`
	Headers    map[string]string `koanf:"headers"`
	Timeout    time.Duration     `koanf:"timeout"`
	// every type
	Concurrency int           `koanf:"concurrency"`
	MaxAttempts int           `koanf:"max_attempts"`
	MaxAge      time.Duration `koanf:"max_age"`
}

// SourcesConfig configures the contact-center sources.
type SourcesConfig struct {
	BrightPattern BrightPatternConfig `koanf:"brightpattern"`
}

// BrightPatternConfig configures the Bright Pattern source.
type BrightPatternConfig struct {
	// LogOnEnd makes ON_INTERACTION_END produce activities too.
	LogOnEnd bool `koanf:"log_on_end"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // text or json
}

// Target types.
const (
	targetJSONL   = "jsonl"
	targetWebhook = "webhook"
)

// DefaultConfig runs a newcomer's first daemon: everything local, call logs
// appended to activities.jsonl.
func DefaultConfig() Config {
	return Config{
		Server: ServerConfig{
			Listen:          "127.0.0.1:8080",
			MaxBodyBytes:    1 << 20,
			ShutdownTimeout: 10 * time.Second,
		},
		Store: StoreConfig{
			Path:          "ctibridge.db",
			Retention:     30 * 24 * time.Hour,
			PurgeSchedule: "@every 1h",
		},
		Targets: map[string]TargetConfig{
			"jsonl": {Type: targetJSONL, Path: "activities.jsonl"},
		},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}

// envPrefix starts every environment variable that overrides the config:
// CTIBRIDGE_SERVER__LISTEN sets server.listen.
const envPrefix = "CTIBRIDGE_"

// LoadConfig reads path (none when empty) over DefaultConfig, then the
// CTIBRIDGE_* variables of environ over that, and validates the result.
// Unknown keys are errors that name the key.
func LoadConfig(path string, environ []string) (Config, error) {
	k := koanf.New(".")
	if path != "" {
		if err := k.Load(file.Provider(path), toml.Parser()); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	err := k.Load(env.Provider(".", env.Opt{
		Prefix: envPrefix,
		TransformFunc: func(key, value string) (string, any) {
			key = strings.ToLower(strings.TrimPrefix(key, envPrefix))
			return strings.ReplaceAll(key, "__", "."), value
		},
		EnvironFunc: func() []string { return environ },
	}), nil)
	if err != nil {
		return Config{}, fmt.Errorf("config from environment: %w", err)
	}

	c := DefaultConfig()
	if k.Exists("targets") {
		c.Targets = nil // configured targets replace the default one
	}
	err = k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf", DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.TextUnmarshallerHookFunc()),
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		Result:           &c,
	}})
	if err != nil {
		where := "config"
		if path != "" {
			where += " " + path
		}
		return Config{}, fmt.Errorf("%s (or %s* environment variables): %w", where, envPrefix, err)
	}
	if err := c.resolveSecrets(environ); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Server.Listen); err != nil {
		bad("server.listen", "want host:port, got %q", c.Server.Listen)
	}
	if c.Server.MaxBodyBytes <= 0 {
		bad("server.max_body_bytes", "must be positive")
	}
	if c.Server.ShutdownTimeout <= 0 {
		bad("server.shutdown_timeout", "must be positive")
	}
	if c.Store.Path == "" {
		bad("store.path", "required")
	}
	if c.Store.Retention <= 0 {
		bad("store.retention", "must be positive")
	}
	if err := checkSchedule(c.Store.PurgeSchedule); err != nil {
		bad("store.purge_schedule", "%v", err)
	}
	if len(c.Targets) == 0 {
		bad("targets", "at least one target is required")
	}
	for _, name := range c.targetNames() {
		t := c.Targets[name]
		key := "targets." + name
		switch t.Type {
		case targetJSONL:
			if t.Path == "" {
				bad(key+".path", "required for a jsonl target")
			}
			if t.URL != "" || t.Secret != "" || t.SecretFile != "" || len(t.Headers) > 0 || t.Timeout != 0 {
				bad(key, "url, secret, secret_file, headers and timeout apply to webhook targets, not jsonl")
			}
		case targetWebhook:
			if t.URL == "" {
				bad(key+".url", "required for a webhook target")
			}
			if t.Path != "" {
				bad(key+".path", "applies to jsonl targets, not webhook")
			}
			if t.Timeout < 0 {
				bad(key+".timeout", "must not be negative")
			}
		case "":
			bad(key+".type", "required (jsonl or webhook)")
		default:
			bad(key+".type", "unknown type %q (want jsonl or webhook)", t.Type)
		}
		if t.Concurrency < 0 || t.MaxAttempts < 0 || t.MaxAge < 0 {
			bad(key, "concurrency, max_attempts and max_age must not be negative")
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "want text or json, got %q", c.Log.Format)
	}
	return errors.Join(errs...)
}

func (c *Config) targetNames() []string {
	names := make([]string, 0, len(c.Targets))
	for n := range c.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// secretRef is a ${NAME} reference to an environment variable.
var secretRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// resolveSecrets replaces ${NAME} in secrets and header values with the
// environment variable NAME, and reads secret_file, so that no secret needs
// to be written in the config file itself.
func (c *Config) resolveSecrets(environ []string) error {
	lookup := func(name string) (string, bool) {
		for _, kv := range environ {
			if k, v, ok := strings.Cut(kv, "="); ok && k == name {
				return v, true
			}
		}
		return "", false
	}
	var errs []error
	expand := func(key, s string) string {
		return secretRef.ReplaceAllStringFunc(s, func(ref string) string {
			name := ref[2 : len(ref)-1]
			v, ok := lookup(name)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: environment variable %s is not set", key, name))
			}
			return v
		})
	}
	for _, name := range c.targetNames() {
		t := c.Targets[name]
		key := "targets." + name
		if t.SecretFile != "" {
			if t.Secret != "" {
				errs = append(errs, fmt.Errorf("%s: set secret or secret_file, not both", key))
			}
			b, err := os.ReadFile(t.SecretFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.secret_file: %w", key, err))
			}
			t.Secret = strings.TrimSpace(string(b))
		}
		t.Secret = expand(key+".secret", t.Secret)
		if len(t.Headers) > 0 {
			h := make(map[string]string, len(t.Headers))
			for hk, hv := range t.Headers {
				h[hk] = expand(key+".headers."+hk, hv)
			}
			t.Headers = h
		}
		c.Targets[name] = t
	}
	return errors.Join(errs...)
}

// cronParser accepts 5- or 6-field specs and descriptors such as @every 1h.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// checkSchedule parses a cron spec. robfig/cron panics on some malformed
// specs (such as "TZ=UTC" alone), so the panic becomes an error here.
func checkSchedule(spec string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid schedule %q", spec)
		}
	}()
	if _, err := cronParser.Parse(spec); err != nil {
		return fmt.Errorf("invalid schedule %q: %v", spec, err)
	}
	return nil
}
