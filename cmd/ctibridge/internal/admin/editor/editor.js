// The mapping editor's page: plain JavaScript, no build step, no
// dependencies. It talks to the admin API under /admin/api/ with the
// session cookie; every request that changes something carries the
// session's CSRF token, which the page reads from its <meta> tag.
'use strict';

(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const code = $('code');
  const gutter = $('gutter');
  const marks = $('marks');
  const nameRE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\.toml$/;

  const state = {
    editable: false,
    files: new Map(), // name → {name, content, saved, base, isNew, readOnly, problems, checked}
    current: '',
    checkSeq: 0,
    checkTimer: 0,
    lines: 0,
    sessionOver: false,
  };

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

  async function api(method, path, body) {
    const opts = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET') opts.headers['X-CSRF-Token'] = csrf;
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      return { status: 0, data: { error: 'the daemon did not answer (' + e.message + ')' } };
    }
    let data = {};
    try { data = await resp.json(); } catch (e) { data = { error: 'unexpected answer (' + resp.status + ')' }; }
    if (resp.status === 401) sessionEnded();
    return { status: resp.status, data };
  }

  function banner(text, bad, link) {
    const b = $('banner');
    b.replaceChildren(text, link ? ' ' : '', link || '');
    b.className = 'banner' + (bad ? ' bad' : '');
    b.hidden = false;
  }

  function sessionEnded() {
    if (state.sessionOver) return;
    state.sessionOver = true;
    banner('Your session has ended (you logged out, it expired, or the daemon restarted). Copy any text you have not saved, then',
      true, h('a', { href: '/admin/login' }, 'log in again.'));
  }

  const cur = () => state.files.get(state.current);
  const isDirty = (f) => f.isNew || f.content !== f.saved;
  const canEdit = (f) => f && state.editable && !f.readOnly;
  const count = (n, what) => `${n} ${what}${n === 1 ? '' : 's'}`;

  // --- status, files --------------------------------------------------

  function renderStatus(st) {
    const s = $('status');
    const at = st.loadedAt ? new Date(st.loadedAt).toLocaleTimeString() : '—';
    s.replaceChildren(`${count(st.rules, 'rule')} in ${count((st.files || []).length, 'file')} in use · loaded ${at} · ${count(st.reloads, 'load')}`);
    if (st.lastError) s.append(' · ', h('span', { class: 'bad', title: st.lastError }, 'the last reload failed; the previous mappings stay in use'));
  }

  function renderFiles() {
    const list = $('file-list');
    list.replaceChildren();
    for (const f of state.files.values()) {
      const b = h('button', { type: 'button', 'data-file': f.name, onclick: () => openFile(f.name) }, f.name,
        isDirty(f) ? h('span', { class: 'mark', title: 'not saved' }, ' ●') : null);
      if (f.name === state.current) b.setAttribute('aria-current', 'true');
      list.append(h('li', null, b));
    }
  }

  function updateDirty() {
    const f = cur();
    $('dirty').hidden = !(f && isDirty(f));
    const b = document.querySelector(`#file-list button[data-file="${CSS.escape(state.current)}"]`);
    if (b) {
      const has = b.querySelector('.mark');
      if (f && isDirty(f) && !has) b.append(h('span', { class: 'mark', title: 'not saved' }, ' ●'));
      if (f && !isDirty(f) && has) has.remove();
    }
    updateSave();
  }

  function updateSave() {
    const f = cur();
    const knownBad = f && f.checked === f.content && f.problems.length > 0;
    $('save').disabled = !canEdit(f) || !isDirty(f) || knownBad;
  }

  function openFile(name) {
    const f = state.files.get(name);
    if (!f) return;
    state.current = name;
    $('file-name').textContent = name;
    code.value = f.content;
    code.readOnly = !canEdit(f);
    code.scrollTop = 0;
    code.scrollLeft = 0;
    if (f.readOnly && state.editable) banner(`${name}: ${f.readOnly}.`, false);
    renderFiles();
    renderGutter();
    renderProblems();
    updateDirty();
    setSaveMsg('', '');
    if (canEdit(f)) check();
    else setCheckState('read-only', '');
  }

  function newFile() {
    const name = (window.prompt('Name of the new mapping file, ending in .toml:', 'new.toml') || '').trim();
    if (!name) return;
    if (!nameRE.test(name)) {
      window.alert('A mapping file\'s name is letters, digits, ".", "_" and "-", ending in .toml.');
      return;
    }
    if (state.files.has(name)) {
      openFile(name);
      return;
    }
    const content = '[[rule]]\nname   = ""\ntarget = ""\nobject = ""\nwhen   = \'channel == "voice"\'\n\n[rule.fields]\nSubject = \'"Call " + id\'\n';
    state.files.set(name, { name, content, saved: '', base: '', isNew: true, readOnly: '', problems: [], checked: null });
    openFile(name);
  }

  // --- gutter, marks, problems ----------------------------------------

  const lineHeight = () => parseFloat(getComputedStyle(gutter).lineHeight) || 20;
  const padTop = () => parseFloat(getComputedStyle(code).paddingTop) || 0;

  function renderGutter() {
    const n = code.value.split('\n').length;
    if (n !== state.lines) {
      const frag = document.createDocumentFragment();
      for (let i = 1; i <= n; i++) frag.append(h('div', { 'data-line': String(i) }, String(i)));
      frag.append(h('div', { class: 'tail' })); // room for a horizontal scrollbar
      gutter.replaceChildren(frag);
      state.lines = n;
    }
    renderMarks();
    syncScroll();
  }

  let charWidth = 0;
  function measureChar() {
    if (charWidth) return charWidth;
    const probe = h('span', null, 'M'.repeat(100));
    probe.style.cssText = 'position:absolute;visibility:hidden;white-space:pre;font:inherit';
    marks.append(probe);
    charWidth = probe.getBoundingClientRect().width / 100 || 8;
    probe.remove();
    return charWidth;
  }

  // visualColumn is where column col (1-based, in characters) of line is
  // drawn, counting a tab to the next multiple of 4.
  function visualColumn(line, col) {
    let v = 0;
    for (const ch of Array.from(line).slice(0, col - 1)) v = ch === '\t' ? (Math.floor(v / 4) + 1) * 4 : v + 1;
    return v;
  }

  function renderMarks() {
    const f = cur();
    for (const d of gutter.querySelectorAll('div.err')) {
      d.classList.remove('err');
      d.removeAttribute('title');
    }
    marks.replaceChildren();
    if (!f) return;
    const lh = lineHeight();
    const top = padTop();
    const left = parseFloat(getComputedStyle(code).paddingLeft) || 0;
    const lines = code.value.split('\n');
    const byLine = new Map();
    for (const p of f.problems) {
      if (p.file !== f.name || !p.line || p.line > state.lines) continue;
      if (!byLine.has(p.line)) byLine.set(p.line, []);
      byLine.get(p.line).push(p);
    }
    for (const [line, ps] of byLine) {
      const g = gutter.children[line - 1];
      g.classList.add('err');
      g.title = ps.map((p) => p.msg).join('\n');
      const bar = h('div', { class: 'mark-line' });
      bar.style.top = (top + (line - 1) * lh) + 'px';
      marks.append(bar);
      for (const p of ps) {
        if (!p.col) continue;
        const c = h('div', { class: 'mark-col', title: p.msg });
        c.style.top = bar.style.top;
        c.style.left = (left + visualColumn(lines[line - 1] || '', p.col) * measureChar()) + 'px';
        marks.append(c);
      }
    }
  }

  function syncScroll() {
    gutter.scrollTop = code.scrollTop;
    marks.style.transform = `translate(${-code.scrollLeft}px, ${-code.scrollTop}px)`;
  }

  function renderProblems() {
    const f = cur();
    const list = $('problems');
    list.replaceChildren();
    if (!f || f.problems.length === 0) {
      list.append(h('li', { class: 'none' }, f && f.checked === f.content ? 'none' : '—'));
      return;
    }
    for (const p of f.problems) {
      let where = p.file;
      if (p.line) where += `:${p.line}` + (p.col ? `:${p.col}` : '');
      const item = h('li', { 'data-line': String(p.line || 0), title: 'Go to the problem' },
        h('span', { class: 'where' }, where), p.msg, p.text ? h('pre', null, p.text) : null);
      item.addEventListener('click', () => goTo(p));
      list.append(item);
    }
  }

  function goTo(p) {
    if (p.file !== state.current) {
      if (!state.files.has(p.file)) return;
      openFile(p.file);
    }
    if (!p.line) return;
    const lines = code.value.split('\n');
    let off = 0;
    for (let i = 0; i < p.line - 1 && i < lines.length; i++) off += lines[i].length + 1;
    off += Array.from(lines[p.line - 1] || '').slice(0, Math.max(0, (p.col || 1) - 1)).join('').length;
    code.focus();
    code.setSelectionRange(off, off);
    code.scrollTop = Math.max(0, (p.line - 1) * lineHeight() - code.clientHeight / 2);
    syncScroll();
  }

  function setCheckState(text, cls) {
    const s = $('check-state');
    s.textContent = text;
    s.className = 'check-state' + (cls ? ' ' + cls : '');
    s.dataset.state = cls || 'idle';
  }

  function setSaveMsg(text, cls) {
    const s = $('save-msg');
    s.textContent = text;
    s.className = 'save-msg' + (cls ? ' ' + cls : '');
  }

  // --- check, save ----------------------------------------------------

  async function check() {
    const f = cur();
    if (!canEdit(f)) return;
    const seq = ++state.checkSeq;
    const text = f.content;
    setCheckState('checking…', 'checking');
    const { status, data } = await api('POST', '/admin/api/mappings/check', { name: f.name, content: text });
    if (seq !== state.checkSeq) return; // a newer check is under way
    if (status !== 200) {
      setCheckState(data.error || `the check failed (${status})`, 'bad');
      return;
    }
    f.problems = data.problems || [];
    f.checked = text;
    if (f.name === state.current) {
      renderProblems();
      renderMarks();
      updateSave();
      const n = f.problems.length;
      if (data.ok) setCheckState(`✓ no problems · ${count(data.rules.length, 'rule')}`, 'ok');
      else setCheckState(`✗ ${count(n, 'problem')}`, 'bad');
    }
  }

  function scheduleCheck() {
    clearTimeout(state.checkTimer);
    state.checkSeq++; // an answer for older text is stale now
    setCheckState('…', 'checking');
    state.checkTimer = setTimeout(check, 300);
  }

  async function save() {
    const f = cur();
    if (!canEdit(f) || !isDirty(f)) return;
    clearTimeout(state.checkTimer);
    $('save').disabled = true;
    setSaveMsg('Saving…', '');
    const text = f.content;
    const { status, data } = await api('PUT', '/admin/api/mappings/' + encodeURIComponent(f.name),
      { content: text, base: f.isNew ? '' : f.base });
    const at = new Date().toLocaleTimeString();
    if (status === 200) {
      f.saved = text;
      f.base = data.sum;
      f.isNew = false;
      f.problems = [];
      f.checked = text;
      renderStatus(data.status);
      refreshFailed();
      setSaveMsg(`Saved ${f.name} at ${at}: ${count(data.status.rules, 'rule')} in use from now on.`, 'ok');
      setCheckState('✓ saved', 'ok');
    } else if (status === 422) {
      f.problems = data.problems || [];
      f.checked = text;
      setSaveMsg(`Not saved: fix the problems below first. ${f.name} on disk is unchanged.`, 'bad');
      setCheckState(`✗ ${count(f.problems.length, 'problem')}`, 'bad');
    } else {
      setSaveMsg(data.error || `The save failed (${status}).`, 'bad');
    }
    if (f.name === state.current) {
      renderProblems();
      renderMarks();
    }
    renderFiles();
    updateDirty();
  }

  // --- preview --------------------------------------------------------

  async function loadEvents() {
    const { status, data } = await api('GET', '/admin/api/events/recent?limit=30');
    const pick = $('event-pick');
    const keep = pick.value;
    pick.replaceChildren(h('option', { value: '' }, '— or paste one below —'));
    if (status !== 200) return;
    for (const ev of data.events) {
      const when = new Date(ev.receivedAt).toLocaleString([], { dateStyle: 'short', timeStyle: 'medium' });
      const what = [ev.channel, ev.direction].filter(Boolean).join(' ');
      pick.append(h('option', { value: String(ev.id) },
        `#${ev.id} · ${ev.platform} · ${when} · ${ev.interactionId}${what ? ' (' + what + ')' : ''}` +
        (ev.state === 'mapping_failed' ? ' · mapping failed' : '')));
    }
    pick.value = keep;
    pick.dataset.count = String(data.events.length);
  }

  function show(v) {
    if (typeof v === 'string') return v;
    return JSON.stringify(v);
  }

  // renderPreview shows what each rule makes of one interaction into out.
  function renderPreview(out, platform, inter, results, of) {
    const matched = results.filter((r) => r.matched).length;
    out.append(h('p', { class: 'summary' },
      h('strong', null, `${platform} interaction ${inter.id}`), inter.leg && of > 1 ? ` (leg ${inter.leg})` : '',
      ` · ${inter.channel}, ${inter.direction}`,
      ` · ${matched} of ${count(results.length, 'rule')} matched`));
    for (const r of results) {
      const badge = r.error ? h('span', { class: 'badge failed' }, 'failed')
        : r.matched ? h('span', { class: 'badge matched' }, 'matched') : h('span', { class: 'badge' }, 'not matched');
      const card = h('div', { class: 'rule', 'data-rule': r.rule },
        h('header', null, h('span', { class: 'name' }, r.rule), badge,
          h('span', { class: 'where' }, `→ ${r.target} · ${r.object} · ${r.file}:${r.line}`)));
      if (r.reason) card.append(h('div', { class: 'reason' }, r.reason));
      if (r.error) card.append(h('div', { class: 'error' }, r.error));
      if (r.activity) {
        const table = h('table', { class: 'fields' });
        table.append(h('tr', null, h('td', null, 'key'), h('td', null, r.activity.key)));
        for (const k of Object.keys(r.activity.fields || {}).sort()) {
          table.append(h('tr', { 'data-field': k }, h('td', null, k), h('td', null, show(r.activity.fields[k]))));
        }
        card.append(table);
      }
      out.append(card);
    }
    out.append(h('details', null, h('summary', null, 'The interaction\'s fields'),
      h('pre', null, JSON.stringify(inter, null, 2))));
  }

  async function preview() {
    const f = cur();
    const out = $('preview-out');
    const body = { name: f ? f.name : '', content: f ? f.content : '' };
    const pick = $('event-pick').value;
    const text = $('event-text').value;
    if (pick) body.eventId = Number(pick);
    else if (text.trim()) {
      body.event = text;
      if ($('platform').value) body.platform = $('platform').value;
    } else {
      out.replaceChildren(h('p', { class: 'error' }, 'Pick a recent event, or paste one.'));
      return;
    }
    out.dataset.state = 'running';
    out.replaceChildren(h('p', { class: 'hint' }, 'Previewing…'));
    const { status, data } = await api('POST', '/admin/api/mappings/preview', body);
    if (status !== 200) {
      out.replaceChildren(h('p', { class: 'error' }, data.error || `The preview failed (${status}).`));
      if (data.problems && f) {
        f.problems = data.problems;
        f.checked = f.content;
        renderProblems();
        renderMarks();
      }
      out.dataset.state = 'error';
      return;
    }
    // A sequence may complete several interactions (each agent's leg of a
    // transfer): each one's rules, in order.
    const previews = data.previews || [{ interaction: data.interaction, results: data.results }];
    out.replaceChildren();
    for (const p of previews) {
      const section = h('section', { class: 'interaction', 'data-interaction': p.interaction.id });
      renderPreview(section, data.platform, p.interaction, p.results, previews.length);
      out.append(section);
    }
    out.dataset.state = 'done';
  }

  // --- wiring ---------------------------------------------------------

  code.addEventListener('input', () => {
    const f = cur();
    if (!canEdit(f)) return;
    f.content = code.value;
    renderGutter();
    updateDirty();
    scheduleCheck();
  });
  code.addEventListener('scroll', syncScroll);
  gutter.addEventListener('click', (e) => {
    const line = Number(e.target.dataset && e.target.dataset.line);
    if (line) goTo({ file: state.current, line, col: 1 });
  });
  $('save').addEventListener('click', save);
  $('new-file').addEventListener('click', newFile);
  $('run-preview').addEventListener('click', preview);
  $('refresh-events').addEventListener('click', loadEvents);
  $('event-pick').addEventListener('change', () => { if ($('event-pick').value) preview(); });
  $('event-text').addEventListener('input', () => { $('event-pick').value = ''; });
  $('logout').addEventListener('click', async () => {
    if ([...state.files.values()].some(isDirty) && !window.confirm('Log out and lose the changes you have not saved?')) return;
    await api('POST', '/admin/logout');
    state.sessionOver = true;
    window.location.href = '/admin/login';
  });
  document.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 's') {
      e.preventDefault();
      save();
    }
  });
  window.addEventListener('beforeunload', (e) => {
    if (!state.sessionOver && [...state.files.values()].some(isDirty)) {
      e.preventDefault();
      e.returnValue = '';
    }
  });

  // --- events whose mapping failed -------------------------------------

  // refreshFailed shows how many stored events failed their mapping; once
  // the mapping is fixed, one click maps them again.
  async function refreshFailed() {
    const { status, data } = await api('GET', '/admin/api/stats');
    const n = status === 200 ? data.mappingFailed : 0;
    $('failed').textContent = count(n, 'event') + ' failed mapping';
    $('failed').hidden = $('remap').hidden = !n;
  }

  $('remap').addEventListener('click', async () => {
    $('remap').disabled = true;
    const { status, data } = await api('POST', '/admin/api/events/remap');
    $('remap').disabled = false;
    if (status !== 200) {
      banner(data.error || `Remapping failed (${status}).`, true);
      return;
    }
    banner(`Remapped ${count(data.remapped, 'event')} into ${data.activities} ${data.activities === 1 ? 'activity' : 'activities'}` +
      (data.stillFailing ? `; ${count(data.stillFailing, 'event')} still fail: see ctibridge events ls --failed.` : '.'),
      data.stillFailing > 0);
    refreshFailed();
  });

  async function load() {
    const { status, data } = await api('GET', '/admin/api/mappings');
    if (status !== 200) {
      if (status !== 401) banner(data.error || `Could not list the mapping files (${status}).`, true);
      return;
    }
    state.editable = data.editable;
    for (const f of data.files) {
      state.files.set(f.name, { name: f.name, content: f.content, saved: f.content, base: f.sum, isNew: false,
        readOnly: f.readOnly || '', problems: [], checked: null });
    }
    for (const p of data.platforms || []) $('platform').append(h('option', { value: p }, p));
    if (!data.editable) {
      banner(data.message, false);
      $('new-file').hidden = true;
      $('save').hidden = true;
    }
    renderStatus(data.status);
    renderFiles();
    const first = data.files[0];
    if (first) openFile(first.name);
    else setSaveMsg(`There are no mapping files in ${data.dir} yet: add one with “+ New file”.`, '');
    await Promise.all([loadEvents(), refreshFailed()]);
    document.body.dataset.ready = '1';
  }
  load();
})();
