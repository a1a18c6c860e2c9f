// Package config is ctibridge's configuration: the schema, its embedded
// defaults, strict loading from a TOML file and CTIBRIDGE_* environment
// variables with koanf, secrets from ${ENV} references and *_file paths,
// and validation that reports every problem at once, naming the key.
package config

import (
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/ctibridge/ctibridge/cmd/ctibridge/internal/jobs"
	"github.com/ctibridge/ctibridge/mapping"
	"github.com/ctibridge/ctibridge/outbox"
)

// Config is ctibridge's configuration. config.example.toml documents every
// key; DefaultConfig is what runs with no file at all.
type Config struct {
	Server  ServerConfig            `koanf:"server"`
	Admin   AdminConfig             `koanf:"admin"`
	Store   StoreConfig             `koanf:"store"`
	Mapping MappingConfig           `koanf:"mapping"`
	Targets map[string]TargetConfig `koanf:"targets"`
	Sources SourcesConfig           `koanf:"sources"`
	Dial    DialConfig              `koanf:"dial"`
	Log     LogConfig               `koanf:"log"`
}

// ServerConfig is the ingest listener.
type ServerConfig struct {
	Listen       string `koanf:"listen"`
	MaxBodyBytes int64  `koanf:"max_body_bytes"`
	// MaxInFlight bounds the event posts handled at once; past it a post
	// is answered 503 with Retry-After rather than queued in memory.
	MaxInFlight     int           `koanf:"max_in_flight"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// TLSCertFile and TLSKeyFile, when set, serve HTTPS (and HTTP/2) with
	// that certificate, read again when either file changes: browsers let
	// a bridge on an HTTPS desktop post only to an HTTPS daemon.
	TLSCertFile string `koanf:"tls_cert_file"`
	TLSKeyFile  string `koanf:"tls_key_file"`
}

// AdminConfig is the admin listener: the outbox API and, later, the
// mapping editor. Every request needs the token.
type AdminConfig struct {
	Listen string `koanf:"listen"`
	// Token (or TokenFile) is the admin bearer token. With neither, a
	// random token is generated and kept in <store.path>.admin-token.
	Token     string `koanf:"token"`
	TokenFile string `koanf:"token_file"`
}

// StoreConfig is the SQLite outbox and its housekeeping jobs.
type StoreConfig struct {
	Path        string        `koanf:"path"`
	BusyTimeout time.Duration `koanf:"busy_timeout"`
	Retention   time.Duration `koanf:"retention"`
	// Cron specs, in UTC; an empty RedriveSchedule never redrives.
	PurgeSchedule      string `koanf:"purge_schedule"`
	CheckpointSchedule string `koanf:"checkpoint_schedule"`
	RedriveSchedule    string `koanf:"redrive_schedule"`
	SummarySchedule    string `koanf:"summary_schedule"`
	// FlushSchedule logs the interactions whose completing event never
	// came (see the sources' FlushAfter).
	FlushSchedule string `koanf:"flush_schedule"`
	// JournalSizeLimit bounds the write-ahead log file after checkpoints;
	// MinFree is the free space, in bytes, below which a disk I/O error
	// counts as a full disk (see outbox.DB).
	JournalSizeLimit int64 `koanf:"journal_size_limit"`
	MinFree          int64 `koanf:"min_free"`
}

// MappingConfig says where the mapping files are.
type MappingConfig struct {
	// Dir holds *.toml mapping files; empty uses the embedded default,
	// which logs every interaction to the "jsonl" target.
	Dir string `koanf:"dir"`
	// DefaultRegion is the ISO country code e164() assumes for numbers
	// written without a country code, such as "US" or "DE".
	DefaultRegion string `koanf:"default_region"`
	// SchemaDir holds the CRM schema files (TARGET.OBJECT.schema.json)
	// that `mapping check` checks the rules against and `targets
	// describe` writes; empty means Dir.
	SchemaDir string `koanf:"schema_dir"`
}

// SchemaDirectory is where the schema files are: SchemaDir, or else the
// mapping directory ("" when neither is set).
func (m MappingConfig) SchemaDirectory() string {
	if m.SchemaDir != "" {
		return m.SchemaDir
	}
	return m.Dir
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
	// ConflictMeansDelivered counts a 409 as "already have it".
	ConflictMeansDelivered bool `koanf:"conflict_means_delivered"`
	// OAuth2 client credentials: with TokenURL set, each request carries
	// a bearer token fetched there, refreshed once on a 401.
	TokenURL         string   `koanf:"token_url"`
	ClientID         string   `koanf:"client_id"`
	ClientSecret     string   `koanf:"client_secret"`
	ClientSecretFile string   `koanf:"client_secret_file"`
	Scopes           []string `koanf:"scopes"`
	// every type
	Concurrency int           `koanf:"concurrency"`
	MaxAttempts int           `koanf:"max_attempts"`
	MaxAge      time.Duration `koanf:"max_age"`
	// RateLimit caps requests per second; 0 means no limit.
	RateLimit float64 `koanf:"rate_limit"`
	// After BreakerFailures failed attempts in a row the target is paused
	// for BreakerCooldown (doubling while it keeps failing), then probed
	// with one delivery. 0 failures turns the breaker off.
	BreakerFailures int           `koanf:"breaker_failures"`
	BreakerCooldown time.Duration `koanf:"breaker_cooldown"`
	// The retry schedule (outbox.RetryPolicy): the wait after each failed
	// attempt, the last one repeating; its jitter (0.2 = ±20 %); and the
	// cap on a CRM's Retry-After. Unset keys keep the default schedule.
	RetrySteps    []time.Duration `koanf:"retry_steps"`
	RetryJitter   *float64        `koanf:"retry_jitter"`
	MaxRetryAfter *time.Duration  `koanf:"max_retry_after"`

	// Options are the keys of a CRM type's own, decoded by Load into the
	// one of Salesforce, HubSpot, Dynamics, ServiceNow and Zendesk that
	// matches Type.
	Options map[string]any `koanf:",remain"`
	// optionFiles are the files the secret options were read from, by
	// option, for Show.
	optionFiles map[string]string
	Salesforce  *SalesforceOptions `koanf:"-"`
	HubSpot     *HubSpotOptions    `koanf:"-"`
	Dynamics    *DynamicsOptions   `koanf:"-"`
	ServiceNow  *ServiceNowOptions `koanf:"-"`
	Zendesk     *ZendeskOptions    `koanf:"-"`
}

// SourcesConfig configures the contact-center sources.
type SourcesConfig struct {
	BrightPattern BrightPatternConfig `koanf:"brightpattern"`
	Genesys       GenesysConfig       `koanf:"genesys"`
	Five9         Five9Config         `koanf:"five9"`
}

// SourceAuth says who may post a source's events.
type SourceAuth struct {
	// Token (or TokenFile), when set, must come as "Authorization: Bearer
	// <token>" with every event.
	Token     string `koanf:"token"`
	TokenFile string `koanf:"token_file"`
	// AllowedOrigins are the web origins whose pages may post events (the
	// browser bridge), such as "https://acme.my.salesforce.com". A browser
	// request from any other origin is refused with 403.
	AllowedOrigins []string `koanf:"allowed_origins"`
}

// BrightPatternConfig configures the Bright Pattern source.
type BrightPatternConfig struct {
	SourceAuth `koanf:",squash"`
	// LogOnEnd makes ON_INTERACTION_END produce activities too.
	LogOnEnd bool `koanf:"log_on_end"`
}

// GenesysConfig configures the Genesys source: WWE events posted by the
// bridge, and optionally a Genesys Web Services CometD subscription.
type GenesysConfig struct {
	SourceAuth `koanf:",squash"`
	// DispositionKey is the userData key holding the disposition.
	DispositionKey string `koanf:"disposition_key"`
	// GWS, when URL is set, subscribes to Genesys Web Services notifications.
	GWS GWSConfig `koanf:"gws"`
	// FlushAfter logs, flagged incomplete, an interaction that ended but
	// was not marked done after this long; 0 never does.
	FlushAfter time.Duration `koanf:"flush_after"`
}

// GWSConfig is a Genesys Web Services CometD subscription.
type GWSConfig struct {
	// URL is the CometD endpoint, such as https://gws.example.com/genesys/cometd.
	URL          string   `koanf:"url"`
	Username     string   `koanf:"username"`
	Password     string   `koanf:"password"`
	PasswordFile string   `koanf:"password_file"`
	Channels     []string `koanf:"channels"`
}

// Five9Config configures the Five9 source.
type Five9Config struct {
	SourceAuth `koanf:",squash"`
	// FlushAfter logs, flagged incomplete, an interaction that ended but
	// was not finished after this long; 0 never does.
	FlushAfter time.Duration `koanf:"flush_after"`
}

// DialConfig configures click-to-dial (GET /dial, POST /v1/dial).
type DialConfig struct {
	// RateLimit is the dials a minute allowed each agent; past it, the
	// agent's dials are refused for Quarantine. 0 means no limit.
	RateLimit  int           `koanf:"rate_limit"`
	Quarantine time.Duration `koanf:"quarantine"`
	// AckTimeout is how long a desktop tab has to take a dial before it
	// goes to the agent's next tab; ExpireAfter, how long a dial waits for
	// any tab before it is given up.
	AckTimeout  time.Duration `koanf:"ack_timeout"`
	ExpireAfter time.Duration `koanf:"expire_after"`
	// LinkWindow: a call of the agent to the number dialed, starting this
	// long after the dial at most, is logged against the record clicked
	// from. 0 never links that way.
	LinkWindow time.Duration `koanf:"link_window"`
	// ExtensionPattern is a regular expression matching internal
	// extensions, dialed as written; empty dials none.
	ExtensionPattern string `koanf:"extension_pattern"`
	// KeyFile holds the key that signs the agent cookie; default
	// <store.path>.dial-key, generated on the first start.
	KeyFile string `koanf:"key_file"`
	// Users maps CRM users (GET /dial?user=…) to agents.
	Users []DialUser `koanf:"users"`
}

// DialUser maps a CRM user id to the agent id of the desktop that dials
// for them.
type DialUser struct {
	CRMUser string `koanf:"crm_user"`
	Agent   string `koanf:"agent"`
}

// DialKeyFile is the file of the agent cookie's key.
func (c *Config) DialKeyFile() string {
	if c.Dial.KeyFile != "" {
		return c.Dial.KeyFile
	}
	return c.Store.Path + ".dial-key"
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // text or json
}

// DefaultConfig runs a newcomer's first daemon: everything local, call logs
// appended to activities.jsonl.
func DefaultConfig() Config {
	return Config{
		Server: ServerConfig{
			Listen:          "127.0.0.1:8080",
			MaxBodyBytes:    1 << 20,
			MaxInFlight:     512,
			ShutdownTimeout: 10 * time.Second,
		},
		Admin: AdminConfig{Listen: "127.0.0.1:8081"},
		Sources: SourcesConfig{
			Genesys: GenesysConfig{
				DispositionKey: "DispositionCode",
				GWS:            GWSConfig{Channels: []string{"/v2/me/interactions"}},
				FlushAfter:     2 * time.Hour,
			},
			Five9: Five9Config{FlushAfter: 2 * time.Hour},
		},
		Store: StoreConfig{
			Path:               "ctibridge.db",
			BusyTimeout:        5 * time.Second,
			Retention:          30 * 24 * time.Hour,
			PurgeSchedule:      "@every 1h",
			CheckpointSchedule: "@every 5m",
			SummarySchedule:    "0 0 * * *",
			FlushSchedule:      "@every 5m",
			JournalSizeLimit:   32 << 20,
			MinFree:            16 << 20,
		},
		Dial: DialConfig{
			RateLimit:        4,
			Quarantine:       30 * time.Second,
			AckTimeout:       2 * time.Second,
			ExpireAfter:      time.Minute,
			LinkWindow:       10 * time.Minute,
			ExtensionPattern: "^[0-9]{3,5}$",
		},
		Targets: map[string]TargetConfig{
			"jsonl": defaultTarget(TargetConfig{Type: TypeJSONL, Path: "activities.jsonl"}, func(string) bool { return false }),
		},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}

// defaultTarget fills in the defaults every target type shares. set
// reports whether the admin set a key; max_attempts, max_age and
// breaker_failures set to 0 mean "no limit" and "no breaker", so only an
// absent key takes the default.
func defaultTarget(t TargetConfig, set func(key string) bool) TargetConfig {
	t.Concurrency = cmp.Or(t.Concurrency, 4)
	if !set("max_attempts") {
		t.MaxAttempts = 20
	}
	if !set("max_age") {
		t.MaxAge = 24 * time.Hour
	}
	if !set("breaker_failures") {
		t.BreakerFailures = 5
	}
	t.BreakerCooldown = cmp.Or(t.BreakerCooldown, 30*time.Second)
	if t.Type != TypeJSONL {
		t.Timeout = cmp.Or(t.Timeout, 15*time.Second)
	}
	return t
}

// EnvPrefix starts every environment variable that overrides the config:
// CTIBRIDGE_SERVER__LISTEN sets server.listen.
const EnvPrefix = "CTIBRIDGE_"

// Load reads path (none when empty) over DefaultConfig, then the
// CTIBRIDGE_* variables of environ over that, and validates the result.
// Unknown keys are errors that name the key.
func Load(path string, environ []string) (Config, error) {
	c, unresolved, err := load(path, environ)
	if err != nil {
		return Config{}, err
	}
	if unresolved != nil {
		return Config{}, unresolved
	}
	return c, nil
}

// LoadWithoutSecrets loads the configuration as Load does, except that a
// secret that cannot be resolved (an unset ${ENV}, an unreadable *_file) is
// not an error but listed in unresolved, its value left empty: commands that
// need only the targets' names, such as mapping check, then work on a
// machine without the daemon's secrets.
func LoadWithoutSecrets(path string, environ []string) (c Config, unresolved, err error) {
	return load(path, environ)
}

// load reads and validates the configuration; unresolved lists the secrets
// it could not resolve.
func load(path string, environ []string) (c Config, unresolved, err error) {
	k := koanf.New(".")
	if path != "" {
		if err := k.Load(file.Provider(path), toml.Parser()); err != nil {
			return Config{}, nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	err = k.Load(env.Provider(".", env.Opt{
		Prefix: EnvPrefix,
		TransformFunc: func(key, value string) (string, any) {
			key = strings.ToLower(strings.TrimPrefix(key, EnvPrefix))
			return strings.ReplaceAll(key, "__", "."), value
		},
		EnvironFunc: func() []string { return environ },
	}), nil)
	if err != nil {
		return Config{}, nil, fmt.Errorf("config from environment: %w", err)
	}

	c = DefaultConfig()
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
		return Config{}, nil, fmt.Errorf("%s (or %s* environment variables): %w", where, EnvPrefix, err)
	}
	var targetErrs []error
	for name, t := range c.Targets {
		set := func(key string) bool { return k.Exists("targets." + name + "." + key) }
		t = defaultTarget(t, set)
		if slices.Contains(types, t.Type) {
			targetErrs = append(targetErrs, checkSharedKeys("targets."+name, t.Type, set)...)
		}
		c.Targets[name] = t
	}

	unresolved = c.resolveSecrets(environ)
	for _, name := range c.TargetNames() {
		t := c.Targets[name]
		if err := t.decodeOptions("targets." + name); err != nil {
			targetErrs = append(targetErrs, err)
		}
		c.Targets[name] = t
	}
	if err := errors.Join(append(targetErrs, c.Validate())...); err != nil {
		return Config{}, nil, err
	}
	return c, unresolved, nil
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
	if c.Server.MaxInFlight <= 0 {
		bad("server.max_in_flight", "must be positive")
	}
	if c.Server.ShutdownTimeout <= 0 {
		bad("server.shutdown_timeout", "must be positive")
	}
	if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
		bad("admin.listen", "want host:port, got %q", c.Admin.Listen)
	}
	if c.Store.Path == "" {
		bad("store.path", "required")
	}
	if c.Store.BusyTimeout <= 0 {
		bad("store.busy_timeout", "must be positive")
	}
	if c.Store.Retention <= 0 {
		bad("store.retention", "must be positive")
	}
	if c.Store.JournalSizeLimit <= 0 || c.Store.MinFree < 0 {
		bad("store", "journal_size_limit must be positive, min_free not negative")
	}
	if (c.Server.TLSCertFile == "") != (c.Server.TLSKeyFile == "") {
		bad("server", "tls_cert_file and tls_key_file go together")
	}
	for key, spec := range map[string]string{
		"store.purge_schedule":      c.Store.PurgeSchedule,
		"store.checkpoint_schedule": c.Store.CheckpointSchedule,
		"store.summary_schedule":    c.Store.SummarySchedule,
		"store.redrive_schedule":    c.Store.RedriveSchedule,
		"store.flush_schedule":      c.Store.FlushSchedule,
	} {
		if spec == "" && key == "store.redrive_schedule" {
			continue
		}
		if err := jobs.CheckSchedule(spec); err != nil {
			bad(key, "%v", err)
		}
	}
	if c.Sources.Genesys.FlushAfter < 0 {
		bad("sources.genesys.flush_after", "must not be negative")
	}
	if c.Sources.Five9.FlushAfter < 0 {
		bad("sources.five9.flush_after", "must not be negative")
	}
	if len(c.Targets) == 0 {
		bad("targets", "at least one target is required")
	}
	for _, name := range c.TargetNames() {
		t := c.Targets[name]
		key := "targets." + name
		switch t.Type {
		case TypeJSONL:
			if t.Path == "" {
				bad(key+".path", "required for a jsonl target")
			}
		case TypeWebhook:
			if t.URL == "" {
				bad(key+".url", "required for a webhook target")
			}
			if (t.TokenURL == "") != (t.ClientID == "") {
				bad(key, "token_url and client_id go together (OAuth2 client credentials)")
			}
		case TypeSalesforce, TypeHubSpot, TypeDynamics, TypeServiceNow, TypeZendesk:
			// Their own keys are checked by their packages when the targets
			// are built: at start, and by `ctibridge config check`.
		case "":
			bad(key+".type", "%v", errNoType)
		default:
			bad(key+".type", "unknown type %q (want %s)", t.Type, strings.Join(types, ", "))
		}
		if t.Type != TypeJSONL && t.Timeout <= 0 {
			bad(key+".timeout", "must be positive")
		}
		if err := t.RetryPolicy().Validate(); err != nil {
			for _, e := range strings.Split(err.Error(), "\n") {
				errs = append(errs, fmt.Errorf("%s.%s", key, e))
			}
		}
		if t.Concurrency < 0 || t.RateLimit < 0 ||
			t.BreakerFailures < 0 || t.BreakerCooldown < 0 {
			bad(key, "concurrency, rate_limit and breaker_* must not be negative")
		}
	}
	for name, a := range c.SourceAuths() {
		for _, o := range a.AllowedOrigins {
			if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				(u.Path != "" && u.Path != "/") || u.RawQuery != "" {
				bad("sources."+name+".allowed_origins", "%q is not an origin (scheme://host[:port])", o)
			}
		}
	}
	if g := c.Sources.Genesys; g.GWS.URL != "" {
		if u, err := url.Parse(g.GWS.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("sources.genesys.gws.url", "want an http or https URL, got %q", g.GWS.URL)
		}
		if len(g.GWS.Channels) == 0 {
			bad("sources.genesys.gws.channels", "at least one channel is required")
		}
	}
	if c.Sources.Genesys.DispositionKey == "" {
		bad("sources.genesys.disposition_key", "required")
	}
	if d := c.Dial; d.RateLimit < 0 || d.Quarantine < 0 || d.LinkWindow < 0 {
		bad("dial", "rate_limit, quarantine and link_window must not be negative")
	}
	if c.Dial.AckTimeout <= 0 {
		bad("dial.ack_timeout", "must be positive")
	}
	if c.Dial.ExpireAfter < c.Dial.AckTimeout {
		bad("dial.expire_after", "must be at least dial.ack_timeout (%s)", c.Dial.AckTimeout)
	}
	if _, err := regexp.Compile(c.Dial.ExtensionPattern); err != nil {
		bad("dial.extension_pattern", "%v", err)
	}
	seen := map[string]bool{}
	for i, u := range c.Dial.Users {
		key := fmt.Sprintf("dial.users[%d]", i)
		switch {
		case u.CRMUser == "" || u.Agent == "":
			bad(key, "crm_user and agent are required")
		case seen[u.CRMUser]:
			bad(key+".crm_user", "%q is mapped twice", u.CRMUser)
		}
		seen[u.CRMUser] = true
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

// SourceAuths returns each source's auth settings, by platform name.
func (c *Config) SourceAuths() map[string]*SourceAuth {
	return map[string]*SourceAuth{
		"brightpattern": &c.Sources.BrightPattern.SourceAuth,
		"genesys":       &c.Sources.Genesys.SourceAuth,
		"five9":         &c.Sources.Five9.SourceAuth,
	}
}

// TargetNames returns the configured targets' names, sorted.
func (c *Config) TargetNames() []string {
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
	if c.Admin.TokenFile != "" {
		if c.Admin.Token != "" {
			errs = append(errs, errors.New("admin: set token or token_file, not both"))
		}
		b, err := os.ReadFile(c.Admin.TokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("admin.token_file: %w", err))
		}
		c.Admin.Token = strings.TrimSpace(string(b))
	}
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
	c.Admin.Token = expand("admin.token", c.Admin.Token)
	for name, a := range c.SourceAuths() {
		key := "sources." + name
		if a.TokenFile != "" {
			if a.Token != "" {
				errs = append(errs, fmt.Errorf("%s: set token or token_file, not both", key))
			}
			b, err := os.ReadFile(a.TokenFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.token_file: %w", key, err))
			}
			a.Token = strings.TrimSpace(string(b))
		}
		a.Token = expand(key+".token", a.Token)
	}
	if g := &c.Sources.Genesys.GWS; g.PasswordFile != "" {
		if g.Password != "" {
			errs = append(errs, errors.New("sources.genesys.gws: set password or password_file, not both"))
		}
		b, err := os.ReadFile(g.PasswordFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("sources.genesys.gws.password_file: %w", err))
		}
		g.Password = strings.TrimSpace(string(b))
	}
	c.Sources.Genesys.GWS.Password = expand("sources.genesys.gws.password", c.Sources.Genesys.GWS.Password)
	for _, name := range c.TargetNames() {
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
		if t.ClientSecretFile != "" {
			if t.ClientSecret != "" {
				errs = append(errs, fmt.Errorf("%s: set client_secret or client_secret_file, not both", key))
			}
			b, err := os.ReadFile(t.ClientSecretFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.client_secret_file: %w", key, err))
			}
			t.ClientSecret = strings.TrimSpace(string(b))
		}
		t.ClientSecret = expand(key+".client_secret", t.ClientSecret)
		// Not secrets, but kept out of the file all the same by many
		// admins (a connected app's consumer key, an instance's URL).
		t.ClientID = expand(key+".client_id", t.ClientID)
		t.URL = expand(key+".url", t.URL)
		t.TokenURL = expand(key+".token_url", t.TokenURL)
		if len(t.Headers) > 0 {
			h := make(map[string]string, len(t.Headers))
			for hk, hv := range t.Headers {
				h[hk] = expand(key+".headers."+hk, hv)
			}
			t.Headers = h
		}
		if t.Options != nil {
			opts := make(map[string]any, len(t.Options))
			for k, v := range t.Options {
				opts[k] = v
			}
			t.Options = opts
			errs = append(errs, t.resolveOptionSecrets(key, expand)...)
		}
		c.Targets[name] = t
	}
	return errors.Join(errs...)
}

// FlushAfter is how long each platform's snapshots wait for their
// completing event before the flush job logs them, by platform; a platform
// that is absent, or 0, is never flushed.
func (c *Config) FlushAfter() map[string]time.Duration {
	return map[string]time.Duration{
		"genesys": c.Sources.Genesys.FlushAfter,
		"five9":   c.Sources.Five9.FlushAfter,
	}
}

//go:embed defaults/mapping.toml
var defaultMapping []byte

// MappingStore returns a store for the mapping directory, or for the
// embedded default mapping when none is configured.
func (c *Config) MappingStore() *mapping.Store {
	s := &mapping.Store{Dir: c.Mapping.Dir, Options: mapping.Options{
		Targets: c.TargetNames(), DefaultRegion: c.Mapping.DefaultRegion}}
	if s.Dir == "" {
		s.Fixed = []mapping.File{{Name: "(embedded default mapping)", Data: defaultMapping}}
	}
	return s
}

// LoadMappings loads the mappings once, for commands that do not serve.
func (c *Config) LoadMappings() (*mapping.Set, error) {
	s := c.MappingStore()
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s.Current(), nil
}

// RetryPolicy is the target's retry schedule: the default one, with the
// keys the target sets.
func (t TargetConfig) RetryPolicy() outbox.RetryPolicy {
	p := outbox.DefaultRetryPolicy()
	p.MaxAttempts, p.MaxAge = t.MaxAttempts, t.MaxAge
	if t.RetrySteps != nil {
		p.Steps = t.RetrySteps
	}
	if t.RetryJitter != nil {
		p.Jitter = *t.RetryJitter
	}
	if t.MaxRetryAfter != nil {
		p.MaxRetryAfter = *t.MaxRetryAfter
	}
	return p
}
