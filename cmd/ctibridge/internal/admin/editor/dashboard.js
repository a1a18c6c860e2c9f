// The dashboard's page: plain JavaScript, no build step, no dependencies.
// It reads /admin/api/overview every few seconds and draws it; the search
// reads /admin/api/trace. Requests that change something carry the
// session's CSRF token from the page's <meta> tag. Times are shown in the
// viewer's own time zone.
'use strict';

(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const refreshEvery = 3000;
  let sessionOver = false;

  // h makes an element; strings among children become text, never HTML.
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
    return e;
  }

  async function api(method, path) {
    const opts = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET') opts.headers['X-CSRF-Token'] = csrf;
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      return { status: 0, data: { error: 'the daemon did not answer (' + e.message + ')' } };
    }
    let data = {};
    try { data = await resp.json(); } catch (e) { data = { error: 'unexpected answer (' + resp.status + ')' }; }
    if (resp.status === 401 || resp.status === 403) {
      sessionOver = true;
      banner('Your session has ended. ', true, h('a', { href: '/admin/login' }, 'Log in again'));
    }
    return { status: resp.status, data };
  }

  function banner(text, bad, link) {
    const b = $('banner');
    b.replaceChildren(text, link || '');
    b.className = 'banner' + (bad ? ' bad' : '');
    b.hidden = false;
  }

  const when = (iso) => (iso && !iso.startsWith('0001-') ? new Date(iso).toLocaleString() : '—');

  function age(s) {
    if (!s) return '—';
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.round(s / 60) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }

  // spark draws values as a small line: the last hour, a point a minute.
  function spark(values, label) {
    const w = 120, hgt = 24, max = Math.max(1, ...values);
    const pts = values.map((v, i) => (i * w / (values.length - 1)).toFixed(1) + ',' + (hgt - 2 - v * (hgt - 4) / max).toFixed(1));
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
    svg.setAttribute('class', 'spark');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', pts.join(' '));
    svg.append(line);
    return svg;
  }

  const sum = (xs) => (xs || []).reduce((a, b) => a + b, 0);

  function drawTargets(o) {
    const rows = [];
    const acts = (o.activity && o.activity.targets) || {};
    for (const t of o.stats.targets) {
      const b = (o.breakers || {})[t.target] || {};
      const a = acts[t.target] || { delivered: [0, 0], latencyMs: [0, 0], throttled: [] };
      const latest = a.latencyMs.filter((x) => x > 0);
      rows.push(h('tr', { 'data-target': t.target },
        h('th', {}, t.target),
        h('td', { class: 'pending' }, String(t.pending)),
        h('td', { class: 'running' }, String(t.running)),
        h('td', { class: 'retrying' }, String(t.retrying)),
        h('td', { class: 'delivered' }, String(t.delivered)),
        h('td', { class: 'dead' + (t.dead ? ' bad' : '') }, String(t.dead)),
        h('td', { class: 'oldest' }, age(t.oldestWaitingSeconds)),
        h('td', { class: 'breaker ' + (b.breaker || '') }, b.breaker ? b.breaker + (b.pausedUntil ? ' until ' + when(b.pausedUntil) : '') : '—'),
        h('td', { class: 'throttled' }, String(sum(a.throttled))),
        h('td', {}, spark(a.delivered, 'deliveries per minute, last hour'), ' ', String(sum(a.delivered))),
        h('td', {}, spark(a.latencyMs, 'mean latency per minute, last hour'), ' ',
          latest.length ? Math.round(latest[latest.length - 1]) + ' ms' : '—')));
    }
    if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 11, class: 'muted' }, 'No deliveries yet.')));
    $('targets').tBodies[0].replaceChildren(...rows);
    const events = o.activity ? sum(o.activity.events) : 0;
    $('events-line').textContent = `Events stored: ${o.stats.events}; accepted in the last hour: ${events}.`;
  }

  function drawDead(o) {
    $('dead-count').textContent = String(o.stats.dead);
    $('retry-all').hidden = o.stats.dead === 0;
    const rows = o.dead.map((d) => h('tr', { 'data-id': String(d.id) },
      h('td', {}, String(d.id)), h('td', {}, d.target), h('td', { class: 'mono' }, d.key),
      h('td', {}, when(d.finishedAt)), h('td', { class: 'mono answer' }, d.lastError || ''),
      h('td', {}, h('button', { type: 'button', class: 'retry', onclick: () => retry(d.id) }, 'Retry'))));
    if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'None.')));
    $('dead').tBodies[0].replaceChildren(...rows);
  }

  function drawFailedEvents(o) {
    $('failed-count').textContent = String(o.stats.mappingFailed);
    $('remap').hidden = o.stats.mappingFailed === 0;
    const rows = o.mappingFailed.map((e) => h('tr', { 'data-id': String(e.id) },
      h('td', {}, String(e.id)), h('td', {}, e.platform), h('td', {}, when(e.receivedAt)),
      h('td', { class: 'mono answer' }, ...(e.failures && e.failures.length
        ? e.failures.map((f) => h('div', { class: 'rule-failure' }, h('strong', {}, `${f.rule} → ${f.target}: `), f.error))
        : [e.error || '']))));
    if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'None.')));
    $('failed-events').tBodies[0].replaceChildren(...rows);
  }

  function drawFailures(o) {
    const items = o.recentFailures.map((f) => h('li', {},
      h('span', { class: 'when' }, when(f.startedAt)), ' ', h('strong', {}, f.target), ' ',
      f.status ? 'HTTP ' + f.status + ' ' : '', f.outcome === 'dead' ? 'given up: ' : 'will retry: ',
      h('span', { class: 'mono' }, f.error || ''), ' ',
      h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); search(f.key.split(':')[1] || f.key); } }, 'trace')));
    if (!items.length) items.push(h('li', { class: 'muted' }, 'No failed attempt.'));
    $('failures').replaceChildren(...items);
  }

  async function refresh() {
    if (sessionOver) return;
    const { status, data } = await api('GET', '/admin/api/overview');
    if (status !== 200) {
      $('status').textContent = data.error || 'unavailable';
      return;
    }
    drawTargets(data);
    drawDead(data);
    drawFailedEvents(data);
    drawFailures(data);
    $('status').textContent = 'updated ' + new Date().toLocaleTimeString();
    document.body.dataset.ready = '1';
  }

  async function retry(id) {
    const { status, data } = await api('POST', `/admin/api/deliveries/${id}/retry`);
    banner(status === 200 ? `Delivery ${id} is queued again.` : `Retry of ${id} failed: ${data.error}`, status !== 200);
    refresh();
  }

  $('retry-all').addEventListener('click', async () => {
    const { status, data } = await api('POST', '/admin/api/deliveries/retry-dead');
    banner(status === 200 ? `${data.retried} dead deliveries are queued again.` : 'Retry all failed: ' + data.error, status !== 200);
    refresh();
  });

  $('remap').addEventListener('click', async () => {
    const { status, data } = await api('POST', '/admin/api/events/remap');
    banner(status === 200 ? `Remapped ${data.remapped} events into ${data.activities} records; ${data.stillFailing} still fail.`
      : 'Remap failed: ' + data.error, status !== 200);
    refresh();
  });

  $('logout').addEventListener('click', async () => {
    await api('POST', '/admin/logout');
    window.location.assign('/admin/login');
  });

  // The trace: raw event → interaction → each record → every attempt.
  function pre(value) {
    return h('pre', { class: 'json' }, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  }

  function drawTrace(q, events) {
    const out = $('trace');
    if (!events.length) {
      out.replaceChildren(h('p', { class: 'muted' }, `Nothing found for “${q}”.`));
      out.dataset.state = 'empty';
      return;
    }
    const blocks = events.map((e) => {
      const ix = e.interaction || {};
      const deliveries = e.deliveries.map((r) => {
        const d = r.delivery;
        const attempts = r.attempts.map((a) => h('tr', {},
          h('td', {}, `${a.window}.${a.attempt}`), h('td', {}, when(a.startedAt)), h('td', {}, a.status ? String(a.status) : '—'),
          h('td', {}, a.latencyMs + ' ms'), h('td', { class: a.outcome }, a.outcome),
          h('td', { class: 'mono answer' }, a.responseBody || a.error || '')));
        return h('div', { class: 'delivery', 'data-delivery': String(d.id), 'data-state': d.state },
          h('h4', {}, `→ ${d.target}: `, h('span', { class: 'state ' + d.state }, d.state),
            d.recordId ? h('span', { class: 'record' }, ' · CRM record ', h('code', {}, d.recordId)) : '',
            d.state === 'dead' ? h('button', { type: 'button', class: 'retry', onclick: () => retry(d.id) }, 'Retry') : ''),
          h('details', {}, h('summary', {}, 'record sent'), pre(r.payload)),
          attempts.length ? h('table', { class: 'grid attempts' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Try'), h('th', {}, 'Started'), h('th', {}, 'Status'),
              h('th', {}, 'Latency'), h('th', {}, 'Outcome'), h('th', {}, "CRM's answer"))),
            h('tbody', {}, ...attempts)) : h('p', { class: 'muted' }, 'Not attempted yet.'));
      });
      return h('article', { class: 'traced', 'data-event': String(e.id) },
        h('h3', {}, `${e.platform} ${e.type} · ${when(e.receivedAt)} · interaction ${ix.id || '—'}`,
          ix.agent && ix.agent.id ? ` · agent ${ix.agent.id}` : ''),
        e.state === 'mapping_failed' ? h('p', { class: 'bad' }, 'Mapping failed: ' + e.error) : '',
        ...(e.failures || []).map((f) => h('p', { class: 'bad rule-failure' }, `Rule ${f.rule} (→ ${f.target}) failed: ${f.error}`)),
        h('details', {}, h('summary', {}, 'raw event'), pre(e.body)),
        e.interaction ? h('details', {}, h('summary', {}, 'normalized interaction'), pre(e.interaction)) : '',
        ...(deliveries.length ? deliveries : [h('p', { class: 'muted' }, 'No record: no rule matched this event.')]));
    });
    out.replaceChildren(...blocks);
    out.dataset.state = 'done';
  }

  async function search(q) {
    $('q').value = q;
    $('trace').dataset.state = 'loading';
    const { status, data } = await api('GET', '/admin/api/trace?q=' + encodeURIComponent(q));
    if (status !== 200) {
      $('trace').replaceChildren(h('p', { class: 'bad' }, data.error));
      $('trace').dataset.state = 'error';
      return;
    }
    drawTrace(q, data.events);
  }

  $('search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    search($('q').value.trim());
  });

  refresh();
  setInterval(refresh, refreshEvery);
})();
