// core.js: what every platform's bridge shares. It is served inside one
// function scope together with one platform file (genesys.js, five9.js,
// brightpattern.js), which calls newBridge(platform). See the Go package
// documentation (connector/bridge) for the guarantees; in short:
//
//   - every event is queued in localStorage, one key per event, before it is
//     sent, and removed only after the daemon answered 2xx;
//   - one tab sends (the WWE leading frame, or the holder of a Web Lock);
//   - network errors, 408, 425, 429 and 5xx are retried with backoff,
//     other 4xx are dropped with a console warning;
//   - the sending tab listens for commands (click-to-dial) over SSE.

// me is this script's tag: document.currentScript is only set while the
// script runs for the first time, so it is read at once.
var me = document.currentScript;

function newBridge(platform) {
  var settings = readSettings(me);
  var tag = '[ctibridge ' + platform + ']';
  var store = openStore();
  var prefix = 'ctibridge:' + platform + ':q:';
  var eventsURL = settings.daemon + '/v1/events/' + platform;

  var sender = false; // this tab drains the queue
  var sending = false; // a drain loop is running
  var timer = null; // the next retry
  var attempt = 0; // failed attempts in a row
  var lastNetworkError = false;
  var seq = 0;
  var chain = Promise.resolve(); // events are queued in the order received
  var commands = null; // {agent: fn → Promise<string>, dial: fn(cmd)}
  var stream = null;
  var streamRetry = null;

  function log() {
    if (settings.debug) console.debug.apply(console, [tag].concat([].slice.call(arguments)));
  }
  function warn() {
    console.warn.apply(console, [tag].concat([].slice.call(arguments)));
  }

  // --- the queue ---------------------------------------------------------

  function queued() {
    var out = [];
    store.keys().forEach(function (key) {
      if (key.indexOf(prefix) !== 0) return;
      var raw = store.get(key);
      var entry;
      try {
        entry = JSON.parse(raw);
      } catch (e) {
        entry = null;
      }
      if (!entry || typeof entry.body !== 'string') {
        store.remove(key); // not ours, or cut short: unusable
        return;
      }
      entry.key = key;
      out.push(entry);
    });
    return out;
  }

  // inOrder returns the queue, oldest first.
  function inOrder() {
    return queued().sort(function (a, b) {
      return a.t - b.t || a.s - b.s || (a.key < b.key ? -1 : 1);
    });
  }

  // enqueue stores ev under a hash of its content without receivedAt, so
  // that two tabs queuing the same event write the same key once.
  function enqueue(ev) {
    var copy = Object.assign({}, ev);
    delete copy.receivedAt;
    var key = prefix + hash(JSON.stringify(copy));
    if (store.get(key) !== null) {
      log('already queued', key);
      return;
    }
    var n = queued().length;
    if (n >= settings.queueSize) {
      warn('queue full (' + n + ' events waiting for ' + settings.daemon + '): event dropped', ev.event);
      return;
    }
    var entry = { t: Date.parse(ev.receivedAt) || Date.now(), s: seq++, body: JSON.stringify(ev) };
    try {
      store.set(key, JSON.stringify(entry));
    } catch (e) {
      warn('could not queue the event (storage full?): event dropped', e);
      return;
    }
    log('queued', ev.event, key);
    kick(false);
  }

  // receive queues the event that make returns (or resolves to; null skips
  // it). make is called at once, inside the SDK's callback, because some
  // SDKs (Five9) wipe an interaction's data right after; what it returns is
  // queued after every earlier event of this tab.
  function receive(make) {
    var p;
    try {
      p = Promise.resolve(make());
    } catch (e) {
      p = Promise.reject(e);
    }
    chain = chain.then(function () {
      return p;
    }).then(function (ev) {
      if (ev) enqueue(ev);
    }, function (e) {
      warn('could not read the event', e);
    });
  }

  // --- sending -----------------------------------------------------------

  // kick drains the queue now, unless a retry is scheduled; force cuts the
  // wait short after a network error (the daemon is reachable again), but
  // never a wait the daemon asked for.
  function kick(force) {
    if (!sender) return;
    if (timer !== null) {
      if (!(force && lastNetworkError)) return;
      clearTimeout(timer);
      timer = null;
    }
    drain();
  }

  // drain sends the queue in order, one event at a time, until it is
  // empty or an attempt fails. It reads the whole queue once per pass (a
  // batch) rather than once per event, and skips what another tab sent
  // meanwhile.
  function drain() {
    if (sending || !sender) return;
    sending = true;
    var batch = [];
    var step = function () {
      var next = null;
      while (sender && !next && batch.length) {
        next = batch.shift();
        if (store.get(next.key) === null) next = null;
      }
      if (sender && !next) {
        batch = inOrder();
        next = batch.shift() || null;
      }
      if (!next) {
        sending = false;
        return;
      }
      return post(next.body).then(function (res) {
        if (res.status >= 200 && res.status < 300) {
          store.remove(next.key);
          attempt = 0;
          log('sent', res.status, next.key);
          return step();
        }
        if (res.status && !retryable(res.status)) {
          store.remove(next.key);
          attempt = 0;
          warn('the daemon refused an event with ' + res.status + ' (' + res.message + '): event dropped', next.body.slice(0, 200));
          return step();
        }
        attempt++;
        lastNetworkError = !res.status;
        var wait = res.retryAfter !== null ? res.retryAfter : backoff(attempt, settings.maxBackoff);
        if (attempt === 3 && !res.status) {
          warn('cannot reach ' + settings.daemon + ' (is it up, and is this page\'s origin in sources.' + platform +
            '.allowed_origins?); ' + queued().length + ' events wait in this browser');
        }
        log('retry in', wait, 'ms after', res.status || res.message);
        sending = false;
        timer = setTimeout(function () {
          timer = null;
          drain();
        }, wait);
      });
    };
    Promise.resolve().then(step).catch(function (e) {
      sending = false;
      warn('sending failed', e);
    });
  }

  function post(body) {
    var headers = { 'Content-Type': 'application/json' };
    if (settings.token) headers.Authorization = 'Bearer ' + settings.token;
    var init = {
      method: 'POST', mode: 'cors', credentials: 'omit', cache: 'no-store', headers: headers, body: body,
      // keepalive lets a post finish after the tab closes; browsers allow
      // 64 KiB of such bodies in flight.
      keepalive: byteLength(body) < 60000
    };
    if (typeof AbortSignal !== 'undefined' && AbortSignal.timeout) init.signal = AbortSignal.timeout(30000);
    return fetch(eventsURL, init).then(function (r) {
      return r.text().catch(function () {
        return '';
      }).then(function (text) {
        var msg = text;
        try {
          msg = JSON.parse(text).error || text;
        } catch (e) { /* not JSON */ }
        return { status: r.status, retryAfter: retryAfter(r), message: msg };
      });
    }, function (e) {
      return { status: 0, retryAfter: null, message: String(e) };
    });
  }

  // --- which tab sends ---------------------------------------------------

  function setSender(yes) {
    if (yes === sender) return;
    sender = yes;
    log(yes ? 'this tab sends' : 'another tab sends');
    if (yes) {
      drain();
      openCommands();
    } else {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      closeCommands();
    }
  }

  // electByLock makes this tab the sender while it holds the Web Lock
  // "ctibridge:<platform>". The other tabs wait in the lock's queue, so
  // when the sender closes or reloads, the next one takes over.
  function electByLock() {
    var locks = navigator.locks;
    if (!locks || !locks.request) {
      log('no Web Locks API: every tab sends; the daemon deduplicates');
      setSender(true);
      return;
    }
    locks.request('ctibridge:' + platform, function () {
      setSender(true);
      return new Promise(function () {}); // held until the page goes away
    }).catch(function (e) {
      warn('Web Locks failed; this tab sends too', e);
      setSender(true);
    });
  }

  window.addEventListener('storage', function (e) {
    if (e.key && e.key.indexOf(prefix) === 0 && e.newValue) kick(false); // another tab queued
  });
  window.addEventListener('online', function () {
    kick(true);
  });
  setInterval(function () {
    kick(false);
  }, 15000);

  // --- commands ----------------------------------------------------------

  // A dial is made once: the tab takes it from the daemon (ack) before it
  // calls the SDK, and the daemon lets one tab take it. tab names this page
  // load; taken remembers the dials this page took or was refused.
  var tab = randomID();
  var taken = {};

  function openCommands() {
    if (!commands || !settings.commands || stream || !sender) return;
    commands.agent().then(function (agent) {
      if (stream || !sender) return;
      if (!agent) {
        warn('no agent id (data-agent): click-to-dial is off');
        return;
      }
      // EventSource cannot send headers: the token goes in the query. It
      // reconnects by itself, saying in Last-Event-ID the last dial it got.
      var url = settings.daemon + '/v1/agents/' + encodeURIComponent(agent) + '/commands' +
        (settings.token ? '?token=' + encodeURIComponent(settings.token) : '');
      var es = new EventSource(url);
      stream = es;
      es.addEventListener('open', function () {
        log('commands stream open for agent', agent);
        kick(true); // the daemon is back
        signIn(agent);
      });
      es.addEventListener('dial', function (e) {
        var cmd;
        try {
          cmd = JSON.parse(e.data);
        } catch (x) {
          warn('unreadable dial command', e.data);
          return;
        }
        if (!cmd || typeof cmd.to !== 'string' || !cmd.to || typeof cmd.id !== 'string') {
          warn('dial command without an id or a number', e.data);
          return;
        }
        take(cmd, 0);
      });
      es.addEventListener('error', function () {
        // A network error reconnects by itself; a refusal (401, 403)
        // closes the stream for good, so try again in a minute.
        if (es.readyState === EventSource.CLOSED && stream === es) {
          warn('the daemon refused the commands stream (token, or allowed_origins?); retrying in 60 s');
          stream = null;
          streamRetry = setTimeout(openCommands, 60000);
        }
      });
    });
  }

  // take asks the daemon for the dial and, if this tab gets it, dials.
  function take(cmd, attempt) {
    if (taken[cmd.id] && attempt === 0) return;
    taken[cmd.id] = true;
    var dialURL = settings.daemon + '/v1/dial/' + encodeURIComponent(cmd.id);
    postJSON(dialURL + '/ack', { tab: tab }).then(function (r) {
      if (r.status === 200) {
        log('dial', cmd.id, cmd.to);
        var outcome;
        try {
          outcome = withTimeout(Promise.resolve(commands.dial(cmd)), 10000);
        } catch (x) {
          outcome = Promise.reject(x);
        }
        return outcome.then(function () {
          return { tab: tab, state: 'dialing' };
        }, function (x) {
          warn('dial failed', cmd.to, x);
          return { tab: tab, state: 'failed', reason: reason(x) };
        }).then(function (body) {
          return postJSON(dialURL + '/outcome', body);
        });
      }
      if (!r.status || r.status >= 500) {
        if (attempt < 5) setTimeout(function () { take(cmd, attempt + 1); }, 300 * (attempt + 1));
        else delete taken[cmd.id]; // the daemon offers it again
        return;
      }
      log('dial', cmd.id, 'not for this tab:', r.status, r.message);
    });
  }

  // signIn has the daemon set the signed cookie that tells its /dial page
  // which agent uses this browser.
  function signIn(agent) {
    var headers = {};
    if (settings.token) headers.Authorization = 'Bearer ' + settings.token;
    fetch(settings.daemon + '/v1/agents/' + encodeURIComponent(agent) + '/session', {
      method: 'POST', mode: 'cors', credentials: 'include', cache: 'no-store', headers: headers
    }).catch(function (e) {
      log('could not sign this browser in for /dial links', e);
    });
  }

  function postJSON(url, body) {
    var headers = { 'Content-Type': 'application/json' };
    if (settings.token) headers.Authorization = 'Bearer ' + settings.token;
    return fetch(url, {
      method: 'POST', mode: 'cors', credentials: 'omit', cache: 'no-store', headers: headers, body: JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (text) {
        var msg = text;
        try {
          msg = JSON.parse(text).error || text;
        } catch (e) { /* not JSON */ }
        return { status: r.status, message: msg };
      });
    }, function (e) {
      return { status: 0, message: String(e) };
    });
  }

  function closeCommands() {
    if (stream) stream.close();
    stream = null;
    clearTimeout(streamRetry);
  }

  // whenReady calls ready(v) once probe() returns something: the SDK may
  // load after this script.
  function whenReady(probe, ready) {
    var started = Date.now();
    var warned = false;
    var poll = function () {
      var v;
      try {
        v = probe();
      } catch (e) {
        v = null;
      }
      if (v) {
        ready(v);
        return;
      }
      if (!warned && Date.now() - started > 30000) {
        warned = true;
        warn('the ' + platform + ' SDK is not on this page yet; still waiting');
      }
      setTimeout(poll, Date.now() - started > 30000 ? 2000 : 100);
    };
    poll();
  }

  return {
    settings: settings,
    log: log,
    warn: warn,
    now: function () {
      return new Date().toISOString();
    },
    receive: receive,
    setSender: setSender,
    electByLock: electByLock,
    // listen sets the platform's command handlers: agent() resolves to the
    // agent id; dial(cmd) dials cmd.to, with cmd.object the record clicked
    // from, and returns a promise that rejects with the SDK's reason.
    listen: function (h) {
      commands = h;
      openCommands();
    },
    whenReady: whenReady
  };

}

function readSettings(el) {
  if (!el) console.warn('[ctibridge] cannot find its own script tag: load the bridge with a plain <script src=…> tag');
  var d = (el && el.dataset) || {};
  var origin = location.origin;
  if (el && el.src) origin = new URL(el.src, location.href).origin;
  return {
    daemon: (d.daemon || origin).replace(/\/+$/, ''),
    token: d.token || '',
    agent: d.agent || '',
    queueSize: positive(d.queueSize, 500),
    maxBackoff: positive(d.maxBackoff, 30) * 1000,
    sdk: d.sdk || '',
    dial: d.dial || '',
    commands: d.commands !== 'off',
    debug: d.debug !== undefined
  };
}

// reason is what an SDK's failure says, as text.
function reason(x) {
  if (x === undefined || x === null) return 'the SDK gave no reason';
  if (typeof x === 'string') return x;
  if (x.message) return String(x.message);
  if (x.errorMessage) return String(x.errorMessage);
  try {
    return JSON.stringify(x);
  } catch (e) {
    return String(x);
  }
}

// withTimeout rejects when p has not settled after ms: an SDK that never
// calls back (WWE ignores requests during its own rate-limit quarantine)
// still gets an outcome.
function withTimeout(p, ms) {
  return new Promise(function (resolve, reject) {
    var t = setTimeout(function () {
      reject(new Error('the SDK did not answer within ' + ms / 1000 + ' s'));
    }, ms);
    p.then(function (v) {
      clearTimeout(t);
      resolve(v);
    }, function (e) {
      clearTimeout(t);
      reject(e);
    });
  });
}

// randomID names this page load.
function randomID() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2);
}

function positive(s, def) {
  var n = Number(s);
  return s !== undefined && s !== '' && n > 0 ? n : def;
}

function retryable(status) {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

// backoff is the wait before attempt n (1, 2, …): doubling from 1 s up to
// max, with jitter so that many agents' browsers do not come back at once.
function backoff(n, max) {
  var base = Math.min(max, 1000 * Math.pow(2, Math.min(n - 1, 20)));
  return Math.round(base / 2 + Math.random() * base / 2);
}

// retryAfter reads Retry-After (seconds or a date) in milliseconds, capped
// at five minutes; null when absent or not exposed by CORS.
function retryAfter(r) {
  var v = r.headers.get('Retry-After');
  if (!v) return null;
  var ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - Date.now();
  if (isNaN(ms)) return null;
  return Math.min(Math.max(ms, 0), 300000);
}

function byteLength(s) {
  return typeof TextEncoder !== 'undefined' ? new TextEncoder().encode(s).length : s.length * 3;
}

// hash is cyrb53, a fast 53-bit string hash, in hex.
function hash(str) {
  var h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (var i = 0; i < str.length; i++) {
    var ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16);
}

// openStore returns localStorage, or a memory store when the page may not
// use it (then the queue does not survive a reload).
function openStore() {
  try {
    var ls = window.localStorage;
    var probe = 'ctibridge:probe';
    ls.setItem(probe, '1');
    ls.removeItem(probe);
    return {
      get: function (k) { return ls.getItem(k); },
      set: function (k, v) { ls.setItem(k, v); },
      remove: function (k) { ls.removeItem(k); },
      keys: function () {
        var out = [];
        for (var i = 0; i < ls.length; i++) out.push(ls.key(i));
        return out;
      }
    };
  } catch (e) {
    console.warn('[ctibridge] localStorage is not available: queued events will not survive a reload', e);
    var m = new Map();
    return {
      get: function (k) { return m.has(k) ? m.get(k) : null; },
      set: function (k, v) { m.set(k, v); },
      remove: function (k) { m.delete(k); },
      keys: function () { return Array.from(m.keys()); }
    };
  }
}

// lookup resolves a dotted global name such as "genesys.wwe.service".
function lookup(path) {
  return path.split('.').reduce(function (o, k) {
    return o == null ? o : o[k];
  }, window);
}

// settle resolves to what p resolves to, or to undefined when p fails or
// takes longer than ms.
function settle(p, ms) {
  return new Promise(function (resolve) {
    var t = setTimeout(resolve, ms || 3000);
    Promise.resolve(p).then(function (v) {
      clearTimeout(t);
      resolve(v);
    }, function () {
      clearTimeout(t);
      resolve(undefined);
    });
  });
}
