package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/ctibridge/ctibridge/connector"
)

// PreviewAll runs body through platform's decoder (or each one in turn,
// when platform is empty) with an in-memory snapshot, as the daemon would,
// and returns every interaction it completes (each agent's leg of a
// transferred call, a consult leg and the customer's call …), in the order
// the daemon would store them, and the platform that read it.
func PreviewAll(decoders map[string]Decoder, platform string, body []byte) ([]*connector.Interaction, string, error) {
	names := []string{platform}
	if platform == "" {
		names = names[:0]
		for n := range decoders {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	var errs []error
	for _, name := range names {
		dec, ok := decoders[name]
		if !ok {
			return nil, "", fmt.Errorf("unknown platform %q", name)
		}
		ins, err := replay(dec, body)
		if err == nil {
			return ins, name, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return nil, "", fmt.Errorf("no platform makes an interaction of this event:\n%w", errors.Join(errs...))
}

// replay decodes each line of body (or body whole, when it is one JSON
// document) with an in-memory snapshot store and duplicate detection, and
// returns the interactions the events complete, in order.
func replay(dec Decoder, body []byte) ([]*connector.Interaction, error) {
	lines := [][]byte{body}
	if !json.Valid(body) {
		lines = bytes.Split(body, []byte("\n"))
	}
	states, seen := map[string][]byte{}, map[string]bool{}
	var out []*connector.Interaction
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := dec.Decode(line, func(key string) ([]byte, error) { return states[key], nil })
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if seen[ev.Key] {
			continue
		}
		seen[ev.Key] = true
		if ev.StateKey != "" {
			if ev.State == nil {
				delete(states, ev.StateKey)
			} else {
				states[ev.StateKey] = ev.State
			}
		}
		if ev.Interaction != nil {
			out = append(out, ev.Interaction)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the events complete no interaction (a sequence needs its last event, such as callFinished or MARKDONE_APPLY)")
	}
	return out, nil
}
