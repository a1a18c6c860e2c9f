package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/ctibridge/ctibridge/connector"
)

// MaxBatch is how many records one sObject Collections upsert takes.
const MaxBatch = 200

// DeliverBatch upserts several activities with sObject Collections
// upserts (PATCH /composite/sobjects/{Object}/{ExternalIdField}, allOrNone
// false): one call per object and per 200 records. It returns one result
// per delivery, in order, each with Deliver's meaning: Salesforce answers
// each record on its own, and a failure of the whole call (network, 5xx,
// limits) is each of its records'. Every record goes through upsert, so a
// batch can be retried whole or in part without a second record.
func (t *Target) DeliverBatch(ctx context.Context, ds []connector.Delivery) []connector.BatchResult {
	results := make([]connector.BatchResult, len(ds))
	if err := t.slowDown(); err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	recs := make([]*record, len(ds))
	byObject := map[string][]int{} // object → indexes into ds
	var objects []string
	for i, d := range ds {
		rec, err := t.prepare(ctx, d)
		if err != nil {
			results[i].Err = err
			continue
		}
		recs[i] = rec
		if byObject[rec.object] == nil {
			objects = append(objects, rec.object)
		}
		byObject[rec.object] = append(byObject[rec.object], i)
	}
	for _, object := range objects {
		idx := byObject[object]
		for len(idx) > 0 {
			chunk := idx[:min(MaxBatch, len(idx))]
			idx = idx[len(chunk):]
			// Records that Salesforce asks to send again without
			// TaskSubtype go once more: the second time they have none.
			for len(chunk) > 0 {
				chunk = t.upsertCollection(ctx, object, chunk, recs, results)
			}
		}
	}
	return results
}

// upsertCollection sends the records recs[idx] of object in one call and
// sets their results. It returns the indexes to send again.
func (t *Target) upsertCollection(ctx context.Context, object string, idx []int, recs []*record, results []connector.BatchResult) []int {
	type request struct {
		AllOrNone bool             `json:"allOrNone"`
		Records   []map[string]any `json:"records"`
	}
	req := request{Records: make([]map[string]any, len(idx))}
	for j, i := range idx {
		m := make(map[string]any, len(recs[i].fields)+2)
		for k, v := range recs[i].fields {
			m[k] = v
		}
		m["attributes"] = map[string]string{"type": object}
		m[t.cfg.ExternalIDField] = recs[i].extID
		req.Records[j] = m
	}
	body, err := json.Marshal(req)
	if err == nil {
		var ans *answer
		path := "/composite/sobjects/" + object + "/" + url.PathEscape(t.cfg.ExternalIDField)
		if ans, err = t.call(ctx, http.MethodPatch, path, body); err == nil {
			return t.collectionResults(ans, idx, recs, results)
		}
	} else {
		err = connector.Permanent(fmt.Errorf("salesforce: fields: %w", err))
	}
	for _, i := range idx {
		results[i].Err = err
	}
	return nil
}

// collectionResults classifies a collection answer: the whole call, then
// each record's result.
func (t *Target) collectionResults(ans *answer, idx []int, recs []*record, results []connector.BatchResult) []int {
	var items []saveResult
	if ans.status == http.StatusOK {
		ans.parsed = json.Unmarshal(ans.body, &items) == nil && len(items) == len(idx)
		ans.success = ans.parsed
	} else {
		ans.parseErrors()
	}
	v := classify(ans)
	var again []int
	for j, i := range idx {
		results[i] = connector.BatchResult{Result: connector.Result{Status: ans.status}}
		if v != delivered {
			results[i].Err = t.failure(ans, v, recs[i].String())
			continue
		}
		raw, _ := json.Marshal(items[j])
		item := &answer{status: ans.status, body: raw, retryAfter: ans.retryAfter}
		item.set(items[j])
		switch iv := classify(item); iv {
		case delivered:
			results[i].Result.RecordID = item.id
		case resend:
			if recs[i].dropSubtype() {
				again = append(again, i)
				continue
			}
			results[i].Err = t.failure(item, dead, recs[i].String())
		default:
			results[i].Err = t.failure(item, iv, recs[i].String())
		}
	}
	return again
}
