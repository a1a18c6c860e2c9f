package dynamics

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"

	"github.com/ctibridge/ctibridge/connector"
)

// MaxBatch is how many requests one $batch carries: Dataverse takes 1,000.
const MaxBatch = 1000

// DeliverBatch writes several activities with Dataverse's $batch, each
// request on its own (odata.continue-on-error), in at most three calls per
// 1,000 records: the creates (If-None-Match: *), a read of the state of
// those that existed already, and the completions. It returns one result
// per delivery, in order, with Deliver's meaning: a failure of a whole
// call (network, 429, 5xx) is each of its records', and every step is as
// idempotent as Deliver's, so a batch can be retried whole or in part.
func (t *Target) DeliverBatch(ctx context.Context, ds []connector.Delivery) []connector.BatchResult {
	results := make([]connector.BatchResult, len(ds))
	recs := make([]record, len(ds))
	var todo []int
	for i, d := range ds {
		rec, err := t.prepare(ctx, d)
		if err != nil {
			results[i].Err = err
			continue
		}
		recs[i] = rec
		results[i].Result.RecordID = rec.id
		todo = append(todo, i)
	}
	for len(todo) > 0 {
		chunk := todo[:min(MaxBatch, len(todo))]
		todo = todo[len(chunk):]
		t.batchSteps(ctx, chunk, recs, results)
	}
	return results
}

// batchSteps runs the steps of Deliver for the records idx, one $batch
// per step.
func (t *Target) batchSteps(ctx context.Context, idx []int, recs []record, results []connector.BatchResult) {
	// Step 1: the creates.
	reqs := make([]batchRequest, len(idx))
	for j, i := range idx {
		reqs[j] = batchRequest{method: http.MethodPatch, url: recs[i].path(t), header: map[string]string{"If-None-Match": "*"}, body: recs[i].columns}
	}
	var read, complete []int
	for j, err := range t.batch(ctx, reqs) {
		i := idx[j]
		switch {
		case errors.Is(err, errExists) && recs[i].complete != nil:
			read = append(read, i)
		case err == nil && recs[i].complete != nil:
			complete = append(complete, i)
		case err != nil && !errors.Is(err, errExists):
			results[i].Err = err
		}
		results[i].Result.Status = reqs[j].status
	}

	// Step 2: the state of the rows that were there, which an earlier
	// attempt may have completed.
	reqs = make([]batchRequest, len(read))
	states := make([]struct {
		StateCode *int `json:"statecode"`
	}, len(read))
	for j, i := range read {
		reqs[j] = batchRequest{method: http.MethodGet, url: recs[i].path(t) + "?$select=statecode", out: &states[j]}
	}
	for j, err := range t.batch(ctx, reqs) {
		i := read[j]
		results[i].Result.Status = reqs[j].status
		switch {
		case err != nil:
			results[i].Err = err
		case states[j].StateCode == nil:
			results[i].Err = &connector.DeliveryError{Status: reqs[j].status, Err: errors.New("the row read has no statecode")}
		case *states[j].StateCode == 0:
			complete = append(complete, i)
		}
	}

	// Step 3: the completions.
	reqs = make([]batchRequest, len(complete))
	for j, i := range complete {
		reqs[j] = batchRequest{method: http.MethodPatch, url: recs[i].path(t), header: map[string]string{"If-Match": "*"}, body: recs[i].complete}
	}
	for j, err := range t.batch(ctx, reqs) {
		i := complete[j]
		results[i].Result.Status, results[i].Err = reqs[j].status, err
	}
}

// batchRequest is one request of a $batch; status is set to its answer's.
type batchRequest struct {
	method, url string
	header      map[string]string
	body, out   any
	status      int
}

// batch sends reqs as one $batch and returns each one's error, as check
// says for its own answer, or the batch's error for each when the batch
// as a whole failed. No reqs, no call.
func (t *Target) batch(ctx context.Context, reqs []batchRequest) []error {
	errs := make([]error, len(reqs))
	if len(reqs) == 0 {
		return errs
	}
	fail := func(err error) []error {
		for j := range errs {
			errs[j] = err
		}
		return errs
	}
	if err := t.pause.Check(t.now()); err != nil {
		return fail(err)
	}
	inner := make([]*http.Request, len(reqs))
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.SetBoundary("batch_" + randomHex()); err != nil {
		return fail(connector.Permanent(err))
	}
	for j, r := range reqs {
		req, err := connector.JSONRequest(ctx, r.method, r.url, r.body, t.redacted)
		if err != nil {
			return fail(err)
		}
		setOData(req, r.body != nil, r.header)
		inner[j] = req
		part, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/http"}, "Content-Transfer-Encoding": {"binary"}})
		if err := req.WriteProxy(part); err != nil {
			return fail(connector.Permanent(fmt.Errorf("encode batch: %w", connector.ScrubURL(err, t.redacted))))
		}
	}
	mw.Close()

	var token string
	resp, refreshed, err := t.tokens.Do(ctx, func(tok string) (*http.Response, error) {
		token = tok
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.api+"/$batch", bytes.NewReader(body.Bytes()))
		if err != nil {
			return nil, connector.Permanent(fmt.Errorf("build request: %w", connector.ScrubURL(err, t.redacted)))
		}
		setOData(req, false, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
		req.Header.Set("Prefer", "odata.continue-on-error")
		return connector.Send(t.client, req, t.redacted)
	})
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail(t.check(resp, http.MethodPost, refreshed, token, nil))
	}
	answers, err := readBatch(resp, inner)
	if err != nil {
		return fail(&connector.DeliveryError{Status: resp.StatusCode, Err: err})
	}
	for j, a := range answers {
		reqs[j].status = a.StatusCode
		errs[j] = t.check(a, reqs[j].method, false, token, reqs[j].out)
	}
	return errs
}

// readBatch reads a $batch answer: one HTTP response per request, in
// order. It closes the body.
func readBatch(resp *http.Response, reqs []*http.Request) ([]*http.Response, error) {
	defer resp.Body.Close()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		return nil, fmt.Errorf("batch answer is %q, not multipart/mixed", resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(io.LimitReader(resp.Body, int64(len(reqs))<<20), params["boundary"])
	var out []*http.Response
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read batch answer: %w", err)
		}
		if len(out) == len(reqs) {
			return nil, fmt.Errorf("batch answer has more parts than the %d requests", len(reqs))
		}
		a, err := http.ReadResponse(bufio.NewReader(part), reqs[len(out)])
		if err != nil {
			return nil, fmt.Errorf("read batch answer part %d: %w", len(out)+1, err)
		}
		b, err := io.ReadAll(io.LimitReader(a.Body, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("read batch answer part %d: %w", len(out)+1, err)
		}
		a.Body = io.NopCloser(bytes.NewReader(b))
		out = append(out, a)
	}
	if len(out) != len(reqs) {
		return nil, fmt.Errorf("batch answer has %d parts for %d requests", len(out), len(reqs))
	}
	return out, nil
}

func randomHex() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
