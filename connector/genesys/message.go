package genesys

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/connector"
)

// observation is what one WWE event or GWS notification says about one
// interaction, in WWE's vocabulary whichever of the two it came from: both
// carry the whole interaction object as it is now, so the snapshot takes
// its attributes from the newest observation and its times from the event
// kinds.
type observation struct {
	kind string    // WWE eventType, or its equivalent for a GWS state
	id   string    // interactionUUID or callUuid: the stable id
	at   time.Time // when the browser or the subscriber received it

	agent connector.Agent

	media string // voice, chat, email, or another OpenMedia type
	voice bool   // carries voice-only attributes (callUuid, callType…)
	state string // the interaction's state, upper case
	// previousState only tells a resume (HELD to TALKING) from the first
	// ESTABLISHED in the event key; the snapshot does not use it.
	previousState string
	callType      string
	direction     string
	ani, dnis     string
	consult       *bool

	userData    boundedUserData
	hasUserData bool
	parties     []connector.Party

	// final marks a GWS notification after which Genesys sends nothing
	// more for the interaction: there is no REMOVED to wait for.
	final bool
	// raw is the interaction object, for Interaction.Raw.
	raw json.RawMessage
}

// digest hashes what o tells the snapshot. It is the last part of the
// Event.Key: the tabs of one agent post the same event with their own
// interactionId, case panel state and receivedAt, which the snapshot does
// not use, so two posts that would change the snapshot in the same way are
// one event. Two events that differ only in members ctibridge does not read
// are one event too, which loses nothing the snapshot needs: the first
// one's body is stored.
// The agent's id is part of it, not the rest of the agent object: the two
// agents of a transferred call can post MARKDONE_APPLY with the same
// content, and each completes its own leg.
func (o *observation) digest() string {
	b, err := json.Marshal(struct {
		Kind, Agent, Media, State, PreviousState string
		CallType, Direction, ANI, DNIS           string
		Consult                                  *bool
		Final                                    bool
		UserData                                 map[string]any
		Parties                                  []connector.Party
	}{o.kind, agentKey(o.agent), o.media, o.state, o.previousState, o.callType, o.direction, o.ani, o.dnis,
		o.consult, o.final, o.userData.m, o.parties})
	if err != nil {
		b = o.raw // unreachable: every member came from JSON
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// maxText bounds the other strings copied from an event (numbers, names,
// states), which only a broken bridge makes long.
const maxText = 256

// agent reads the agent object the bridge adds from agent.get (employeeId,
// firstName, lastName, username) or writes itself (id, name, email).
func (r *reader) agent(top connector.Object) connector.Agent {
	a, ok := r.Obj(top, "agent")
	if !ok {
		return connector.Agent{}
	}
	name := r.Str(a, "name")
	if name == "" {
		first := r.firstStr(a, "firstName", "firstname")
		last := r.firstStr(a, "lastName", "lastname")
		name = strings.TrimSpace(first + " " + last)
	}
	return connector.Agent{
		ID:       r.firstID(a, "id", "employeeId"),
		Name:     truncate(name, maxText),
		Username: r.firstID(a, "username", "userName"),
		Email:    truncate(r.firstStr(a, "email", "emailAddress"), maxText),
	}
}

// maxParties bounds the parties kept; a conference has a handful.
const maxParties = 10

// parties reads WWE parties ([{name}]) or GWS participants, whose members
// are named differently; elements that name nobody are skipped.
func (r *reader) parties(n connector.Object, name string) []connector.Party {
	var out []connector.Party
	for p := range r.Objects(n, name) {
		party := connector.Party{
			Name:   truncate(r.firstStr(p, "name", "displayName"), maxText/2),
			Phone:  truncate(r.firstStr(p, "phoneNumber", "number", "digits"), maxText/2),
			UserID: truncate(r.firstStr(p, "userId", "agentId", "employeeId"), maxText/2),
		}
		if party != (connector.Party{}) && len(out) < maxParties {
			out = append(out, party)
		}
	}
	return out
}
