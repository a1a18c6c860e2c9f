package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig_Defaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Errorf("LoadConfig with no file = %+v, want DefaultConfig()", c)
	}
}

// TestConfigExample keeps config.example.toml honest: it parses strictly
// and says exactly what the defaults are.
func TestConfigExample(t *testing.T) {
	c, err := Load("../../../../config.example.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := DefaultConfig(); !reflect.DeepEqual(c, want) {
		t.Errorf("config.example.toml =\n%+v\nwant the defaults\n%+v", c, want)
	}
}

func writeFile(tb testing.TB, text string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestLoadConfig_FileAndEnvironment(t *testing.T) {
	path := writeFile(t, `
[server]
listen = "127.0.0.1:9000"
[targets.crm]
type = "webhook"
url = "https://crm.example/hook"
secret = "${HOOK_SECRET}"
headers = { Authorization = "Bearer ${TOKEN}" }
timeout = "3s"
`)
	env := []string{"HOOK_SECRET=whsec_abc", "TOKEN=t0k", "CTIBRIDGE_SERVER__LISTEN=127.0.0.1:9001",
		"CTIBRIDGE_STORE__RETENTION=48h", "CTIBRIDGE_TARGETS__CRM__MAX_ATTEMPTS=3"}
	c, err := Load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != "127.0.0.1:9001" {
		t.Errorf("listen = %q, want the environment's 127.0.0.1:9001", c.Server.Listen)
	}
	if c.Store.Retention != 48*time.Hour {
		t.Errorf("retention = %v, want 48h", c.Store.Retention)
	}
	if _, ok := c.Targets["jsonl"]; ok || len(c.Targets) != 1 {
		t.Errorf("targets = %v, want only crm: configured targets replace the default", c.Targets)
	}
	crm := c.Targets["crm"]
	if crm.Secret != "whsec_abc" || crm.Headers["Authorization"] != "Bearer t0k" || crm.MaxAttempts != 3 || crm.Timeout != 3*time.Second {
		t.Errorf("crm = %+v, want secrets resolved from the environment and max_attempts 3", crm)
	}
}

func TestLoadConfig_Errors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want []string
	}{
		{"UnknownKey", "[server]\nlisen = \"x\"\n", nil, []string{"'server' has invalid keys: lisen"}},
		{"UnknownEnvKey", "", []string{"CTIBRIDGE_SERVER__LISTN=x"}, []string{"CTIBRIDGE_* environment", "invalid keys: listn"}},
		{"BadDuration", "[store]\nretention = \"forever\"\n", nil, []string{"'store.retention' time: invalid duration"}},
		{"BadValues", "[server]\nlisten = \"8080\"\n[store]\npurge_schedule = \"TZ=UTC\"\n[log]\nlevel = \"loud\"\n", nil,
			[]string{`server.listen: want host:port, got "8080"`, `store.purge_schedule: invalid schedule "TZ=UTC"`, "log.level"}},
		{"TargetType", "[targets.a]\ntype = \"sugarcrm\"\n[targets.b]\npath = \"x\"\n", nil,
			[]string{`targets.a.type: unknown type "sugarcrm"`, "targets.b.type: required"}},
		{"CRMOptions", "[targets.sf]\ntype = \"salesforce\"\nlogin_url = \"https://x\"\nexternal_id_feild = \"K__c\"\n" +
			"secret = \"s\"\n[targets.file]\ntype = \"jsonl\"\npath = \"a\"\nid_property = \"k\"\n", nil,
			[]string{"targets.sf (a salesforce target)", "external_id_feild", "targets.sf.secret: applies to webhook targets, not salesforce",
				"targets.file: unknown keys for a jsonl target: id_property"}},
		{"RetrySchedule", "[targets.crm]\ntype = \"jsonl\"\npath = \"a\"\nretry_steps = [\"10ms\"]\nretry_jitter = 1.5\n", nil,
			[]string{"targets.crm.retry_steps[0]: 10ms", "targets.crm.retry_jitter: 1.5"}},
		{"WebhookNeedsURL", "[targets.crm]\ntype = \"webhook\"\npath = \"x\"\n", nil,
			[]string{"targets.crm.url: required", "targets.crm.path: applies to jsonl targets"}},
		{"MissingSecretEnv", "[targets.crm]\ntype = \"webhook\"\nurl = \"http://x\"\nsecret = \"${NOPE}\"\n", nil,
			[]string{"targets.crm.secret: environment variable NOPE is not set"}},
		{"NoFile", "", nil, []string{"no such file"}},
		{"Dial", "[dial]\nrate_limit = -1\nack_timeout = \"5s\"\nexpire_after = \"1s\"\nextension_pattern = \"[0-9\"\n" +
			"users = [{crm_user = \"005A\", agent = \"a\"}, {crm_user = \"005A\", agent = \"b\"}, {agent = \"c\"}]\n", nil,
			[]string{"dial: rate_limit, quarantine and link_window must not be negative", "dial.expire_after: must be at least dial.ack_timeout",
				"dial.extension_pattern: error parsing regexp", `dial.users[1].crm_user: "005A" is mapped twice`,
				"dial.users[2]: crm_user and agent are required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			} else if tt.name == "NoFile" {
				path = filepath.Join(t.TempDir(), "missing.toml")
			}
			_, err := Load(path, tt.env)
			if err == nil {
				t.Fatal("LoadConfig succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestLoadConfig_DialUsers: CRM users map to agents, with dots and @ in
// their ids, and the cookie key sits beside the database by default.
func TestLoadConfig_DialUsers(t *testing.T) {
	c, err := Load(writeFile(t, "[store]\npath = \"/var/lib/ctibridge/ctibridge.db\"\n[dial]\nrate_limit = 0\n"+
		"users = [{crm_user = \"jane.doe@acme.example\", agent = \"jdoe\"}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Dial.Users) != 1 || c.Dial.Users[0] != (DialUser{CRMUser: "jane.doe@acme.example", Agent: "jdoe"}) || c.Dial.RateLimit != 0 {
		t.Errorf("dial = %+v", c.Dial)
	}
	if got := c.DialKeyFile(); got != "/var/lib/ctibridge/ctibridge.db.dial-key" {
		t.Errorf("DialKeyFile = %q", got)
	}
}

// TestLoadConfig_ZeroMeansOff: max_attempts, max_age and breaker_failures
// set to 0 turn the limit or the breaker off, as documented, while a
// target that leaves them out gets the defaults.
func TestLoadConfig_ZeroMeansOff(t *testing.T) {
	path := writeFile(t, `
[targets.off]
type = "jsonl"
path = "a.jsonl"
max_attempts = 0
max_age = "0s"
breaker_failures = 0

[targets.defaults]
type = "jsonl"
path = "b.jsonl"
`)
	c, err := Load(path, []string{"CTIBRIDGE_TARGETS__DEFAULTS__BREAKER_FAILURES=0"})
	if err != nil {
		t.Fatal(err)
	}
	if off := c.Targets["off"]; off.MaxAttempts != 0 || off.MaxAge != 0 || off.BreakerFailures != 0 {
		t.Errorf("off = %+v, want max_attempts, max_age and breaker_failures 0 as set", off)
	}
	if d := c.Targets["defaults"]; d.MaxAttempts != 20 || d.MaxAge != 24*time.Hour || d.BreakerFailures != 0 {
		t.Errorf("defaults = %+v, want 20 attempts and 24h, and the breaker off from the environment", d)
	}
}

// TestShow: the shown config reads back as the same config, and holds no
// secret.
func TestShow(t *testing.T) {
	path := writeFile(t, `
[admin]
token = "admin-s3cret"
[sources.genesys]
token = "src-s3cret"
[sources.genesys.gws]
url = "https://gws.example/genesys/cometd"
password = "gws-s3cret"
[targets.crm]
type = "webhook"
url = "https://crm.example/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
headers = { Authorization = "Bearer hdr-s3cret" }
token_url = "https://crm.example/token"
client_id = "id"
client_secret = "client-s3cret"
timeout = "3s"
`)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Show()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"admin-s3cret", "src-s3cret", "gws-s3cret", "MfKQ9r8", "hdr-s3cret", "client-s3cret"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("Show reveals %q:\n%s", secret, out)
		}
	}
	back, err := Load(writeFile(t, string(out)), nil)
	if err != nil {
		t.Fatalf("the shown config does not load: %v\n%s", err, out)
	}
	again, err := back.Show()
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(out) {
		t.Errorf("the shown config reads back as\n%s\nwant\n%s", again, out)
	}
	if crm := back.Targets["crm"]; crm.Timeout != 3*time.Second || crm.MaxAttempts != 20 || crm.URL != "https://crm.example/hook" {
		t.Errorf("crm read back = %+v, want its timeout, default attempts and URL", crm)
	}
	if c.Targets["crm"].Secret == redacted {
		t.Error("Show changed the config it was called on")
	}
}

// TestLoadConfig_CRMTargets: a CRM type's own keys are decoded into its
// options, its secrets come from the environment or a file, and Show
// redacts them.
func TestLoadConfig_CRMTargets(t *testing.T) {
	dir := t.TempDir()
	refresh := filepath.Join(dir, "refresh")
	if err := os.WriteFile(refresh, []byte("refresh-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, `
[targets.hs]
type = "hubspot"
token = "${HS_TOKEN}"
id_property = "ctibridge_key"
retry_steps = ["1m", "1h"]
[targets.hs.match]
multiple = "recent"
cache_for = "5m"

[targets.sn]
type = "servicenow"
url = "https://acme.service-now.com"
username = "svc"
password_file = "`+refresh+`"
table = "incident"
`)
	c, err := Load(path, []string{"HS_TOKEN=pat-s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	hs := c.Targets["hs"]
	if hs.HubSpot == nil || hs.HubSpot.Token != "pat-s3cret" || hs.HubSpot.IDProperty != "ctibridge_key" ||
		hs.HubSpot.Match == nil || hs.HubSpot.Match.CacheFor != 5*time.Minute || hs.Timeout != 15*time.Second {
		t.Errorf("hubspot target = %+v %+v, want its options decoded with the token from the environment", hs, hs.HubSpot)
	}
	if p := hs.RetryPolicy(); len(p.Steps) != 2 || p.Steps[1] != time.Hour || p.Jitter != 0.2 || p.MaxAttempts != 20 {
		t.Errorf("retry policy = %+v, want the two steps and the default jitter and attempts", p)
	}
	if sn := c.Targets["sn"].ServiceNow; sn == nil || sn.Password != "refresh-s3cret" || sn.Table != "incident" {
		t.Errorf("servicenow options = %+v, want the password from its file", sn)
	}
	out, err := c.Show()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "id_property = 'ctibridge_key'") {
		t.Errorf("Show:\n%s\nwant the options shown and their secrets redacted", out)
	}
}

// TestShow_RoundTrips: what Show prints loads back and shows the same, for
// the defaults, for secrets read from files (their files are shown, not
// their values) and for CRM options; ${NAME} works in client_id and in a
// CRM's text options; an option name in capitals is an unknown key.
func TestShow_RoundTrips(t *testing.T) {
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret, token := file("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"), file("token", "pat-s3cret\n")
	adminFile := file("admin", "adm-s3cret\n")
	path := writeFile(t, `
[admin]
token_file = "`+adminFile+`"
[targets.file]
type = "jsonl"
path = "a.jsonl"
[targets.hook]
type = "webhook"
url = "https://crm.example/hook"
secret_file = "`+secret+`"
[targets.sf]
type = "salesforce"
login_url = "${SF_LOGIN}"
client_id = "${SF_ID}"
client_secret = "sf-s3cret"
external_id_field = "K__c"
[targets.hs]
type = "hubspot"
token_file = "`+token+`"
id_property = "ctibridge_key"
`)
	env := []string{"SF_ID=3MVG9abc", "SF_LOGIN=https://acme.my.salesforce.com"}
	c, err := Load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	if sf := c.Targets["sf"]; sf.ClientID != "3MVG9abc" || sf.Salesforce.LoginURL != "https://acme.my.salesforce.com" {
		t.Errorf("salesforce = %q %q, want client_id and login_url from the environment", sf.ClientID, sf.Salesforce.LoginURL)
	}
	for _, cfg := range []struct {
		name string
		c    Config
	}{{"defaults", DefaultConfig()}, {"files and options", c}} {
		out, err := cfg.c.Show()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"s3cret", "MfKQ9r8"} {
			if strings.Contains(string(out), s) {
				t.Errorf("%s: Show reveals %q:\n%s", cfg.name, s, out)
			}
		}
		back, err := Load(writeFile(t, string(out)), env)
		if err != nil {
			t.Errorf("%s: the shown config does not load: %v\n%s", cfg.name, err, out)
			continue
		}
		if again, _ := back.Show(); string(again) != string(out) {
			t.Errorf("%s: shown again\n%s\nwant\n%s", cfg.name, again, out)
		}
	}
	if _, err := Load(writeFile(t, "[targets.hs]\ntype = \"hubspot\"\nToken = \"pat-x\"\nid_property = \"k\"\n"), nil); err == nil ||
		!strings.Contains(err.Error(), "Token") {
		t.Errorf("an option in capitals = %v, want an unknown key named", err)
	}
}
