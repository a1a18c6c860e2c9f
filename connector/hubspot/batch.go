package hubspot

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/ctibridge/ctibridge/connector"
)

// DeliverBatch writes many records with few requests: batch/upsert by
// Config.IDProperty, MaxBatch records a request, then one v4 batch
// association request per batch and type of linked record. It returns one
// result per delivery, in order, each classified as Deliver would: a
// record that cannot be sent fails alone, and a failed request fails the
// records it carried. Every record goes through upsert, so a batch can be
// retried whole or in part without making a second call of any record.
func (t *Target) DeliverBatch(ctx context.Context, ds []connector.Delivery) []connector.BatchResult {
	results := make([]connector.BatchResult, len(ds))
	var calls []*call
	var index []int // index[i] is the position in ds of calls[i]
	for i, d := range ds {
		c, err := t.prepare(ctx, d)
		if err != nil {
			results[i].Err = err
			continue
		}
		calls = append(calls, c)
		index = append(index, i)
	}
	for start := 0; start < len(calls); start += MaxBatch {
		end := min(start+MaxBatch, len(calls))
		for j, r := range t.upsert(ctx, calls[start:end]) {
			results[index[start+j]] = r
		}
	}
	return results
}

// upsertInput is one record of a batch/upsert.
type upsertInput struct {
	IDProperty string            `json:"idProperty"`
	ID         string            `json:"id"`
	Properties map[string]string `json:"properties"`
	// ObjectWriteTraceID is echoed in the record's result or error, which
	// is how results are matched to records.
	ObjectWriteTraceID string `json:"objectWriteTraceId"`
}

// batchAnswer is the answer of HubSpot's batch endpoints: 200 when all
// succeeded, 207 with errors otherwise.
type batchAnswer struct {
	Status  string `json:"status"`
	Results []struct {
		ID                 string            `json:"id"`
		New                bool              `json:"new"`
		Properties         map[string]string `json:"properties"`
		ObjectWriteTraceID string            `json:"objectWriteTraceId"`
	} `json:"results"`
	Errors []struct {
		Status             string         `json:"status"`
		Category           string         `json:"category"`
		Message            string         `json:"message"`
		Context            map[string]any `json:"context"`
		ObjectWriteTraceID string         `json:"objectWriteTraceId"`
	} `json:"errors"`
}

// upsert writes up to MaxBatch calls by their key and links each to its
// records. A call HubSpot gives no result for is retryable, unless its own
// error (matched by objectWriteTraceId) is a validation error.
func (t *Target) upsert(ctx context.Context, calls []*call) []connector.BatchResult {
	results := make([]connector.BatchResult, len(calls))
	in := struct {
		Inputs []upsertInput `json:"inputs"`
	}{make([]upsertInput, len(calls))}
	for i, c := range calls {
		in.Inputs[i] = upsertInput{IDProperty: t.idProperty, ID: c.key, Properties: c.props, ObjectWriteTraceID: strconv.Itoa(i)}
	}
	var out batchAnswer
	status, err := t.do(ctx, http.MethodPost, t.objects+"/calls/batch/upsert", in, &out)
	if err != nil {
		for i := range results {
			results[i] = connector.BatchResult{Result: connector.Result{Status: status}, Err: err}
		}
		return results
	}
	done := make([]bool, len(calls))
	for _, r := range out.Results {
		i := t.resultIndex(r.ObjectWriteTraceID, r.Properties, calls)
		if i < 0 || r.ID == "" {
			continue
		}
		results[i].Result = connector.Result{Status: status, RecordID: r.ID}
		done[i] = true
	}
	for _, e := range out.Errors {
		i, err := strconv.Atoi(e.ObjectWriteTraceID)
		if err != nil || i < 0 || i >= len(calls) || done[i] {
			continue
		}
		results[i].Err = classifyItem("batch upsert", e.Category, e.Message)
		done[i] = true
	}
	for i := range calls {
		if !done[i] {
			results[i] = connector.BatchResult{
				Result: connector.Result{Status: status},
				Err:    &connector.DeliveryError{Status: status, Err: errors.New("batch upsert: HubSpot gave no result for this record")},
			}
		}
	}
	t.link(ctx, calls, results)
	return results
}

// resultIndex finds which call a batch result is about: by the trace id
// it echoes, or else by the key property.
func (t *Target) resultIndex(trace string, props map[string]string, calls []*call) int {
	if i, err := strconv.Atoi(trace); err == nil && i >= 0 && i < len(calls) {
		return i
	}
	for i, c := range calls {
		if props[t.idProperty] == c.key {
			return i
		}
	}
	return -1
}

// assocInput is one link of a v4 batch association create.
type assocInput struct {
	From  assocTo     `json:"from"`
	To    assocTo     `json:"to"`
	Types []assocType `json:"types"`
}

// link creates the associations of every call written, one request per
// type of linked record. Linking twice is harmless. When a request fails
// or has errors, its calls are linked one by one, so that each call's
// result says whether its own links failed; a call whose links failed is
// not delivered, and is linked again when retried.
func (t *Target) link(ctx context.Context, calls []*call, results []connector.BatchResult) {
	groups := map[string][]int{} // to type → calls with a link of that type
	var order []string
	for i, c := range calls {
		if results[i].Err != nil {
			continue
		}
		for _, a := range c.assocs {
			if groups[a.toType] == nil {
				order = append(order, a.toType)
			}
			if g := groups[a.toType]; len(g) == 0 || g[len(g)-1] != i {
				groups[a.toType] = append(g, i)
			}
		}
	}
	for _, toType := range order {
		members := groups[toType]
		someFailed, err := t.linkCalls(ctx, toType, calls, results, members)
		switch {
		case err == nil:
		case someFailed && len(members) > 1:
			// HubSpot refused some links and does not say whose: ask
			// again call by call.
			for _, i := range members {
				_, results[i].Err = t.linkCalls(ctx, toType, calls, results, []int{i})
			}
		default:
			// The request failed whole (throttled, down): so did each
			// call's links, and asking again call by call would only add
			// load.
			for _, i := range members {
				results[i].Err = err
			}
		}
	}
}

// linkCalls sends the links of type toType of the calls members in one
// request. someFailed reports an answer with errors for some links (207),
// as opposed to a request that failed whole.
func (t *Target) linkCalls(ctx context.Context, toType string, calls []*call, results []connector.BatchResult, members []int) (someFailed bool, err error) {
	var in struct {
		Inputs []assocInput `json:"inputs"`
	}
	for _, i := range members {
		for _, a := range calls[i].assocs {
			if a.toType == toType {
				in.Inputs = append(in.Inputs, assocInput{From: assocTo{ID: results[i].Result.RecordID}, To: a.To, Types: a.Types})
			}
		}
	}
	var out batchAnswer
	if _, err := t.do(ctx, http.MethodPost, t.assoc+"/calls/"+toType+"/batch/create", in, &out); err != nil {
		return false, err
	}
	if len(out.Errors) > 0 {
		e := out.Errors[0]
		return true, classifyItem("link to "+toType, e.Category, e.Message)
	}
	return false, nil
}
