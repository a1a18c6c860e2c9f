// Package spectest checks, in tests, that the requests a client sends are
// what a CRM's API documents: each target keeps a small OpenAPI subset of
// its CRM's API, written from the CRM's documentation, in its testdata,
// and sends its test requests through Transport.
package spectest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Load reads the OpenAPI document at path and serves it at server, the
// base URL of the fake that plays the CRM in the test: the document's own
// servers are replaced.
func Load(tb testing.TB, path, server string) routers.Router {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		tb.Fatalf("load %s: %v", path, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		tb.Fatalf("%s is not a valid OpenAPI document: %v", path, err)
	}
	doc.Servers = openapi3.Servers{{URL: server}}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		tb.Fatalf("route %s: %v", path, err)
	}
	return r
}

// Transport returns a RoundTripper that checks each request against the
// document router serves before sending it with base (nil:
// http.DefaultTransport), and each request of a multipart/mixed batch. A
// request the document does not describe, or
// describes otherwise, fails the test; it is still sent, so that the test
// goes on to report what followed.
func Transport(tb testing.TB, router routers.Router, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		if err := check(router, req); err != nil {
			tb.Errorf("%s %s does not follow the API description: %v", req.Method, req.URL.Path, err)
		}
		return base.RoundTrip(req)
	})
}

func init() {
	// A batch's body is checked part by part (checkBatch), not as a whole.
	openapi3filter.RegisterBodyDecoder("multipart/mixed", openapi3filter.FileBodyDecoder)
}

func check(router routers.Router, req *http.Request) error {
	if err := checkOne(router, req); err != nil {
		return err
	}
	return checkBatch(router, req)
}

// checkBatch checks each request of a multipart/mixed batch (OData $batch)
// that carries them as application/http parts.
func checkBatch(router routers.Router, req *http.Request) error {
	mt, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || req.GetBody == nil {
		return nil
	}
	body, err := req.GetBody()
	if err != nil {
		return err
	}
	mr := multipart.NewReader(body, params["boundary"])
	for n := 1; ; n++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("batch part %d: %w", n, err)
		}
		inner, err := http.ReadRequest(bufio.NewReader(part))
		if err != nil {
			return fmt.Errorf("batch part %d: %w", n, err)
		}
		b, _ := io.ReadAll(inner.Body)
		inner.Body = io.NopCloser(bytes.NewReader(b))
		inner.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		inner.RequestURI = ""
		if err := checkOne(router, inner.WithContext(req.Context())); err != nil {
			return fmt.Errorf("batch part %d, %s %s: %w", n, inner.Method, inner.URL.Path, err)
		}
	}
}

func checkOne(router routers.Router, req *http.Request) error {
	// Validate a copy, so that the request sent keeps its own body.
	c := req.Clone(req.Context())
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(body)
		c.Body = io.NopCloser(bytes.NewReader(b))
	}
	route, params, err := router.FindRoute(c)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateRequest(req.Context(), &openapi3filter.RequestValidationInput{
		Request:    c,
		PathParams: params,
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// Client returns an HTTP client with timeout whose every request is checked
// against the OpenAPI document at path, served at server.
func Client(tb testing.TB, path, server string, timeout time.Duration) *http.Client {
	tb.Helper()
	return &http.Client{Timeout: timeout, Transport: Transport(tb, Load(tb, path, server), nil)}
}
