// Package bridge serves the browser bridge: one small plain-JavaScript file
// per contact-center platform that an admin adds to the agent's desktop page
// with a single script tag, for example
//
//	<script src="https://ctibridge.example/bridge/five9.js"
//	        data-token="…" data-agent="138592"></script>
//
// The script subscribes to the vendor's browser SDK (Genesys WWE Service
// Client API, Five9 CRM SDK, Bright Pattern Agent Desktop API), stamps each
// event with receivedAt, the time the browser received it, and posts it to
// the daemon's POST /v1/events/{platform} with "Authorization: Bearer
// <data-token>". It finds the daemon from its own src
// (document.currentScript), so the tag is the whole installation.
//
// # What the script guarantees
//
// Every event goes first into a queue in the page's localStorage, one key
// per event, and leaves it only after the daemon answered 2xx (202 stored,
// or 200 already stored). The queue therefore survives the daemon being down,
// the tab being reloaded or closed, and the network going away: the next
// page load of the same origin sends what is left. The queue holds at most
// 500 events (data-queue-size); when it is full, new events are dropped with
// a console warning and the oldest are kept, because the oldest are the
// start of interactions whose later events are already queued behind them.
//
// Only one tab sends. WWE elects a leader among its tabs and says so in
// system events (frameState): only the LEADING frame drains the queue, and
// a FOLLOWING frame does not even queue, since the leader sees the same
// events. For Five9 and Bright Pattern every tab queues (two tabs queuing
// the same event write the same key, a hash of the event without
// receivedAt), and the tab holding the Web Lock "ctibridge:<platform>"
// drains the queue; the other tabs wait in navigator.locks.request for it,
// so when the sending tab closes or reloads, another takes over at once.
// Without the Web Locks API every tab sends. The daemon deduplicates in any
// case: an event posted twice is stored once.
//
// Retries: network errors, 408, 425, 429 and 5xx are retried, in order, with
// exponential backoff and jitter from 1 s up to data-max-backoff seconds
// (default 30), or after Retry-After when the daemon's CORS headers expose
// it. Any other 4xx (bad payload, wrong token, unknown event) will never
// succeed: the event is dropped with a console warning naming the daemon's
// error. Posts use fetch with keepalive, so one already sent when the tab
// closes still completes.
//
// # Commands (click-to-dial)
//
// The sending tab also keeps an EventSource open on GET
// /v1/agents/{data-agent}/commands?token=<data-token>; the token travels as
// a query parameter because EventSource cannot set headers (use TLS, and
// keep the daemon's access logs free of query strings). On a "dial" command,
// {"id":"…","to":"+1…","object":{"type":"Contact","id":"003…","name":"…"}},
// it first takes the dial (POST /v1/dial/{id}/ack): the daemon lets one tab
// take it, so that two tabs, a reconnected stream or a restarted daemon
// never dial twice. Then it calls the platform's dial: WWE voice.dial (or
// voice.dialEx with data-dial="dialEx") with the object in the userData
// keys that connector/genesys reads back (ctibridge_who_type,
// ctibridge_who_id, ctibridge_who_name, or the ctibridge_what_* keys when
// the object has "isWhat":true), Five9 click2dial with the object as
// crmObject, Bright Pattern window.bpspat.api.dialNumber with the number
// (the daemon links that call to the object itself). Last it posts the
// SDK's answer (POST /v1/dial/{id}/outcome): dialing, or failed with the
// SDK's reason. When the stream opens, it also has the daemon set a signed
// cookie naming the agent (POST /v1/agents/{agent}/session), so that the
// daemon's GET /dial links work in this browser without agent=.
//
// # Settings (data- attributes of the script tag)
//
//	data-token        the source's bearer token (sources.<platform>.token)
//	data-agent        the agent id that POST /v1/dial names; default: the
//	                  SDK's (Five9 getMetadata().agentId, WWE agent.get()
//	                  username); Bright Pattern also sends it as agentId
//	data-daemon       the daemon's origin, when the script is served from
//	                  elsewhere (default: the script's own origin)
//	data-queue-size   queue bound, in events (default 500)
//	data-max-backoff  longest wait between retries, in seconds (default 30)
//	data-sdk          Bright Pattern only: the global name of the Agent
//	                  Desktop API object (default "adApi")
//	data-dial         Genesys only: "dialEx" dials with voice.dialEx
//	data-commands     "off" disables the commands stream
//	data-debug        any value logs each step to the console
//
// The page's origin must be listed in sources.<platform>.allowed_origins,
// or the browser refuses the daemon's answers (CORS).
//
// The files are plain ES2017 with no dependencies and no build step: core.js
// (queue, sending, election, commands) and one file per platform, served
// concatenated inside one function scope.
package bridge

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

//go:embed js/core.js js/genesys.js js/five9.js js/brightpattern.js
var files embed.FS

// Platforms are the platforms that have a bridge, in the names of their
// sources and of GET /bridge/{platform}.js.
var Platforms = []string{"brightpattern", "five9", "genesys"}

// script is one served file: its bytes and their ETag.
type script struct {
	body []byte
	etag string
}

// scripts holds each platform's served file, built once at init.
var scripts = build()

// build concatenates core.js and each platform's file inside one function
// scope, so that the bridge adds no global names to the agent's page.
func build() map[string]script {
	core, err := files.ReadFile("js/core.js")
	if err != nil {
		panic(err)
	}
	out := make(map[string]script, len(Platforms))
	for _, p := range Platforms {
		own, err := files.ReadFile("js/" + p + ".js")
		if err != nil {
			panic(err)
		}
		var b bytes.Buffer
		b.WriteString("/* ctibridge browser bridge for " + p + ": https://github.com/ctibridge/ctibridge */\n")
		b.WriteString("(function () {\n'use strict';\n")
		b.Write(core)
		b.WriteString("\n")
		b.Write(own)
		b.WriteString("\n})();\n")
		sum := sha256.Sum256(b.Bytes())
		out[p] = script{body: b.Bytes(), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
}

// Script returns the JavaScript served for platform, and whether there is
// one.
func Script(platform string) ([]byte, bool) {
	s, ok := scripts[platform]
	return s.body, ok
}

// CacheControl is what browsers are told about caching a bridge: keep it
// five minutes, then revalidate with its ETag, so that a daemon upgrade
// reaches every agent's page within minutes.
const CacheControl = "public, max-age=300, must-revalidate"

// Handler serves GET /bridge/{platform}.js: the bridge of the platform
// named by the last element of the request path, such as five9.js. An
// unknown platform is 404 with a plain-text message naming the known ones.
func Handler() http.Handler {
	known := make([]string, 0, len(scripts))
	for p := range scripts {
		known = append(known, p+".js")
	}
	sort.Strings(known)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := path.Base(r.URL.Path)
		platform, ok := strings.CutSuffix(name, ".js")
		s, found := scripts[platform]
		if !ok || !found {
			http.Error(w, "no bridge "+name+"; the bridges are "+strings.Join(known, ", "), http.StatusNotFound)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", CacheControl)
		h.Set("ETag", s.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		// The script is included from the CRM's or the contact center's
		// origin, never this one.
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(s.body))
	})
}
