package dial

import (
	"cmp"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

//go:embed page.html
var pageHTML string

//go:embed status.js
var statusJS []byte

var pageTemplate = template.Must(template.New("dial").Parse(pageHTML))

// page is what the /dial page shows.
type page struct {
	Title   string
	Message string
	// ID and State, for a placed dial: status.js follows it.
	ID    string
	State string
	To    string
	// Back links to the page the agent came from, when known.
	Back string
}

// handlePage places the dial a CRM link asks for, GET /dial?to=…&object=
// Type:ID[&name=…][&agent=…|&user=…][&token=…], and answers a small page
// that says what happened, then follows the dial until the desktop says
// it is dialing or why not.
func (rl *Relay) handlePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg := page{Title: "Not dialed", Back: backLink(r.Header.Get("Referer"))}
	// The cookie goes with any top-level link to this page, from any site
	// the agent visits: it signs in only links from the pages of an origin
	// some source allows (the CRM's), as the Referer says.
	cookieAgent := rl.cookieAgent(r)
	from, allowed := rl.linkOrigin(r)
	if !rl.Access.AnyToken(q.Get("token")) {
		switch {
		case cookieAgent != "" && !allowed:
			pg.Message = "Links to /dial from " + cmp.Or(from, "a page that sends no Referer") + " are not accepted: " +
				"add the CRM's origin to a source's allowed_origins in the ctibridge config, or add token=… to the link."
			rl.writePage(w, http.StatusForbidden, pg)
			return
		case cookieAgent == "":
			pg.Message = "This browser is not signed in for click-to-dial: open your contact-center desktop " +
				"(its ctibridge bridge signs this browser in), or add token=… to the link."
			rl.writePage(w, http.StatusUnauthorized, pg)
			return
		}
	}
	agent, how := q.Get("agent"), "agent="
	if agent == "" && q.Get("user") != "" {
		agent, how = rl.Users[q.Get("user")], "user="
		if agent == "" {
			pg.Message = "The CRM user " + strconv.Quote(q.Get("user")) + " is mapped to no agent (dial.users in the ctibridge config)."
			rl.writePage(w, http.StatusBadRequest, pg)
			return
		}
	}
	if agent == "" {
		agent, how = cookieAgent, "cookie"
	}
	if agent == "" {
		pg.Message = "The link names no agent (agent= or user=), and this browser's desktop has not signed it in."
		rl.writePage(w, http.StatusBadRequest, pg)
		return
	}
	req := Request{Agent: agent, To: q.Get("to")}
	if o := q.Get("object"); o != "" {
		typ, id, ok := strings.Cut(o, ":")
		if !ok || typ == "" || id == "" {
			pg.Message = "object: want Type:ID, such as Contact:0035g00000XyZ12AAB, got " + strconv.Quote(o) + "."
			rl.writePage(w, http.StatusBadRequest, pg)
			return
		}
		what := IsWhat(typ)
		if role := strings.ToLower(q.Get("role")); role == "who" || role == "what" {
			what = role == "what"
		}
		req.Object = &CRMObject{Type: typ, ID: id, Name: q.Get("name"), IsWhat: what}
	}
	c, err := rl.Place(r.Context(), req)
	var ref *Refusal
	switch {
	case errors.As(err, &ref):
		pg.Message = ref.Msg + "."
		setRetryAfter(w, ref.RetryAfter)
		rl.writePage(w, ref.Status, pg)
		return
	case err != nil:
		rl.Logger.Error("dial failed", "err", err)
		pg.Message = "The dial could not be stored; try again."
		rl.writePage(w, http.StatusServiceUnavailable, pg)
		return
	}
	rl.Logger.Debug("dial from a link", "dial", c.ID, "agent_from", how)
	pg.Title, pg.ID, pg.State, pg.To = "Dialing", c.ID, c.State, c.To
	pg.Message = "Sending the call to " + c.To + " to your desktop…"
	rl.writePage(w, http.StatusAccepted, pg)
}

// IsWhat says whether a record of type typ is a "what" (a case, an
// account, an opportunity) rather than a "who" (a contact or lead), as
// Salesforce's WhoId and WhatId split them. A /dial link overrides it with
// role=who or role=what.
func IsWhat(typ string) bool {
	switch strings.ToLower(typ) {
	case "contact", "lead", "person", "customer":
		return false
	}
	return true
}

// linkOrigin is the origin of the page the link was on, from its Referer,
// and whether some source allows it (or it is the daemon's own).
func (rl *Relay) linkOrigin(r *http.Request) (string, bool) {
	u, err := url.Parse(r.Referer())
	if err != nil || u.Host == "" {
		return "", false
	}
	origin := u.Scheme + "://" + u.Host
	return origin, u.Host == r.Host || rl.Access.OriginAllowed(origin)
}

// backLink is the page the agent came from, when it is a web page.
func backLink(referer string) string {
	u, err := url.Parse(referer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

func (rl *Relay) writePage(w http.ResponseWriter, status int, pg page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, pg); err != nil {
		rl.Logger.Warn("dial page", "err", err)
	}
}

// handleScript serves the page's script, which follows a dial's state.
func handleScript(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(statusJS)
}
