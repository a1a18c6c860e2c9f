package connectortest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Credentials FakeServiceNow accepts: basic auth as the user, the OAuth
// password grant as the user with the client, the client credentials
// grant as the client.
const (
	ServiceNowUser         = "ctibridge.integration"
	ServiceNowPassword     = "Sn0w!pa55 word"
	ServiceNowClientID     = "3f9a1c0d5b7e4a2f8c6d0e1f2a3b4c5d"
	ServiceNowClientSecret = "sn-client-s3cret"
)

// ServiceNowTablePath is the Table API's path.
const ServiceNowTablePath = "/api/now/table/"

// serviceNowTables are the fake instance's tables and their columns
// (beyond sys_id); a column not listed is ignored on insert, as ServiceNow
// does.
var serviceNowTables = map[string][]string{
	"incident":                {"number", "short_description", "description", "caller_id", "contact_type", "correlation_id", "work_notes"},
	"sn_customerservice_case": {"number", "short_description", "description", "contact", "account", "correlation_id", "work_notes"},
	"u_call_log":              {"u_number", "u_phone", "u_direction", "u_duration", "u_notes", "u_call_key"},
	// People a caller may be, by phone.
	"sys_user":         {"name", "phone", "mobile_phone"},
	"customer_contact": {"name", "phone", "mobile_phone"},
	// Journal entries: work notes and comments, one row per entry.
	"sys_journal_field": {"element_id", "element", "name", "value"},
}

// serviceNowJournal are the journal columns: written to sys_journal_field,
// not to the row.
var serviceNowJournal = []string{"work_notes", "comments"}

// FakeServiceNow is a ServiceNow instance's Table API and OAuth endpoint,
// as crm-apis.md section 5 describes them, quirks included:
//
//   - POST /api/now/table/{table} answers 201 with a Location and
//     {"result":{…,"sys_id"}}; a column the table does not have is
//     silently dropped.
//   - PATCH /api/now/table/{table}/{sys_id} updates a row; work_notes and
//     comments become rows of sys_journal_field (element_id, element,
//     name, value), not columns of the row.
//   - GET /api/now/table/{table}?sysparm_query=… matches "field=value" and
//     "fieldLIKEtext" conditions joined by ^ and ^OR; a condition on a column the table does not
//     have is ignored, so the query may match every row, as an instance
//     with glide.invalid_query.returns_no_rows off does.
//   - Errors are {"error":{"message","detail"},"status":"failure"}: 401
//     "User Not Authenticated", 400 "Invalid table", 403 for the data
//     policy that an incident needs a short_description.
//   - /oauth_token.do grants the password and client credentials grants,
//     tokens lasting 1,799 s.
//
// It implements CRM for RunTargetSuite: the suite's faults hit inserts.
type FakeServiceNow struct {
	crmFake

	smu  sync.Mutex
	rows map[string][]map[string]string // table → rows
	seq  int
}

// NewFakeServiceNow starts a FakeServiceNow, closed when the test ends.
func NewFakeServiceNow(tb testing.TB) *FakeServiceNow {
	f := &FakeServiceNow{rows: map[string][]map[string]string{}}
	f.start(tb, "/oauth_token.do", f.serve)
	return f
}

// Rows returns the rows of table whose column equals value; an empty
// column returns them all.
func (f *FakeServiceNow) Rows(table, column, value string) []map[string]string {
	f.smu.Lock()
	defer f.smu.Unlock()
	var out []map[string]string
	for _, r := range f.rows[table] {
		if column == "" || r[column] == value {
			out = append(out, r)
		}
	}
	return out
}

func (f *FakeServiceNow) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == f.tokenPath {
		f.token(w, r)
		return
	}
	user, pass, basic := r.BasicAuth()
	if !(basic && user == ServiceNowUser && pass == ServiceNowPassword) && !f.bearerValid(r) {
		serviceNowError(w, http.StatusUnauthorized, "User Not Authenticated", "Required to provide Auth information")
		return
	}
	table, ok := strings.CutPrefix(r.URL.Path, ServiceNowTablePath)
	table, sysID, one := strings.Cut(table, "/")
	if !ok || strings.Contains(sysID, "/") || one != (r.Method == http.MethodPatch) {
		serviceNowError(w, http.StatusBadRequest, "Requested URI does not represent any resource", "")
		return
	}
	columns, ok := serviceNowTables[table]
	if !ok {
		serviceNowError(w, http.StatusBadRequest, "Invalid table "+table, "")
		return
	}
	switch r.Method {
	case http.MethodGet:
		f.query(w, r, table, columns)
	case http.MethodPost:
		if f.suiteFault(w, r, serviceNowQuirks, func() { f.insert(httptest.NewRecorder(), r, table, columns) }) {
			return
		}
		f.insert(w, r, table, columns)
	case http.MethodPatch:
		if f.suiteFault(w, r, serviceNowQuirks, func() { f.update(httptest.NewRecorder(), r, table, sysID, columns) }) {
			return
		}
		f.update(w, r, table, sysID, columns)
	default:
		serviceNowError(w, http.StatusMethodNotAllowed, "Method not Supported", "")
	}
}

// snCond is one condition of an encoded query.
type snCond struct{ column, op, value string }

func (c snCond) match(row map[string]string) bool {
	if c.op == "LIKE" {
		return strings.Contains(row[c.column], c.value)
	}
	return row[c.column] == c.value
}

// query answers an encoded query: conditions joined by ^ (and) and ^OR
// (or, binding tighter), each column=value or columnLIKEtext. A condition
// on a column the table does not have is dropped.
func (f *FakeServiceNow) query(w http.ResponseWriter, r *http.Request, table string, columns []string) {
	q := r.URL.Query()
	var groups [][]snCond // and of ors
	for _, c := range strings.Split(q.Get("sysparm_query"), "^") {
		or := strings.HasPrefix(c, "OR") && len(groups) > 0
		if or {
			c = strings.TrimPrefix(c, "OR")
		}
		name, value, ok := strings.Cut(c, "=")
		op := "="
		if like, pattern, isLike := strings.Cut(c, "LIKE"); isLike && (!ok || len(like) < len(name)) {
			name, value, ok, op = like, pattern, true, "LIKE"
		}
		if !(ok && slices.Contains(columns, name) || name == "sys_id") {
			continue
		}
		if or {
			groups[len(groups)-1] = append(groups[len(groups)-1], snCond{name, op, value})
		} else {
			groups = append(groups, []snCond{{name, op, value}})
		}
	}
	limit, err := strconv.Atoi(q.Get("sysparm_limit"))
	if err != nil {
		limit = 10000
	}
	fields := strings.Split(q.Get("sysparm_fields"), ",")
	f.smu.Lock()
	result := []map[string]string{}
	for _, row := range f.rows[table] {
		match := len(result) < limit
		for _, g := range groups {
			match = match && slices.ContainsFunc(g, func(c snCond) bool { return c.match(row) })
		}
		if !match {
			continue
		}
		out := map[string]string{}
		for _, fl := range fields {
			if v, ok := row[fl]; ok {
				out[fl] = v
			}
		}
		result = append(result, out)
	}
	f.smu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"result": result})
}

func (f *FakeServiceNow) insert(w http.ResponseWriter, r *http.Request, table string, columns []string) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		serviceNowError(w, http.StatusBadRequest, "Exception while reading request", "The payload is not valid JSON.")
		return
	}
	if table == "incident" && in["short_description"] == nil {
		serviceNowError(w, http.StatusForbidden, "Operation Failed", "Data Policy Exception: \n\tShort description is mandatory")
		return
	}
	f.smu.Lock()
	f.seq++
	row := map[string]string{"sys_id": fmt.Sprintf("%032x", 0x5b1e0000+f.seq)}
	for k, v := range in {
		if slices.Contains(columns, k) {
			row[k] = fmt.Sprint(v)
		}
	}
	if slices.Contains(columns, "number") {
		row["number"] = fmt.Sprintf("INC%07d", f.seq)
	}
	f.rows[table] = append(f.rows[table], row)
	f.smu.Unlock()
	w.Header().Set("Location", f.URL+ServiceNowTablePath+table+"/"+row["sys_id"])
	writeJSON(w, http.StatusCreated, map[string]any{"result": row})
}

// update writes the columns of one row; a journal column (work_notes,
// comments) becomes a journal entry.
func (f *FakeServiceNow) update(w http.ResponseWriter, r *http.Request, table, sysID string, columns []string) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		serviceNowError(w, http.StatusBadRequest, "Exception while reading request", "The payload is not valid JSON.")
		return
	}
	f.smu.Lock()
	defer f.smu.Unlock()
	var row map[string]string
	for _, r := range f.rows[table] {
		if r["sys_id"] == sysID {
			row = r
		}
	}
	if row == nil {
		serviceNowError(w, http.StatusNotFound, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
		return
	}
	for k, v := range in {
		switch {
		case slices.Contains(serviceNowJournal, k) && slices.Contains(columns, k):
			f.seq++
			f.rows["sys_journal_field"] = append(f.rows["sys_journal_field"], map[string]string{
				"sys_id": fmt.Sprintf("%032x", 0x10a0000+f.seq), "element_id": sysID, "element": k, "name": table, "value": fmt.Sprint(v),
			})
		case slices.Contains(columns, k):
			row[k] = fmt.Sprint(v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": row})
}

// AddRow adds a row to table with columns and returns its sys_id.
func (f *FakeServiceNow) AddRow(table string, columns map[string]string) string {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.seq++
	row := map[string]string{"sys_id": fmt.Sprintf("%032x", 0x7a0000+f.seq)}
	for k, v := range columns {
		row[k] = v
	}
	f.rows[table] = append(f.rows[table], row)
	return row["sys_id"]
}

// token is ServiceNow's OAuth endpoint: the password and client
// credentials grants, client id and secret in the form.
func (f *FakeServiceNow) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	form := r.PostForm
	if form.Get("client_id") != ServiceNowClientID || form.Get("client_secret") != ServiceNowClientSecret {
		writeJSON(w, http.StatusUnauthorized, snDenied)
		return
	}
	switch form.Get("grant_type") {
	case "client_credentials":
	case "password":
		if form.Get("username") != ServiceNowUser || form.Get("password") != ServiceNowPassword {
			writeJSON(w, http.StatusUnauthorized, snDenied)
			return
		}
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error_description": "unsupported_grant_type", "error": "server_error"})
		return
	}
	f.issueToken(w, 1799)
}

// snDenied is what ServiceNow's token endpoint answers bad credentials.
var snDenied = map[string]string{"error_description": "access_denied", "error": "server_error"}

// serviceNowQuirks are ServiceNow's answers to the suite's faults.
var serviceNowQuirks = quirks{
	validation: func(w http.ResponseWriter, msg string) {
		serviceNowError(w, http.StatusForbidden, "Operation Failed", "Data Policy Exception: "+msg)
	},
	throttled: func(w http.ResponseWriter) {
		w.Header().Set("X-RateLimit-Rule", "table-api")
		serviceNowError(w, http.StatusTooManyRequests, "Rate limit exceeded", "Rate limit of 100 requests per hour for Table API exceeded")
	},
	serverError: func(w http.ResponseWriter) {
		serviceNowError(w, http.StatusInternalServerError, "Server Error", "")
	},
	created: http.StatusCreated,
}

// Records returns the sys_ids of the rows, in any table, that have a
// column equal to key, such as the correlation column, and for each
// journal entry whose text holds key, the sys_id of its row.
func (f *FakeServiceNow) Records(key string) []string {
	f.smu.Lock()
	defer f.smu.Unlock()
	var ids []string
	for _, e := range f.rows["sys_journal_field"] {
		if strings.Contains(e["value"], key) {
			ids = append(ids, e["element_id"])
		}
	}
	for table, rows := range f.rows {
		if table == "sys_journal_field" {
			continue
		}
		for _, row := range rows {
			for k, v := range row {
				if v == key && k != "sys_id" {
					ids = append(ids, row["sys_id"])
					break
				}
			}
		}
	}
	return ids
}

func serviceNowError(w http.ResponseWriter, status int, message, detail string) {
	e := map[string]any{"message": message, "detail": nil}
	if detail != "" {
		e["detail"] = detail
	}
	writeJSON(w, status, map[string]any{"error": e, "status": "failure"})
}
