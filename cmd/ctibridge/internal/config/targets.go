package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// Target types, the values of targets.NAME.type.
const (
	TypeJSONL      = "jsonl"
	TypeWebhook    = "webhook"
	TypeSalesforce = "salesforce"
	TypeHubSpot    = "hubspot"
	TypeDynamics   = "dynamics"
	TypeServiceNow = "servicenow"
	TypeZendesk    = "zendesk"
)

// types lists every target type, for messages.
var types = []string{TypeJSONL, TypeWebhook, TypeSalesforce, TypeHubSpot, TypeDynamics, TypeServiceNow, TypeZendesk}

// sharedKeys are the TargetConfig keys that only some types take, with
// those types. The keys every type takes (concurrency, max_attempts, the
// retry schedule, the breaker …) are not listed.
var sharedKeys = map[string][]string{
	"path":                     {TypeJSONL},
	"secret":                   {TypeWebhook},
	"secret_file":              {TypeWebhook},
	"headers":                  {TypeWebhook},
	"scopes":                   {TypeWebhook},
	"conflict_means_delivered": {TypeWebhook},
	"url":                      {TypeWebhook, TypeDynamics, TypeServiceNow, TypeZendesk},
	"timeout":                  {TypeWebhook, TypeSalesforce, TypeHubSpot, TypeDynamics, TypeServiceNow, TypeZendesk},
	"token_url":                {TypeWebhook, TypeHubSpot, TypeDynamics, TypeServiceNow},
	"client_id":                {TypeWebhook, TypeSalesforce, TypeHubSpot, TypeDynamics, TypeServiceNow},
	"client_secret":            {TypeWebhook, TypeSalesforce, TypeHubSpot, TypeDynamics, TypeServiceNow},
	"client_secret_file":       {TypeWebhook, TypeSalesforce, TypeHubSpot, TypeDynamics, TypeServiceNow},
}

// secretOptions are the CRM options that hold a secret: taken from ${ENV}
// or from a file named by the same key with _file, and redacted by Show.
var secretOptions = []string{"token", "refresh_token", "password", "api_token", "oauth_token"}

// SalesforceOptions are a salesforce target's own keys (connector/salesforce
// documents each). client_id and client_secret are shared keys.
type SalesforceOptions struct {
	LoginURL        string         `koanf:"login_url"`
	PrivateKeyFile  string         `koanf:"private_key_file"`
	Username        string         `koanf:"username"`
	Audience        string         `koanf:"audience"`
	SessionTimeout  time.Duration  `koanf:"session_timeout"`
	APIVersion      string         `koanf:"api_version"`
	Object          string         `koanf:"object"`
	ExternalIDField string         `koanf:"external_id_field"`
	TaskSubtype     string         `koanf:"task_subtype"`
	FieldLimits     map[string]int `koanf:"field_limits"`
	LimitThreshold  float64        `koanf:"limit_threshold"`
	LimitWait       time.Duration  `koanf:"limit_wait"`
	MatchRules      []string       `koanf:"match_rules"`
	MatchCacheTTL   time.Duration  `koanf:"match_cache_ttl"`
	MatchMultiple   string         `koanf:"match_multiple"`
	MatchFlagField  string         `koanf:"match_flag_field"`
}

// HubSpotOptions are a hubspot target's own keys (connector/hubspot
// documents each). token_url, client_id and client_secret are shared keys.
type HubSpotOptions struct {
	Token            string        `koanf:"token"`
	RefreshToken     string        `koanf:"refresh_token"`
	BaseURL          string        `koanf:"base_url"`
	ObjectsPath      string        `koanf:"objects_path"`
	AssociationsPath string        `koanf:"associations_path"`
	IDProperty       string        `koanf:"id_property"`
	Match            *HubSpotMatch `koanf:"match"`
}

// HubSpotMatch is a hubspot target's caller match.
type HubSpotMatch struct {
	Properties   []string      `koanf:"properties"`
	CacheFor     time.Duration `koanf:"cache_for"`
	Multiple     string        `koanf:"multiple"`
	FlagProperty string        `koanf:"flag_property"`
}

// DynamicsOptions are a dynamics target's own keys (connector/dynamics
// documents each). url, token_url, client_id and client_secret are shared.
type DynamicsOptions struct {
	TenantID      string            `koanf:"tenant_id"`
	Scope         string            `koanf:"scope"`
	APIVersion    string            `koanf:"api_version"`
	EntitySets    map[string]string `koanf:"entity_sets"`
	LeaveOpen     bool              `koanf:"leave_open"`
	MatchRules    []string          `koanf:"match_rules"`
	MatchCacheTTL time.Duration     `koanf:"match_cache_ttl"`
	MatchMultiple string            `koanf:"match_multiple"`
}

// ServiceNowOptions are a servicenow target's own keys
// (connector/servicenow documents each). url, token_url, client_id and
// client_secret are shared.
type ServiceNowOptions struct {
	Username         string   `koanf:"username"`
	Password         string   `koanf:"password"`
	Table            string   `koanf:"table"`
	CorrelationField string   `koanf:"correlation_field"`
	CallerField      string   `koanf:"caller_field"`
	MatchTable       string   `koanf:"match_table"`
	MatchColumns     []string `koanf:"match_columns"`
}

// ZendeskOptions are a zendesk target's own keys (connector/zendesk
// documents each). url is shared.
type ZendeskOptions struct {
	Email      string `koanf:"email"`
	APIToken   string `koanf:"api_token"`
	OAuthToken string `koanf:"oauth_token"`
}

// decodeOptions decodes t's own keys, strictly, into the options of its
// type. A key no option has is an error that names it.
func (t *TargetConfig) decodeOptions(key string) error {
	var dst any
	switch t.Type {
	case TypeSalesforce:
		t.Salesforce = &SalesforceOptions{}
		dst = t.Salesforce
	case TypeHubSpot:
		t.HubSpot = &HubSpotOptions{}
		dst = t.HubSpot
	case TypeDynamics:
		t.Dynamics = &DynamicsOptions{}
		dst = t.Dynamics
	case TypeServiceNow:
		t.ServiceNow = &ServiceNowOptions{}
		dst = t.ServiceNow
	case TypeZendesk:
		t.Zendesk = &ZendeskOptions{}
		dst = t.Zendesk
	default:
		if len(t.Options) > 0 {
			return fmt.Errorf("%s: unknown keys for a %s target: %s", key, t.Type, strings.Join(optionNames(t.Options), ", "))
		}
		return nil
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:     "koanf",
		ErrorUnused: true,
		// Exact names, as koanf matches every other key: "Token" is an
		// unknown key, not a secret taken in clear.
		MatchName:        func(key, field string) bool { return key == field },
		WeaklyTypedInput: true,
		DecodeHook:       mapstructure.StringToTimeDurationHookFunc(),
		Result:           dst,
	})
	if err != nil {
		return err
	}
	if err := dec.Decode(t.Options); err != nil {
		return fmt.Errorf("%s (a %s target): %w", key, t.Type, err)
	}
	return nil
}

// resolveOptionSecrets expands ${NAME} in the secret options and reads
// their *_file keys, in t.Options before they are decoded.
func (t *TargetConfig) resolveOptionSecrets(key string, expand func(key, s string) string) []error {
	var errs []error
	for _, name := range secretOptions {
		file, hasFile := t.Options[name+"_file"].(string)
		if hasFile {
			delete(t.Options, name+"_file")
			if _, both := t.Options[name]; both {
				errs = append(errs, fmt.Errorf("%s: set %s or %s_file, not both", key, name, name))
			}
			b, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.%s_file: %w", key, name, err))
			}
			t.Options[name] = strings.TrimSpace(string(b))
			if t.optionFiles == nil {
				t.optionFiles = map[string]string{}
			}
			t.optionFiles[name] = file
			continue
		}
	}
	// ${NAME} works in every text option, secret or not.
	for name, v := range t.Options {
		if text, ok := v.(string); ok {
			t.Options[name] = expand(key+"."+name, text)
		}
	}
	return errs
}

// checkSharedKeys reports the shared keys set on a target whose type does
// not take them.
func checkSharedKeys(key, typ string, set func(string) bool) []error {
	var errs []error
	names := make([]string, 0, len(sharedKeys))
	for k := range sharedKeys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if set(k) && !slices.Contains(sharedKeys[k], typ) {
			errs = append(errs, fmt.Errorf("%s.%s: applies to %s targets, not %s", key, k, strings.Join(sharedKeys[k], ", "), typ))
		}
	}
	return errs
}

func optionNames(m map[string]any) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

var errNoType = errors.New("required (" + strings.Join(types, ", ") + ")")
