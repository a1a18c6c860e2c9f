package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// openapiFile is the Salesforce OpenAPI document (v59.0, generated) that
// npm @opensdks/sdk-salesforce@0.0.2 ships; .ci/node/package.json pins it.
const openapiFile = ".ci/node/node_modules/@opensdks/sdk-salesforce/salesforce.oas.json"

var openapi struct {
	once   sync.Once
	doc    *openapi3.T
	create *routers.Route // POST /sobjects/Task
	err    error
}

// loadOpenAPI loads the document once per test binary (it is 18.9 MB): nil
// when it is not installed.
func loadOpenAPI() (*openapi3.T, error) {
	openapi.once.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			openapi.err = err
			return
		}
		for !fileExists(filepath.Join(dir, "go.mod")) {
			if dir = filepath.Dir(dir); dir == "/" {
				openapi.err = os.ErrNotExist
				return
			}
		}
		path := filepath.Join(dir, openapiFile)
		if !fileExists(path) {
			openapi.err = os.ErrNotExist
			return
		}
		doc, err := openapi3.NewLoader().LoadFromFile(path)
		if err != nil {
			openapi.err = err
			return
		}
		item := doc.Paths.Find("/sobjects/Task")
		openapi.doc = doc
		openapi.create = &routers.Route{Spec: doc, Path: "/sobjects/Task", PathItem: item, Method: http.MethodPost, Operation: item.Post}
	})
	return openapi.doc, openapi.err
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestOpenAPIDocument makes sure the document that validateRequests uses
// is there: without it every other test still runs, unvalidated, so a
// missing document is a skip here, and a failure in CI.
func TestOpenAPIDocument(t *testing.T) {
	if _, err := loadOpenAPI(); err != nil {
		msg := "Salesforce OpenAPI document not loaded (run npm ci --prefix .ci/node): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so this cannot be skipped)")
		}
		t.Skip(msg)
	}
	if checkTask(t.Context(), []byte(`{"Subject":"x","CallDurationInSeconds":"312"}`)) == nil {
		t.Error("a string CallDurationInSeconds passed validation: the validator checks nothing")
	}
	if checkTask(t.Context(), []byte(`{"Subject":"x","CallDuration":312}`)) == nil {
		t.Error("an unknown field passed validation")
	}
	if err := checkTask(t.Context(), []byte(`{"Subject":"x","CallDurationInSeconds":312,"CallLogKey__c":"k"}`)); err != nil {
		t.Errorf("a valid Task failed validation: %v", err)
	}
}

// validator is a RoundTripper that checks every Task the target sends
// against the Salesforce OpenAPI document's TaskSObject before passing the
// request on. The document has no upsert-by-external-id or collections
// path, so each record's body is validated as the body of POST
// /sobjects/Task (the same schema). Other objects and the SOSL search,
// which the document does not describe, pass unchecked.
type validator struct {
	t    testing.TB
	next http.RoundTripper
}

// validating returns a client whose requests are validated when the
// document is installed.
func validating(t testing.TB, client *http.Client) *http.Client {
	if doc, _ := loadOpenAPI(); doc == nil {
		return client
	}
	c := *client
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = &validator{t: t, next: next}
	return &c
}

func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && strings.Contains(req.URL.Path, "/services/data/") {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		for _, rec := range taskBodies(req.Method, req.URL.Path, body) {
			if err := checkTask(req.Context(), rec); err != nil {
				v.t.Errorf("%s %s: Task %s does not match the Salesforce OpenAPI document: %v", req.Method, req.URL.Path, rec, err)
			}
		}
	}
	return v.next.RoundTrip(req)
}

// taskBodies returns the Task records in a request body: the body of an
// upsert, or each record of a collection.
func taskBodies(method, path string, body []byte) [][]byte {
	_, rel, _ := strings.Cut(path, "/services/data/")
	_, rel, _ = strings.Cut(rel, "/")
	switch {
	case method == http.MethodPatch && strings.HasPrefix(rel, "sobjects/Task/"):
		return [][]byte{body}
	case method == http.MethodPatch && strings.HasPrefix(rel, "composite/sobjects/Task/"):
		var c struct{ Records []json.RawMessage }
		if json.Unmarshal(body, &c) != nil {
			return [][]byte{body} // fails validation as not an object
		}
		recs := make([][]byte, len(c.Records))
		for i, r := range c.Records {
			recs[i] = r
		}
		return recs
	}
	return nil
}

// checkTask validates one Task body as POST /sobjects/Task, and that
// every field it names is TaskSObject's or a custom field (the schema
// allows any other property, so a misspelt field would pass).
func checkTask(ctx context.Context, body []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/sobjects/Task", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	err := openapi3filter.ValidateRequest(ctx, &openapi3filter.RequestValidationInput{
		Request: req,
		Route:   openapi.create,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	})
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return err
	}
	props := openapi.doc.Components.Schemas["TaskSObject"].Value.Properties
	for name := range fields {
		if _, ok := props[name]; !ok && !strings.HasSuffix(name, "__c") {
			return &openapi3.SchemaError{Reason: "TaskSObject has no property " + name}
		}
	}
	return nil
}
