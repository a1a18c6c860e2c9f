package dial

import (
	"context"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// linkSkew allows for the clocks of the agent's desktop (which stamps the
// call's start) and the daemon (which stamps the dial) to differ.
const linkSkew = time.Minute

// Link fills in the who or what of an outbound call that has neither with
// the record its agent clicked from: the latest dial of that agent to that
// number, made within LinkWindow before the call started. Genesys and Five9
// carry the record themselves (userData, crmObject); Bright Pattern's dial
// takes only a number, so its calls are linked here. It is the ingest
// pipeline's Link hook.
func (rl *Relay) Link(ctx context.Context, in *connector.Interaction) {
	if in == nil || in.Who != nil || in.What != nil || in.Direction != connector.DirectionOutbound || rl.LinkWindow <= 0 {
		return
	}
	number, err := rl.Numbers.Normalize(in.CustomerPhone())
	if err != nil {
		return
	}
	at := rl.Now()
	if in.Start != nil {
		at = *in.Start
	}
	dials, err := rl.store.recent(ctx, number, at.Add(-rl.LinkWindow), at.Add(linkSkew))
	if err != nil {
		rl.Logger.Warn("linking a call to its dial failed", "interaction", in.ID, "err", err)
		return
	}
	for _, d := range dials {
		if d.Object == nil || (d.Agent != in.Agent.ID && d.Agent != in.Agent.Username) {
			continue
		}
		o := &connector.CRMObject{Type: d.Object.Type, ID: d.Object.ID, Name: d.Object.Name}
		if d.Object.IsWhat {
			in.What = o
		} else {
			in.Who = o
		}
		rl.Logger.Debug("call linked to the record it was dialed from", "interaction", in.ID, "dial", d.ID)
		return
	}
}
