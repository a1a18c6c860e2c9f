package connectortest

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// DataversePath is the Web API path of FakeDataverse.
const DataversePath = "/api/data/v9.2"

// Credentials FakeDataverse's token endpoint accepts.
const (
	DataverseClientID     = "0b7c3a52-9d4e-4f1a-8f0e-5a1c2d3e4f60"
	DataverseClientSecret = "dv~S3cr3t.value_42"
	DataverseTenant       = "5f1e9c2a-3b4d-4e5f-8a6b-7c8d9e0f1a2b"
)

// dataverseSets are the activity tables the fake knows: entity set to
// logical name.
var dataverseSets = map[string]string{
	"phonecalls": "phonecall", "tasks": "task", "letters": "letter",
	"faxes": "fax", "appointments": "appointment",
}

// FakeDataverse is a Dataverse environment's Web API with its Entra ID
// token endpoint, as crm-apis.md section 3 describes them, quirks
// included:
//
//   - PATCH {set}({id}) upserts; with If-None-Match: * it only creates and
//     answers 412 for an id that exists, with If-Match: * it only updates
//     and answers 404 for one that does not. A create answers 204 with
//     OData-EntityId.
//   - statecode and statuscode are refused on create; a completed or
//     canceled activity (statecode 1 or 2) is read-only.
//   - A lookup is set with "<navigation property>@odata.bind":
//     "/<set>(<guid>)"; the regarding navigation properties are
//     type-specific (regardingobjectid_contact_phonecall), and an unknown
//     one is a 400. Activity parties go in <table>_activity_parties with a
//     participationtypemask of 1 (from) or 2 (to).
//   - GET contacts or accounts with a $filter of phone columns "eq"
//     values, for caller match (AddPerson adds rows); a column the table
//     does not have is a 400.
//   - POST $batch of independent requests (multipart/mixed, application/http
//     parts, 1,000 at most) answers each as it would alone.
//   - 401 with WWW-Authenticate for a missing or expired token; errors are
//     {"error":{"code","message"}}.
//
// It implements CRM for RunTargetSuite: the suite's faults hit creates.
// The token endpoint is at TokenURL and accepts the client credentials
// grant with DataverseClientID and DataverseClientSecret in the form and a
// scope of "<environment>/.default".
type FakeDataverse struct {
	crmFake

	// TokenLifetime is the expires_in of the tokens issued, in seconds
	// (default 3599, as Entra ID answers).
	TokenLifetime int

	dmu     sync.Mutex
	records map[string]map[string]any // "phonecalls(<id>)" → columns
	batches int
}

// NewFakeDataverse starts a FakeDataverse, closed when the test ends.
func NewFakeDataverse(tb testing.TB) *FakeDataverse {
	f := &FakeDataverse{TokenLifetime: 3599, records: map[string]map[string]any{}}
	f.start(tb, "/"+DataverseTenant+"/oauth2/v2.0/token", f.serve)
	return f
}

// TokenURL is the fake's Entra ID token endpoint.
func (f *FakeDataverse) TokenURL() string { return f.URL + f.tokenPath }

// Record returns the columns of the record of entity set with id, or nil.
func (f *FakeDataverse) Record(set, id string) map[string]any {
	f.dmu.Lock()
	defer f.dmu.Unlock()
	return f.records[set+"("+id+")"]
}

// Records returns the ids of the rows that have a column equal to key: the
// suite's activities carry their key in a column (RunTargetSuite).
func (f *FakeDataverse) Records(key string) []string {
	f.dmu.Lock()
	defer f.dmu.Unlock()
	var ids []string
	for _, rec := range f.records {
		id, activity := rec["activityid"].(string)
		for _, v := range rec {
			if v == key && activity {
				ids = append(ids, id)
				break
			}
		}
	}
	return ids
}

// Count returns the number of records in entity set.
func (f *FakeDataverse) Count(set string) int {
	f.dmu.Lock()
	defer f.dmu.Unlock()
	n := 0
	for k := range f.records {
		if strings.HasPrefix(k, set+"(") {
			n++
		}
	}
	return n
}

var (
	dataverseRecordPath = regexp.MustCompile(`^` + DataversePath + `/([a-z_]+)\(([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\)$`)
	dataverseBindValue  = regexp.MustCompile(`^/[a-z_]+\([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)$`)
)

func (f *FakeDataverse) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == f.tokenPath {
		f.token(w, r)
		return
	}
	if !f.bearerValid(r) {
		w.Header().Set("WWW-Authenticate", "Bearer authorization_uri=https://login.microsoftonline.com/"+DataverseTenant+"/oauth2/authorize, resource_id="+f.URL+"/")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.URL.Path == DataversePath+"/$batch" && r.Method == http.MethodPost {
		f.batch(w, r)
		return
	}
	if people, ok := dataversePeople[strings.TrimPrefix(r.URL.Path, DataversePath+"/")]; ok && r.Method == http.MethodGet {
		f.queryPeople(w, r, people)
		return
	}
	if set := strings.TrimPrefix(r.URL.Path, DataversePath+"/"); dataverseSets[set] != "" && r.Method == http.MethodGet {
		f.dmu.Lock()
		rows := []any{}
		for k, rec := range f.records {
			if strings.HasPrefix(k, set+"(") && len(rows) == 0 {
				rows = append(rows, map[string]any{"activityid": rec["activityid"]})
			}
		}
		f.dmu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"value": rows})
		return
	}
	set, id := "", ""
	if m := dataverseRecordPath.FindStringSubmatch(r.URL.Path); m != nil {
		set, id = m[1], m[2]
	} else if r.Method == http.MethodPost {
		set, id = strings.TrimPrefix(r.URL.Path, DataversePath+"/"), newGUID()
	}
	table, ok := dataverseSets[set]
	if !ok {
		dataverseError(w, http.StatusNotFound, "0x80060888", fmt.Sprintf("Resource not found for the segment '%s'.", strings.TrimPrefix(r.URL.Path, DataversePath+"/")))
		return
	}
	key := set + "(" + id + ")"
	switch r.Method {
	case http.MethodGet:
		f.dmu.Lock()
		rec := f.records[key]
		f.dmu.Unlock()
		if rec == nil {
			dataverseError(w, http.StatusNotFound, "0x80040217", fmt.Sprintf("%s With Id = %s Does Not Exist", table, id))
			return
		}
		writeJSON(w, http.StatusOK, rec)
	case http.MethodPatch, http.MethodPost:
		create := r.Method == http.MethodPost || r.Header.Get("If-None-Match") == "*"
		if create && f.suiteFault(w, r, dataverseQuirks, func() { f.write(httptest.NewRecorder(), r, set, table, id) }) {
			return
		}
		f.write(w, r, set, table, id)
	default:
		dataverseError(w, http.StatusMethodNotAllowed, "0x80060888", "The requested resource does not support http method '"+r.Method+"'.")
	}
}

// write creates or updates one record.
func (f *FakeDataverse) write(w http.ResponseWriter, r *http.Request, set, table, id string) {
	var cols map[string]any
	if err := json.NewDecoder(r.Body).Decode(&cols); err != nil {
		dataverseError(w, http.StatusBadRequest, "0x80048d19", "Error identified in Payload provided by the user for Entity :'"+set+"'")
		return
	}
	if msg := checkDataverseColumns(table, cols); msg != "" {
		dataverseError(w, http.StatusBadRequest, "0x80048d19", msg)
		return
	}
	key := set + "(" + id + ")"
	f.dmu.Lock()
	defer f.dmu.Unlock()
	rec, exists := f.records[key]
	switch {
	case exists && (r.Method == http.MethodPost || r.Header.Get("If-None-Match") == "*"):
		dataverseError(w, http.StatusPreconditionFailed, "", "A record with matching key values already exists.")
		return
	case !exists && r.Header.Get("If-Match") == "*":
		dataverseError(w, http.StatusNotFound, "0x80040217", fmt.Sprintf("%s With Id = %s Does Not Exist", table, id))
		return
	case !exists:
		if _, ok := cols["statecode"]; ok {
			dataverseError(w, http.StatusBadRequest, "0x80040203", "statecode is not valid for create: create the activity open, then set its state.")
			return
		}
		if _, ok := cols["statuscode"]; ok {
			dataverseError(w, http.StatusBadRequest, "0x80040203", "statuscode is not valid for create: create the activity open, then set its status.")
			return
		}
		rec = map[string]any{"activityid": id, "statecode": 0.0, "statuscode": 1.0}
	case rec["statecode"] != 0.0:
		dataverseError(w, http.StatusBadRequest, "0x80040203", "This "+table+" is closed or canceled and cannot be edited.")
		return
	}
	if msg := checkDataverseState(cols); msg != "" {
		dataverseError(w, http.StatusBadRequest, "0x80040203", msg)
		return
	}
	for k, v := range cols {
		rec[k] = v
	}
	f.records[key] = rec
	w.Header().Set("OData-EntityId", f.URL+DataversePath+"/"+key)
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(http.StatusNoContent)
}

// batch answers a $batch of independent requests (no change sets), each as
// it would be answered alone, in a multipart/mixed answer.
func (f *FakeDataverse) batch(w http.ResponseWriter, r *http.Request) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		dataverseError(w, http.StatusBadRequest, "0x80048d19", "The batch request must have a multipart/mixed Content-Type with a boundary.")
		return
	}
	f.dmu.Lock()
	f.batches++
	f.dmu.Unlock()
	var answers []*http.Response
	mr := multipart.NewReader(r.Body, params["boundary"])
	for n := 1; ; n++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		var req *http.Request
		if err == nil && part.Header.Get("Content-Type") == "application/http" {
			req, err = http.ReadRequest(bufio.NewReader(part))
		}
		if err != nil || n > 1000 {
			dataverseError(w, http.StatusBadRequest, "0x80048d19", fmt.Sprintf("Batch part %d is not an HTTP request, or one too many.", n))
			return
		}
		req.Header.Set("Authorization", r.Header.Get("Authorization"))
		req = req.WithContext(r.Context())
		rec := httptest.NewRecorder()
		f.serve(rec, req)
		answers = append(answers, rec.Result())
	}
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(http.StatusOK)
	for _, a := range answers {
		part, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/http"}, "Content-Transfer-Encoding": {"binary"}})
		a.Write(part)
	}
	mw.Close()
}

// Batches counts the $batch requests received.
func (f *FakeDataverse) Batches() int {
	f.dmu.Lock()
	defer f.dmu.Unlock()
	return f.batches
}

// dataversePerson is a table a caller is looked for in.
type dataversePerson struct {
	logical, id string
	phones      []string
}

// dataversePeople are the tables a caller is looked for in, by entity set,
// with their logical name, key and phone columns.
var dataversePeople = map[string]dataversePerson{
	"contacts": {"contact", "contactid", []string{"telephone1", "telephone2", "mobilephone"}},
	"accounts": {"account", "accountid", []string{"telephone1", "telephone2"}},
}

// AddPerson adds a row to contacts or accounts with columns (phone
// columns, modifiedon as RFC 3339 for $orderby) and returns its id.
func (f *FakeDataverse) AddPerson(set string, columns map[string]string) string {
	id := newGUID()
	row := map[string]any{dataversePeople[set].id: id}
	for k, v := range columns {
		row[k] = v
	}
	f.dmu.Lock()
	defer f.dmu.Unlock()
	f.records[set+"("+id+")"] = row
	return id
}

var dataverseEq = regexp.MustCompile(`^([a-z0-9_]+) eq '((?:[^']|'')*)'$`)

// queryPeople answers GET contacts or accounts with a $filter of "column eq
// 'value'" conditions joined by " or ", $orderby "modifiedon desc" and $top.
func (f *FakeDataverse) queryPeople(w http.ResponseWriter, r *http.Request, p dataversePerson) {
	q := r.URL.Query()
	type cond struct{ column, value string }
	var conds []cond
	for _, c := range strings.Split(q.Get("$filter"), " or ") {
		m := dataverseEq.FindStringSubmatch(c)
		if m == nil {
			dataverseError(w, http.StatusBadRequest, "0x80060888", fmt.Sprintf("Syntax error in $filter at '%s'.", c))
			return
		}
		if !slices.Contains(p.phones, m[1]) {
			dataverseError(w, http.StatusBadRequest, "0x80060888", fmt.Sprintf("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.", m[1], p.logical))
			return
		}
		conds = append(conds, cond{m[1], strings.ReplaceAll(m[2], "''", "'")})
	}
	set := strings.TrimPrefix(r.URL.Path, DataversePath+"/")
	f.dmu.Lock()
	var rows []map[string]any
	for k, row := range f.records {
		if !strings.HasPrefix(k, set+"(") {
			continue
		}
		for _, c := range conds {
			if row[c.column] == c.value {
				rows = append(rows, map[string]any{p.id: row[p.id], "modifiedon": row["modifiedon"]})
				break
			}
		}
	}
	f.dmu.Unlock()
	if q.Get("$orderby") == "modifiedon desc" {
		slices.SortFunc(rows, func(a, b map[string]any) int {
			return strings.Compare(fmt.Sprint(b["modifiedon"]), fmt.Sprint(a["modifiedon"]))
		})
	}
	if top, err := strconv.Atoi(q.Get("$top")); err == nil && top < len(rows) {
		rows = rows[:top]
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": rows})
}

// checkDataverseColumns returns why Dataverse would refuse cols, or "".
func checkDataverseColumns(table string, cols map[string]any) string {
	for k, v := range cols {
		nav, isBind := strings.CutSuffix(k, "@odata.bind")
		switch {
		case isBind:
			if !dataverseNavProperty(table, nav) {
				return fmt.Sprintf("An undeclared property '%s' which only has property annotations in the payload but no property value was found in the payload.", nav)
			}
			if s, _ := v.(string); !dataverseBindValue.MatchString(s) {
				return fmt.Sprintf("Bad Request - Error in query syntax: %q is not a record path.", s)
			}
		case k == table+"_activity_parties":
			if msg := checkDataverseParties(v); msg != "" {
				return msg
			}
		case strings.Contains(k, "@"):
			return fmt.Sprintf("The property annotation '%s' is not supported here.", k)
		}
	}
	return ""
}

// dataverseNavProperty reports whether nav is a lookup navigation property
// of table the fake knows.
func dataverseNavProperty(table, nav string) bool {
	for _, target := range []string{"contact", "account", "incident", "opportunity", "lead"} {
		if nav == "regardingobjectid_"+target+"_"+table {
			return true
		}
	}
	return nav == "ownerid" || nav == "transactioncurrencyid"
}

func checkDataverseParties(v any) string {
	parties, ok := v.([]any)
	if !ok {
		return "activity parties must be an array"
	}
	for _, p := range parties {
		m, _ := p.(map[string]any)
		if mask := m["participationtypemask"]; mask != 1.0 && mask != 2.0 {
			return fmt.Sprintf("participationtypemask %v is not valid here: 1 is the sender, 2 a recipient", mask)
		}
		binds := 0
		for k, v := range m {
			if nav, ok := strings.CutSuffix(k, "@odata.bind"); ok {
				s, _ := v.(string)
				if !strings.HasPrefix(nav, "partyid_") || !dataverseBindValue.MatchString(s) {
					return fmt.Sprintf("activity party %s = %v is not a party binding", k, v)
				}
				binds++
			}
		}
		if binds != 1 {
			return "an activity party needs exactly one partyid_*@odata.bind"
		}
	}
	return ""
}

// checkDataverseState returns why a statecode/statuscode pair is not valid
// for a phone call, or "".
func checkDataverseState(cols map[string]any) string {
	state, hasState := cols["statecode"]
	status, hasStatus := cols["statuscode"]
	if !hasState && !hasStatus {
		return ""
	}
	valid := map[float64][]float64{0: {1}, 1: {2, 4}, 2: {3}}
	s, _ := state.(float64)
	allowed, ok := valid[s]
	if !ok || !hasState {
		return fmt.Sprintf("statecode %v is not valid", state)
	}
	if !hasStatus {
		return ""
	}
	for _, a := range allowed {
		if status == a {
			return ""
		}
	}
	return fmt.Sprintf("%v is not a valid status code for state code %v", status, state)
}

// token is the Entra ID client credentials grant.
func (f *FakeDataverse) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "AADSTS900144: The request body must contain the following parameter: 'grant_type'."})
		return
	}
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "AADSTS70003: The app requested an unsupported grant type."})
	case r.PostForm.Get("client_id") != DataverseClientID || r.PostForm.Get("client_secret") != DataverseClientSecret:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
	case r.PostForm.Get("scope") != f.URL+"/.default":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_scope", "error_description": "AADSTS1002012: The provided value for scope is not valid."})
	default:
		f.issueToken(w, f.TokenLifetime)
	}
}

func dataverseError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("OData-Version", "4.0")
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// dataverseQuirks are Dataverse's answers to the suite's faults.
var dataverseQuirks = quirks{
	validation: func(w http.ResponseWriter, msg string) { dataverseError(w, http.StatusBadRequest, "0x80040265", msg) },
	throttled: func(w http.ResponseWriter) {
		dataverseError(w, http.StatusTooManyRequests, "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds.")
	},
	serverError: func(w http.ResponseWriter) {
		dataverseError(w, http.StatusServiceUnavailable, "0x80040216", "An unexpected error occurred.")
	},
	created: http.StatusCreated,
}

// newGUID returns a random GUID, as Dataverse gives a record created
// without one.
func newGUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
