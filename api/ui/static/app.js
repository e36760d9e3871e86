// artmesh web view: one page, a hash router, and calls to the node's /v1
// API with the signed-in agent's key in an Authorization header. The key
// lives in this tab's sessionStorage only and never goes into a URL. Every
// node value is put into the page as text (textContent), never as HTML.
'use strict';

(function () {
  const KEY = 'artmesh.api_key';
  const main = document.getElementById('main');
  const notice = document.getElementById('notice');
  let pollTimer = null; // the pins page refreshes itself while it is shown
  let routeSeq = 0;     // a render that a newer route overtook stops drawing
  const ACTIVITY_MAX = 300; // events kept for the activity page, newest first
  const REFRESH_GAP = 300;  // ms: at most one live refresh of a page this often

  // ---------- small helpers ----------

  // el builds an element: attrs are properties or attributes, children are
  // nodes or strings (always as text).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k in e && typeof v !== 'string') e[k] = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function bytes(n) {
    if (n === undefined || n === null) return '';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0, v = n;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(1)) + ' ' + u[i];
  }

  function when(t) {
    if (!t) return '';
    const d = new Date(t);
    return isNaN(d) ? t : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  function short(s, n) {
    n = n || 16;
    return s && s.length > n ? s.slice(0, n) + '…' : (s || '');
  }

  // shortPeer shortens a peer id as the CLI does: its last 8 characters,
  // where ids of one key type differ (they all begin 12D3KooW).
  function shortPeer(id) {
    return id && id.length > 12 ? '…' + id.slice(-8) : (id || '');
  }

  // peer shows a peer id shortened, with the whole id as its title.
  function peer(id) {
    return el('span', { class: 'mono peer', title: id, text: shortPeer(id) });
  }

  // peers shows a list of peer ids so, or "none".
  function peers(ids) {
    if (!ids || !ids.length) return 'none';
    const out = [];
    ids.forEach((id, i) => { if (i) out.push(' '); out.push(peer(id)); });
    return out;
  }

  function showNotice(msg, info) {
    notice.textContent = msg;
    notice.className = info ? 'info' : '';
    notice.hidden = !msg;
  }

  // sameOrigin turns a URL the node built from its own address into a path
  // on the page's origin, so that the page opened as localhost still talks
  // to the node it came from without crossing origins.
  function sameOrigin(u) {
    const x = new URL(u, location.href);
    return x.pathname + x.search;
  }

  function key() { return sessionStorage.getItem(KEY) || ''; }

  // me is the signed-in agent, as GET /v1/node names it: the owner's
  // actions are shown on its own artifacts only.
  let me = '';

  // APIError is an error answer of the node, in its error shape.
  class APIError extends Error {
    constructor(status, code, message) {
      super(message || ('HTTP ' + status));
      this.status = status;
      this.code = code || '';
    }
  }

  async function errorOf(status, text) {
    try {
      const e = JSON.parse(text).error;
      return new APIError(status, e.code, e.message);
    } catch (_) {
      return new APIError(status, '', 'HTTP ' + status);
    }
  }

  // api calls the node. The key goes in the Authorization header only.
  async function api(method, path, opts) {
    opts = opts || {};
    // Signed out meanwhile (a refresh that outlived its page): nothing is
    // sent, without a key or with the next agent's.
    const k = opts.key || key();
    if (!k) throw new APIError(401, 'unauthenticated', 'signed out');
    const headers = new Headers(opts.headers || {});
    headers.set('Authorization', 'Bearer ' + k);
    let body = opts.body;
    if (opts.json !== undefined) {
      headers.set('Content-Type', 'application/json');
      body = JSON.stringify(opts.json);
    }
    const r = await fetch(path, { method, headers, body, cache: 'no-store', credentials: 'omit', redirect: 'error' });
    if (r.status === 401 && !opts.key) {
      signOut('Your key was refused (' + (await errorOf(r.status, await r.text())).message + '). Sign in again.');
      throw new APIError(401, 'unauthenticated', 'signed out');
    }
    if (!r.ok) throw await errorOf(r.status, await r.text());
    if (r.status === 204) return null;
    return r.json();
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of params) if (v !== '' && v !== undefined && v !== null) q.append(k, v);
    const s = q.toString();
    return s ? '?' + s : '';
  }

  // ---------- sign in ----------

  function signOut(msg) {
    stopFeed();
    sessionStorage.removeItem(KEY);
    document.getElementById('nav').hidden = true;
    document.getElementById('signout').hidden = true;
    document.getElementById('whoami').textContent = '';
    showNotice(msg || '', !msg);
    renderSignIn();
  }

  function renderSignIn() {
    stopPolling();
    routeSeq++; // the page in view is no longer current: its refreshes stop
    const input = el('input', { id: 'signin-key', type: 'password', name: 'api_key', autocomplete: 'off', required: true, placeholder: 'API key' });
    const form = el('form', { id: 'signin-form', class: 'card', onsubmit: async (ev) => {
      ev.preventDefault();
      const k = input.value.trim();
      if (!k) return;
      try {
        const info = await api('GET', '/v1/node', { key: k });
        sessionStorage.setItem(KEY, k);
        showNotice('');
        signedIn(info);
        if (!location.hash || location.hash === '#/' || location.hash === '#/signin') location.hash = '#/artifacts';
        else route();
      } catch (e) {
        showNotice(e.status === 401 ? 'That key was refused: ' + e.message : 'Could not sign in: ' + e.message);
      }
    } },
      el('label', {}, 'API key of an agent', input),
      el('p', { class: 'muted', text: 'The key stays in this tab (session storage) and goes to the node only in an Authorization header.' }),
      el('button', { id: 'signin-submit', type: 'submit', text: 'Sign in' }));
    main.replaceChildren(el('div', { class: 'signin' }, el('h1', { text: 'Sign in to artmesh' }), form));
    input.focus();
  }

  function signedIn(info) {
    document.getElementById('nav').hidden = false;
    document.getElementById('signout').hidden = false;
    const who = document.getElementById('whoami');
    me = info.agent || '';
    who.textContent = (me ? 'agent ' + me + ' · ' : '') + 'node ' + shortPeer(info.peer_id) + ' · ' + (info.version || '');
    who.title = (me ? 'agent ' + me + ' · ' : '') + 'node ' + info.peer_id + ' · ' + (info.version || '');
    // A tab that signs in replays the feed from its start (the catalog
    // keeps its last events), so the activity page shows what happened
    // before too; a reconnection goes on from the last id seen.
    if (!feed.lastId) { feed.lastId = '0'; feed.replaying = true; }
    startFeed();
  }

  // ---------- the change feed ----------

  // The feed is GET /v1/events read with fetch, not EventSource, because
  // EventSource cannot send the key in a header (and the key never goes in
  // a URL). One connection per signed-in tab: it reconnects with backoff
  // after a break, from the last id it saw (position frames included), and
  // stops on sign-out. Events are kept for the activity page and refresh
  // the page in view when they concern it.
  const feed = { ctrl: null, timer: null, lastId: '', retry: 1000, failures: 0, replaying: false };
  const activity = [];         // newest first, at most ACTIVITY_MAX
  const deleted = new Set();   // artifact ids seen deleted: no links to them

  function feedState(on, text) {
    const f = document.getElementById('feed');
    f.hidden = !key();
    f.className = on ? 'on' : 'off';
    f.textContent = on ? '● live' : '○ offline';
    f.title = text;
  }

  function startFeed() {
    if (feed.ctrl || feed.timer || !key()) return;
    const ctrl = new AbortController();
    feed.ctrl = ctrl;
    readFeed(ctrl).catch(() => {}).finally(() => {
      if (feed.ctrl !== ctrl) return; // stopped, or replaced
      feed.ctrl = null;
      if (!key()) return;
      // Exponential backoff from the server's retry hint, at most 30 s,
      // with jitter so that many tabs do not come back at once.
      const wait = Math.min(30000, feed.retry * 2 ** Math.min(feed.failures, 5)) * (0.75 + Math.random() / 2);
      feed.failures++;
      feedState(false, 'The change feed broke off; reconnecting in ' + Math.round(wait / 1000) + ' s.');
      feed.timer = setTimeout(() => { feed.timer = null; startFeed(); }, wait);
    });
  }

  function stopFeed() {
    if (feed.timer) { clearTimeout(feed.timer); feed.timer = null; }
    if (feed.ctrl) { const c = feed.ctrl; feed.ctrl = null; c.abort(); }
    feed.lastId = '';
    feed.replaying = false;
    feed.failures = 0;
    activity.length = 0;
    deleted.clear();
    feedState(false, 'Signed out.');
    document.getElementById('feed').hidden = true;
  }

  // readFeed holds one connection until it ends or is aborted.
  async function readFeed(ctrl) {
    const headers = new Headers({ Authorization: 'Bearer ' + key(), Accept: 'text/event-stream' });
    if (feed.lastId) headers.set('Last-Event-ID', feed.lastId);
    const r = await fetch('/v1/events', { headers, signal: ctrl.signal, cache: 'no-store', credentials: 'omit', redirect: 'error' });
    if (r.status === 401) {
      const e = await errorOf(r.status, await r.text());
      if (feed.ctrl === ctrl) signOut('Your key was refused (' + e.message + '). Sign in again.');
      return;
    }
    if (!r.ok) {
      const e = await errorOf(r.status, await r.text());
      if (r.status === 400) feed.lastId = ''; // a position the node does not take: go on from now
      throw e;
    }
    feedState(true, 'Following the change feed of this node.');
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let ev = { id: null, event: '', data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      feed.failures = 0;
      buf += dec.decode(value, { stream: true });
      const lines = buf.split(/\r\n|\r|\n/);
      buf = lines.pop(); // an unfinished line waits for the next chunk
      for (const line of lines) {
        if (line === '') { dispatch(ev); ev = { id: null, event: '', data: [] }; continue; }
        if (line.startsWith(':')) continue; // a comment: the keep-alive
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let v = i < 0 ? '' : line.slice(i + 1);
        if (v.startsWith(' ')) v = v.slice(1);
        if (field === 'id' && !v.includes('\0')) ev.id = v;
        else if (field === 'event') ev.event = v;
        else if (field === 'data') ev.data.push(v);
        else if (field === 'retry' && /^\d+$/.test(v)) feed.retry = Math.max(500, parseInt(v, 10));
      }
    }
  }

  // dispatch takes one SSE frame: its id moves the position (a frame with
  // an id alone does only that); an event with data goes to onEvent.
  function dispatch(ev) {
    if (ev.id !== null) feed.lastId = ev.id;
    if (!ev.data.length) return;
    let d;
    try { d = JSON.parse(ev.data.join('\n')); } catch (_) { return; }
    if (!d || typeof d !== 'object') return;
    const type = ev.event || d.type || 'message';
    // Replaying from the start, a reset only says that the oldest events
    // are no longer kept: nothing was missed since sign-in.
    const replayed = feed.replaying;
    feed.replaying = false;
    if (type === 'reset' && replayed && d.after === '0') return;
    onEvent(type, d);
  }

  function onEvent(type, d) {
    const e = { id: String(d.id || ''), type, artifact_id: d.artifact_id || '', name: d.name || '', version: d.version || 0,
      actor: d.actor || '', at: d.at || '', message: d.message || '' };
    if (type === 'artifact.deleted' && e.artifact_id) deleted.add(e.artifact_id);
    activity.unshift(e);
    if (activity.length > ACTIVITY_MAX) activity.length = ACTIVITY_MAX;
    const r = parseHash();
    const concerns =
      r.page === 'activity' ||
      ((r.page === 'artifacts' || r.page === 'shared') && (type === 'reset' || type.startsWith('artifact.') || type === 'version.deleted')) ||
      (r.page === 'artifact' && (type === 'reset' || e.artifact_id === r.arg));
    if (concerns) scheduleRefresh();
  }

  // scheduleRefresh refreshes the page in view at most once per
  // REFRESH_GAP, after the events of one burst have all arrived.
  let refreshTimer = null, lastRefresh = 0;
  function scheduleRefresh() {
    if (refreshTimer) return;
    const view = main.firstElementChild;
    const wait = Math.max(50, lastRefresh + REFRESH_GAP - Date.now());
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      lastRefresh = Date.now();
      // A page that the router replaced meanwhile was drawn afresh.
      if (view && view === main.firstElementChild && view.refresh) view.refresh();
    }, wait);
  }

  // ---------- the router ----------

  function parseHash() {
    const h = location.hash.replace(/^#\/?/, '');
    const [p, qs] = h.split('?');
    const parts = p.split('/').filter(Boolean).map(decodeURIComponent);
    return { page: parts[0] || 'artifacts', arg: parts[1] || '', params: new URLSearchParams(qs || '') };
  }

  function stopPolling() {
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  async function route() {
    stopPolling();
    if (!key()) { renderSignIn(); return; }
    const r = parseHash();
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === r.page);
    const seq = ++routeSeq;
    const view = el('div', { id: 'view-' + r.page });
    view.dataset.route = location.hash; // which route this view renders (tests wait on it)
    main.replaceChildren(view);
    const pages = { artifacts: pageList, shared: pageList, artifact: pageArtifact, upload: pageUpload, mesh: pageMesh, pins: pagePins, activity: pageActivity };
    const page = pages[r.page];
    try {
      if (!page) throw new Error('No page "' + r.page + '" here.');
      await page(view, r, () => seq === routeSeq);
      view.dataset.ready = 'true';
    } catch (e) {
      if (e.status === 401) return;
      if (seq !== routeSeq) return;
      view.append(el('p', { class: 'empty', id: 'page-error', text: 'Could not load this page: ' + e.message }));
      view.dataset.ready = 'error';
    }
  }

  // ---------- artifact lists ----------

  // The filters of GET /v1/artifacts and /v1/shared, kept in the hash so a
  // filtered list can be bookmarked (no key in it).
  async function pageList(view, r, current) {
    const shared = r.page === 'shared';
    const p = r.params;
    const limit = parseInt(p.get('limit'), 10) || 50;
    // Pages follow next_cursor (cursor in the hash); from counts the
    // artifacts of the pages before, for the range shown. offset is still
    // read, for older bookmarks.
    const cursor = p.get('cursor') || '';
    const offset = cursor ? 0 : Math.max(0, parseInt(p.get('offset'), 10) || 0);
    const from = Math.max(0, parseInt(p.get('from'), 10) || 0) + offset;
    const metaLines = [];
    for (const [k, v] of p) if (k.startsWith('metadata.')) metaLines.push(k.slice(9) + '=' + v);

    const fName = el('input', { id: 'filter-name', name: 'name', value: p.get('name') || '', placeholder: 'exact name' });
    const fType = el('input', { id: 'filter-type', name: 'content_type', value: p.get('content_type') || '', placeholder: 'e.g. application/json' });
    const fMeta = el('input', { id: 'filter-meta', name: 'metadata', value: metaLines.join(' '), placeholder: 'key=value key2=value2', size: 28 });
    const fLimit = el('select', { id: 'filter-limit', name: 'limit' },
      [10, 50, 100, 500].map((n) => el('option', { value: String(n), selected: n === limit, text: String(n) })));
    const form = el('form', { class: 'filters', id: 'filters', onsubmit: (ev) => {
      ev.preventDefault();
      const ps = [['name', fName.value.trim()], ['content_type', fType.value.trim()]];
      for (const pair of fMeta.value.trim().split(/\s+/).filter(Boolean)) {
        const i = pair.indexOf('=');
        if (i <= 0) { showNotice('A metadata filter is key=value: "' + pair + '" is not.'); return; }
        ps.push(['metadata.' + pair.slice(0, i), pair.slice(i + 1)]);
      }
      ps.push(['limit', fLimit.value]);
      showNotice('');
      location.hash = '#/' + r.page + query(ps);
    } },
      el('label', {}, 'Name', fName), el('label', {}, 'Content type', fType),
      el('label', {}, 'Metadata (key=value, all must match)', fMeta), el('label', {}, 'Per page', fLimit),
      el('button', { type: 'submit', id: 'filter-apply', text: 'Filter' }),
      el('button', { type: 'button', class: 'secondary', text: 'Clear', onclick: () => { location.hash = '#/' + r.page; } }));
    view.append(el('h1', { text: shared ? 'Shared with me' : 'My artifacts' }), form);

    const params = [];
    for (const [k, v] of p) if (k !== 'offset' && k !== 'limit' && k !== 'cursor' && k !== 'from') params.push([k, v]);
    params.push(['limit', String(limit)]);
    if (cursor) params.push(['cursor', cursor]);
    else if (offset) params.push(['offset', String(offset)]);
    const path = (shared ? '/v1/shared' : '/v1/artifacts') + query(params);
    const results = el('div', { id: 'list-results' });
    // fill draws the list from the node; the live refresh calls it again,
    // with the same filters and page, leaving the filter form alone.
    let fillSeq = 0;
    const fill = async () => {
      const mine = ++fillSeq;
      const page = await api('GET', path);
      if (!current() || mine !== fillSeq) return;
      results.replaceChildren(...listResults(r, p, shared, from, page));
    };
    await fill();
    if (!current()) return;
    view.append(results);
    view.refresh = () => fill().catch((e) => { if (e.status !== 401 && current()) showNotice('Could not refresh the list: ' + e.message); });
  }

  function listResults(r, p, shared, from, page) {
    const out = [];
    if (!page.items.length) {
      out.push(el('p', { class: 'empty', id: 'list-empty', text: from ? 'No more artifacts.' : (shared ? 'Nothing is shared with you (with these filters).' : 'No artifacts (with these filters). Upload one.') }));
    } else {
      out.push(el('table', { id: 'artifact-list' },
        el('thead', {}, el('tr', {}, el('th', { text: 'Name' }), shared && el('th', { text: 'Owner' }), el('th', { text: 'ID' }),
          el('th', { class: 'num', text: 'Version' }), el('th', { class: 'num', text: 'Size' }), el('th', { text: 'Type' }),
          el('th', { text: 'Metadata' }), el('th', { id: 'list-order', title: 'Newest first, by creation: the order the node lists them in, across pages', text: 'Created ↓' }))),
        el('tbody', {}, page.items.map((a) => el('tr', { 'data-id': a.id },
          el('td', {}, el('a', { href: '#/artifact/' + encodeURIComponent(a.id), class: 'artifact-link', text: a.name || '(no name)' })),
          shared && el('td', { text: a.owner }),
          el('td', { class: 'mono', text: a.id }),
          el('td', { class: 'num', text: String(a.version) }),
          el('td', { class: 'num', text: bytes(a.size_bytes) }),
          el('td', { text: a.content_type }),
          el('td', { class: 'mono', text: metaSummary(a.metadata) }),
          el('td', { class: 'created' }, el('time', { datetime: a.created_at, title: 'updated ' + when(a.updated_at), text: when(a.created_at) })))))));
    }
    // Older continues after this page's last artifact; Newer goes back to
    // the page that led here (or, on a bookmarked page, to the newest).
    const older = () => {
      const q = new URLSearchParams(p);
      q.delete('offset');
      q.set('cursor', page.next_cursor);
      q.set('from', String(from + page.items.length));
      location.hash = '#/' + r.page + '?' + q;
    };
    const newer = () => {
      if (history.length > 1) { history.back(); return; }
      const q = new URLSearchParams(p);
      for (const k of ['offset', 'cursor', 'from']) q.delete(k);
      location.hash = '#/' + r.page + '?' + q;
    };
    // total comes only with the unfiltered list of one's own artifacts.
    const of = typeof page.total === 'number' ? ' of ' + page.total : '';
    out.push(el('div', { class: 'pager' },
      el('button', { type: 'button', class: 'secondary', disabled: from <= 0, text: '‹ Newer', onclick: newer }),
      el('span', { id: 'list-total', class: 'muted', text: page.items.length ? (from + 1) + '–' + (from + page.items.length) + of : '0' + of }),
      el('button', { type: 'button', class: 'secondary', disabled: !page.next_cursor, text: 'Older ›', onclick: older })));
    return out;
  }

  function metaSummary(m) {
    if (!m) return '';
    return Object.entries(m).map(([k, v]) => k + '=' + (typeof v === 'string' ? v : JSON.stringify(v))).join(' ');
  }

  // ---------- one artifact ----------

  // download asks for a short-lived signed URL (the key never goes in a
  // URL) and follows it as a download: the node answers with
  // Content-Disposition: attachment, so nothing is rendered from this origin
  // and the bytes go straight to disk, never through the page's memory.
  async function download(a, version) {
    const su = await api('POST', '/v1/artifacts/' + encodeURIComponent(a.id) + '/signed-url', { json: { expires_in: 60, version: version || 0 } });
    const link = el('a', { href: sameOrigin(su.url), download: a.name || a.id, rel: 'noopener noreferrer', hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
  }

  // confirmable is a button for a destructive action that asks again in
  // the page (no dialog): a click shows the question with a button that
  // does it and one that takes the question back. attrs.id names the
  // first button; the second is attrs.id + '-confirm'.
  function confirmable(attrs, label, question, yesLabel, guard, action) {
    const box = el('span', { class: 'confirmable' });
    const ask = el('button', Object.assign({ type: 'button', class: 'secondary danger', text: label }, attrs, {
      onclick: () => {
        box.replaceChildren(el('span', { class: 'confirm-question', text: question + ' ' }),
          el('button', { type: 'button', class: 'danger confirm-yes', id: attrs.id ? attrs.id + '-confirm' : undefined, text: yesLabel, onclick: async (ev) => {
            // Answered: the question goes (a refresh may redraw the box
            // again), and the button comes back if the action failed.
            const act = guard(action)(ev);
            box.replaceChildren(el('span', { class: 'muted', text: 'Working…' }));
            await act;
            if (box.isConnected) box.replaceChildren(ask);
          } }),
          ' ',
          el('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => box.replaceChildren(ask) }));
      },
    }));
    box.append(ask);
    return box;
  }

  // asking reports whether a confirmable in box shows its question.
  function asking(box) {
    return !!box.querySelector('.confirm-question');
  }

  // metadataPatch is the JSON merge patch from metadata before to after:
  // the keys whose value changed, and null for those removed.
  function metadataPatch(before, after) {
    const patch = {};
    for (const [k, v] of Object.entries(after)) {
      if (!(k in before) || JSON.stringify(before[k]) !== JSON.stringify(v)) patch[k] = v;
    }
    for (const k of Object.keys(before)) if (!(k in after)) patch[k] = null;
    return patch;
  }

  // names splits a list of agents or groups typed with commas or spaces.
  function names(s) {
    return s.split(/[\s,]+/).filter(Boolean);
  }

  async function pageArtifact(view, r, current) {
    const id = r.arg;
    const base = '/v1/artifacts/' + encodeURIComponent(id);
    let a = null; // the artifact as last loaded; the buttons use it
    const guard = (fn) => async (ev) => {
      const b = ev && ev.currentTarget;
      if (b) b.disabled = true;
      try { showNotice(''); await fn(); } catch (e) { if (e.status !== 401) showNotice(e.message); } finally { if (b) b.disabled = false; }
    };
    // The owner's actions (share, unshare, metadata, deleting versions and
    // the artifact, the signed URLs) are shown to the owner only: anyone
    // else would be refused them. Ownership does not change.
    const owns = () => !!a && !!me && a.owner === me;

    // The parts that show the node's state, filled by fill (again on a
    // live refresh); the actions and a signed URL shown stay as they are.
    const title = el('h1', { id: 'artifact-name' });
    const propsCard = el('div', { class: 'card' });
    const metaPre = el('pre', { id: 'artifact-metadata', class: 'mono' });
    const versionsBox = el('div', { id: 'versions-box' });
    const accessBox = el('div', { class: 'card', id: 'access' });
    const placementBox = el('div', { id: 'placement' });
    const urlsBox = el('div', { id: 'signed-urls' });
    let fillSeq = 0;
    // gone is set once this page deletes the artifact: nothing asks for it
    // any more (a 404 would be an error in the console), and filling is
    // the refresh in progress, which the deletion waits for.
    let gone = false, filling = Promise.resolve();
    const fillMain = async (mine) => {
      if (gone || !current()) return false;
      const [x, versions] = await Promise.all([api('GET', base), api('GET', base + '/versions')]);
      if (!current() || mine !== fillSeq) return false;
      a = x;
      title.textContent = a.name || '(no name)';
      propsCard.replaceChildren(el('dl', { class: 'props', id: 'artifact-props' }, [
        ['ID', a.id, true], ['Owner', a.owner], ['Content type', a.content_type], ['Size', bytes(a.size_bytes) + ' (' + a.size_bytes + ' bytes)'],
        ['Current version', String(a.version)], ['CID', a.cid, true], ['Created', when(a.created_at)], ['Updated', when(a.updated_at)]]
        .map(([k, v, mono]) => [el('dt', { text: k }), el('dd', { class: mono ? 'mono' : '', text: v })])));
      if (!editing) metaPre.textContent = JSON.stringify(a.metadata || {}, null, 2);
      // The only version left cannot be deleted (409): delete the artifact.
      const canDelete = owns() && versions.items.length > 1;
      // A question asked (delete this version?) is not taken away by a
      // live refresh; the answer redraws the table.
      if (asking(versionsBox)) return true;
      versionsBox.replaceChildren(el('table', { id: 'versions' },
        el('thead', {}, el('tr', {}, ['Version', 'Size', 'Type', 'CID', 'Created', 'By', 'Metadata', ''].map((t) => el('th', { text: t })))),
        el('tbody', {}, versions.items.slice().reverse().map((v) => el('tr', { 'data-version': String(v.version) },
          el('td', { class: 'num', text: String(v.version) }), el('td', { class: 'num', text: bytes(v.size_bytes) }),
          el('td', { text: v.content_type }), el('td', { class: 'mono', title: v.cid, text: short(v.cid, 20) }),
          el('td', { text: when(v.created_at) }), el('td', { text: v.created_by }),
          el('td', { class: 'mono', text: metaSummary(v.metadata) }),
          el('td', { class: 'row-actions' },
            el('button', { type: 'button', class: 'secondary', text: 'Download', onclick: guard(() => download(a, v.version)) }),
            canDelete && ' ',
            canDelete && confirmable({ class: 'secondary danger delete-version', 'data-version': String(v.version) }, 'Delete',
              'Delete version ' + v.version + ' for good?', 'Delete version ' + v.version, guard, async () => {
                await api('DELETE', base + '/versions/' + v.version);
                showNotice('Deleted version ' + v.version + '.', true);
                await refreshNow();
              })))))));
      return true;
    };
    // Access is the owner's to see (a grantee would get a 403): it is
    // asked for only on the owner's own artifacts, with the signed URLs.
    const fillSide = async (mine) => {
      if (gone || !current() || mine !== fillSeq) return;
      const [acc, pl, urls] = await Promise.allSettled([
        owns() ? api('GET', base + '/access') : Promise.resolve(null),
        api('GET', base + '/placement'),
        owns() ? api('GET', base + '/signed-urls') : Promise.resolve(null)]);
      if (!current() || mine !== fillSeq) return;
      if (acc.status === 'fulfilled' && acc.value) {
        const x = acc.value;
        const grant = (kind, name) => el('span', { class: 'grant', ['data-' + kind]: name }, name, ' ',
          el('button', { type: 'button', class: 'secondary small unshare', title: 'Unshare with ' + kind + ' ' + name, text: '×',
            onclick: guard(async () => {
              await api('POST', base + '/unshare', { json: kind === 'agent' ? { agents: [name], groups: [] } : { agents: [], groups: [name] } });
              showNotice('No longer shared with ' + kind + ' ' + name + '.', true);
              await refreshNow();
            }) }));
        const list = (kind, xs) => (xs || []).length ? xs.flatMap((n, i) => [i ? ' ' : '', grant(kind, n)]) : 'none';
        accessBox.replaceChildren(el('dl', { class: 'props' },
          el('dt', { text: 'Owner' }), el('dd', { id: 'access-owner', text: x.owner }),
          el('dt', { text: 'Agents' }), el('dd', { id: 'access-agents' }, list('agent', x.agents)),
          el('dt', { text: 'Groups' }), el('dd', { id: 'access-groups' }, list('group', x.groups))));
        if (shareForm) accessBox.append(shareForm);
      } else if (acc.status === 'fulfilled') {
        accessBox.replaceChildren(el('p', { class: 'muted', id: 'access-owner-only', text: 'Only the owner sees who has access.' }));
      } else {
        accessBox.replaceChildren(el('p', { class: 'muted', text: 'Could not load access: ' + acc.reason.message }));
      }
      if (pl.status === 'fulfilled') {
        placementBox.replaceChildren(el('table', {},
          el('thead', {}, el('tr', {}, ['Version', 'Factor', 'State', 'Holders', 'Allocated', 'Fetching now'].map((t) => el('th', { text: t })))),
          el('tbody', {}, pl.value.items.slice().reverse().map((p) => el('tr', {},
            el('td', { class: 'num', text: String(p.version) }), el('td', { class: 'num', text: String(p.factor) }),
            el('td', { class: 'state-' + p.state, text: p.state }),
            el('td', { class: 'peers' }, peers(p.holders)),
            el('td', { class: 'peers' }, peers(p.allocated)),
            el('td', { class: 'peers' }, peers(p.fetching)))))));
      } else {
        placementBox.replaceChildren(el('p', { class: 'muted', text: 'Could not load placement: ' + pl.reason.message }));
      }
      if (asking(urlsBox)) {
        // as for the versions: the revocation asked about redraws it
      } else if (urls.status === 'fulfilled' && urls.value) {
        const items = urls.value.items;
        urlsBox.replaceChildren(!items.length ? el('p', { class: 'empty', id: 'signed-urls-empty', text: 'No live signed URLs.' })
          : el('table', { id: 'signed-url-list' },
            el('thead', {}, el('tr', {}, ['Token', 'Version', 'Issued by', 'Expires', ''].map((t) => el('th', { text: t })))),
            el('tbody', {}, items.map((u) => el('tr', { 'data-token': u.token_id },
              el('td', { class: 'mono', text: u.token_id }),
              el('td', { class: 'num', text: u.version ? String(u.version) : 'current' }),
              el('td', { text: u.agent }),
              el('td', { text: when(u.expires_at) }),
              el('td', {}, confirmable({ class: 'secondary danger revoke-token' }, 'Revoke',
                'Revoke this URL? Whoever holds it can no longer download.', 'Revoke', guard, async () => {
                  await api('DELETE', '/v1/tokens/' + encodeURIComponent(u.token_id));
                  showNotice('Revoked ' + u.token_id + '.', true);
                  await refreshNow();
                })))))));
      } else if (urls.status === 'rejected') {
        urlsBox.replaceChildren(el('p', { class: 'muted', text: 'Could not load the signed URLs: ' + urls.reason.message }));
      }
    };

    // The metadata editor: the metadata as JSON, saved as a merge patch
    // (PATCH, a new version with the same content).
    let editing = false;
    const metaCard = el('div', { class: 'card', id: 'metadata-card' }, metaPre);
    const editMeta = () => {
      editing = true;
      const area = el('textarea', { id: 'metadata-editor', rows: 8 });
      area.value = JSON.stringify(a.metadata || {}, null, 2);
      const close = () => { editing = false; metaCard.replaceChildren(metaPre, metaActions()); metaPre.textContent = JSON.stringify(a.metadata || {}, null, 2); };
      metaCard.replaceChildren(el('label', {}, 'Metadata (a JSON object; a key you remove is removed)', area),
        el('div', { class: 'actions' },
          el('button', { type: 'button', id: 'metadata-save', text: 'Save as a new version', onclick: guard(async () => {
            let next;
            try { next = JSON.parse(area.value); } catch (e) { throw new Error('Metadata is not JSON: ' + e.message); }
            if (typeof next !== 'object' || next === null || Array.isArray(next)) throw new Error('Metadata must be a JSON object.');
            const patch = metadataPatch(a.metadata || {}, next);
            if (!Object.keys(patch).length) { close(); showNotice('The metadata did not change.', true); return; }
            const x = await api('PATCH', base, { json: { metadata: patch }, headers: { 'If-Match': '"' + a.cid + '"' } });
            a = x;
            close();
            showNotice('Saved the metadata as version ' + x.version + '.', true);
            await refreshNow();
          }) }),
          el('button', { type: 'button', class: 'secondary', id: 'metadata-cancel', text: 'Cancel', onclick: close })));
      area.focus();
    };
    const metaActions = () => owns() ? el('div', { class: 'actions' }, el('button', { type: 'button', class: 'secondary', id: 'metadata-edit', text: 'Edit metadata', onclick: editMeta })) : '';

    // Sharing, for the owner: agents and groups, by name.
    let shareForm = null;
    const shareWith = el('input', { id: 'share-agents', placeholder: 'agents: bob, carol' });
    const shareGroups = el('input', { id: 'share-groups', placeholder: 'groups: team' });

    if (!(await fillMain(++fillSeq))) return;
    if (owns()) {
      shareForm = el('form', { id: 'share-form', class: 'inline-form', onsubmit: (ev) => ev.preventDefault() },
        el('label', {}, 'Share with agents', shareWith), el('label', {}, 'and groups', shareGroups),
        el('button', { type: 'button', id: 'share-submit', text: 'Share', onclick: guard(async () => {
          const agents = names(shareWith.value), groups = names(shareGroups.value);
          if (!agents.length && !groups.length) throw new Error('Name an agent or a group to share with.');
          await api('POST', base + '/share', { json: { agents, groups } });
          shareWith.value = ''; shareGroups.value = '';
          showNotice('Shared with ' + agents.concat(groups.map((g) => 'group ' + g)).join(', ') + '.', true);
          await refreshNow();
        }) }));
    }
    const suBox = el('div', { class: 'signed-url', id: 'signed-url' });
    const expiry = el('select', { id: 'signed-url-expiry' },
      [['900', '15 minutes'], ['3600', '1 hour'], ['86400', '1 day'], ['604800', '7 days']].map(([v, t]) => el('option', { value: v, selected: v === '3600', text: t })));
    view.append(title, propsCard, el('div', { class: 'actions' },
      el('button', { id: 'download', type: 'button', text: 'Download', onclick: guard(() => download(a, 0)) }),
      el('button', { id: 'make-signed-url', type: 'button', class: 'secondary', text: 'Signed URL', onclick: guard(async () => {
        const su = await api('POST', base + '/signed-url', { json: { expires_in: parseInt(expiry.value, 10) } });
        const field = el('input', { id: 'signed-url-value', readOnly: true, value: su.url });
        suBox.replaceChildren(el('label', {}, 'Anyone with this URL can download the current version until ' + when(su.expires_at) + ':', field),
          el('div', { class: 'actions' },
            el('button', { type: 'button', class: 'secondary', text: 'Copy', onclick: guard(async () => { await navigator.clipboard.writeText(su.url); showNotice('Copied.', true); }) }),
            el('button', { type: 'button', class: 'secondary', id: 'revoke-signed-url', text: 'Revoke', onclick: guard(async () => {
              await api('DELETE', '/v1/tokens/' + encodeURIComponent(su.token_id));
              suBox.replaceChildren(el('p', { class: 'muted', text: 'Revoked: that URL no longer works.' }));
              if (owns()) await refreshNow();
            }) })));
        field.select();
        if (owns()) await refreshNow();
      }) }),
      el('label', {}, 'valid for', expiry),
      owns() && el('a', { href: '#/upload?artifact_id=' + encodeURIComponent(id), text: 'Upload a new version' })), suBox);
    metaCard.append(metaActions());
    view.append(el('h2', { text: 'Metadata' }), metaCard);
    view.append(el('h2', { text: 'Versions' }), versionsBox);
    view.append(el('h2', { text: 'Access' }), accessBox);
    if (owns()) view.append(el('h2', { text: 'Signed URLs' }), urlsBox);
    view.append(el('h2', { text: 'Placement' }), placementBox);
    if (owns()) {
      view.append(el('h2', { text: 'Delete' }), el('div', { class: 'card', id: 'danger-zone' },
        el('p', { class: 'muted', text: 'Deleting the artifact removes every version, every grant and every signed URL of it. It cannot be undone.' }),
        confirmable({ id: 'delete-artifact' }, 'Delete artifact', 'Delete ' + (a.name || a.id) + ' and all its versions for good?', 'Delete it', guard, async () => {
          gone = true;
          await filling;
          try {
            await api('DELETE', base);
          } catch (e) {
            gone = false;
            throw e;
          }
          view.refresh = null;
          showNotice('Deleted ' + (a.name || a.id) + '.', true);
          location.hash = '#/artifacts';
        })));
    }
    await fillSide(fillSeq);
    if (!current()) return;
    // The live refresh: an event about this artifact loads it again; once
    // it is deleted the page says so.
    const refresh = async () => {
      const mine = ++fillSeq;
      try {
        if (await fillMain(mine)) await fillSide(mine);
      } catch (e) {
        if (e.status === 401 || !current() || mine !== fillSeq) return;
        if (e.status === 404) {
          view.replaceChildren(title, el('p', { class: 'empty', id: 'page-error', text: 'This artifact no longer exists: it was deleted.' }));
          view.refresh = null;
        } else {
          showNotice('Could not refresh this artifact: ' + e.message);
        }
      }
    };
    view.refresh = () => {
      const p = refresh();
      filling = p;
      return p;
    };
    // refreshNow redraws the page after one of its own actions, without
    // waiting for the change feed.
    async function refreshNow() {
      if (view.refresh) await view.refresh();
    }
  }

  // ---------- activity ----------

  // pageActivity lists the feed's events, newest first: those the node
  // replayed from the start of its feed when this tab signed in (the
  // catalog keeps its last events), then each new one as it comes (the
  // last ACTIVITY_MAX in all); each event redraws it.
  async function pageActivity(view) {
    const box = el('div', { id: 'activity-box' });
    const fill = () => {
      if (!activity.length) {
        box.replaceChildren(el('p', { class: 'empty', id: 'activity-empty', text: 'No activity yet on the artifacts you may read.' }));
        return;
      }
      box.replaceChildren(el('table', { id: 'activity' },
        el('thead', {}, el('tr', {}, ['Time', 'Event', 'Artifact', 'Version', 'By'].map((t) => el('th', { text: t })))),
        el('tbody', {}, activity.map((e) => el('tr', { 'data-type': e.type, 'data-id': e.id },
          el('td', { text: when(e.at) }),
          el('td', { class: 'event-type', text: e.type }),
          el('td', {}, e.type === 'reset' ? el('span', { class: 'muted', text: e.message })
            : !e.artifact_id || deleted.has(e.artifact_id) ? el('span', { class: 'artifact-name', text: e.name || e.artifact_id })
              : el('a', { class: 'artifact-name', href: '#/artifact/' + encodeURIComponent(e.artifact_id), text: e.name || e.artifact_id })),
          el('td', { class: 'num', text: e.version ? String(e.version) : '' }),
          el('td', { text: e.actor }))))));
    };
    view.append(el('h1', { text: 'Activity' }),
      el('p', { class: 'muted', text: 'Recent changes to the artifacts you may read, newest first: the node\'s recent history, then each change as it happens (the last ' + ACTIVITY_MAX + ').' }), box);
    fill();
    view.refresh = fill;
  }

  // ---------- upload ----------

  // uploads in flight in this tab, shown on the pins & transfers page.
  const transfers = new Map();

  // put sends a file to an upload URL with XMLHttpRequest, whose
  // upload.onprogress drives the bar; the browser streams the file from
  // disk.
  function put(url, f, onProgress) {
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open('PUT', url);
      x.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
      x.onload = () => (x.status >= 200 && x.status < 300 ? resolve() : errorOf(x.status, x.responseText).then(reject));
      x.onerror = () => reject(new Error('the upload broke off'));
      x.onabort = () => reject(new Error('the upload was cancelled'));
      x.send(f);
    });
  }

  async function pageUpload(view, r) {
    const target = r.params.get('artifact_id') || '';
    const file = el('input', { id: 'upload-file', type: 'file', required: true });
    const name = el('input', { id: 'upload-name', placeholder: 'the file name' });
    const ctype = el('input', { id: 'upload-type', placeholder: 'from the file' });
    const meta = el('textarea', { id: 'upload-meta', placeholder: '{"key": "value"}' });
    const bar = el('progress', { id: 'upload-progress', max: 1, value: 0 });
    const status = el('p', { id: 'upload-status', class: 'muted', text: 'Choose a file.' });
    file.addEventListener('change', () => {
      const f = file.files[0];
      if (f && !name.value) name.value = f.name;
      if (f) status.textContent = f.name + ': ' + bytes(f.size);
    });
    const submit = el('button', { id: 'upload-submit', type: 'submit', text: target ? 'Upload new version' : 'Upload' });
    const form = el('form', { class: 'card', id: 'upload-form', onsubmit: async (ev) => {
      ev.preventDefault();
      const f = file.files[0];
      if (!f) { showNotice('Choose a file first.'); return; }
      let metadata;
      if (meta.value.trim()) {
        try { metadata = JSON.parse(meta.value); } catch (e) { showNotice('Metadata is not JSON: ' + e.message); return; }
        if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) { showNotice('Metadata must be a JSON object.'); return; }
      }
      showNotice('');
      submit.disabled = true;
      const t = { name: name.value || f.name, loaded: 0, total: f.size };
      try {
        const up = await api('POST', '/v1/uploads', { json: {
          name: name.value.trim() || f.name, content_type: ctype.value.trim() || f.type || 'application/octet-stream',
          size_bytes: f.size, metadata, artifact_id: target || undefined } });
        transfers.set(up.id, t);
        status.textContent = 'Sending ' + bytes(f.size) + '…';
        await put(sameOrigin(up.url), f, (loaded, total) => {
          bar.max = total; bar.value = loaded; t.loaded = loaded;
          status.textContent = 'Sent ' + bytes(loaded) + ' of ' + bytes(total);
        });
        bar.max = f.size || 1; bar.value = f.size || 1;
        status.textContent = 'Received; confirming…';
        const a = await api('POST', '/v1/uploads/' + encodeURIComponent(up.id) + '/confirm', { json: {} });
        transfers.delete(up.id);
        status.replaceChildren('Stored ' + bytes(a.size_bytes) + ' as ', el('a', { id: 'upload-result', href: '#/artifact/' + encodeURIComponent(a.id), text: (a.name || a.id) + ', version ' + a.version }), '.');
        form.reset();
        bar.max = f.size || 1; bar.value = f.size || 1;
      } catch (e) {
        for (const [id, x] of transfers) if (x === t) transfers.delete(id);
        status.textContent = 'Failed.';
        if (e.status !== 401) showNotice('Upload failed: ' + e.message);
      } finally {
        submit.disabled = false;
      }
    } },
      el('label', {}, 'File', file), el('label', {}, 'Name', name), el('label', {}, 'Content type', ctype),
      el('label', {}, 'Metadata (a JSON object)', meta), bar, status, submit);
    view.append(el('h1', { text: target ? 'Upload a new version of ' + target : 'Upload' }),
      el('p', { class: 'muted', text: 'The file goes to an upload URL of the node, streamed from disk, then is confirmed into an artifact.' }), form);
  }

  // ---------- mesh ----------

  // limitText formats a quota limit: -1 is unlimited.
  function limitText(n, size) {
    if (n === undefined || n === null || n < 0) return 'unlimited';
    return size ? bytes(n) : String(n);
  }

  // quotaCard shows the signed-in agent's usage against its limits
  // (GET /v1/agents/{id}/quota).
  function quotaCard(q) {
    const u = q.usage || {}, l = q.limits || {};
    const row = (what, used, limit, size) => el('tr', {},
      el('td', { text: what }), el('td', { class: 'num', text: size ? bytes(used || 0) : String(used || 0) }),
      el('td', { class: 'num', text: limitText(limit, size) }));
    return el('div', { id: 'quota' },
      el('h2', { text: 'Your usage' + (q.admin ? ' (admin)' : '') }),
      el('table', {},
        el('thead', {}, el('tr', {}, ['', 'Used', 'Limit'].map((t) => el('th', { text: t })))),
        el('tbody', {},
          row('Bytes (stored and staged)', (u.bytes || 0) + (u.staged || 0), l.bytes, true),
          row('Staged in open uploads', u.staged, l.staged, true),
          row('Open uploads', u.uploads, l.uploads, false),
          row('Event streams on this node', u.streams, l.streams, false))));
  }

  async function pageMesh(view, r, current) {
    const [info, ms] = await Promise.all([api('GET', '/v1/node'), api('GET', '/v1/mesh/members')]);
    const q = info.agent ? await api('GET', '/v1/agents/' + encodeURIComponent(info.agent) + '/quota') : null;
    if (!current()) return;
    view.append(el('h1', { text: 'Mesh members' }),
      el('p', { class: 'muted' }, 'This node: ', el('span', { class: 'mono', text: info.peer_id }), ' · API ' + info.api_url),
      el('table', { id: 'members' },
        el('thead', {}, el('tr', {}, ['Peer', 'Role', 'Leader', 'Reachable', 'Bytes held', 'Under-replicated', 'API'].map((t) => el('th', { text: t })))),
        el('tbody', {}, ms.items.map((m) => el('tr', { 'data-peer': m.peer_id },
          el('td', {}, peer(m.peer_id), m.peer_id === info.peer_id ? ' (this node)' : ''),
          el('td', { text: m.role }), el('td', { text: m.leader ? 'leader' : '' }),
          el('td', { class: m.reachable ? 'yes' : 'no', text: m.reachable ? 'yes' : 'no' }),
          el('td', { class: 'num', text: bytes(m.bytes_held || 0) }),
          el('td', { class: 'num', text: String(m.under_replicated || 0) }),
          el('td', { class: 'mono', text: m.api_url || '' }))))));
    if (q) view.append(quotaCard(q));
  }

  // ---------- pins and transfers ----------

  async function pagePins(view, r, current) {
    const ps = await api('GET', '/v1/pins');
    if (!current()) return;
    view.replaceChildren(el('h1', { text: 'Pins and transfers on this node' }));
    if (!ps.items.length) {
      view.append(el('p', { class: 'empty', id: 'pins-empty', text: 'No pins on this node. Pin a version with `artmesh pin` or PUT /v1/pins/{id}.' }));
    } else {
      view.append(el('table', { id: 'pins' },
        el('thead', {}, el('tr', {}, ['Artifact', 'Version', 'State', 'Progress', 'CID', 'Error'].map((t) => el('th', { text: t })))),
        el('tbody', {}, ps.items.map((p) => el('tr', {},
          el('td', {}, el('a', { href: '#/artifact/' + encodeURIComponent(p.artifact_id), class: 'mono', text: p.artifact_id })),
          el('td', { class: 'num', text: String(p.version) }),
          el('td', { class: 'state-' + p.state, text: p.state }),
          el('td', {}, el('progress', { max: p.size_bytes || 1, value: p.state === 'pinned' ? (p.size_bytes || 1) : (p.bytes_done || 0) }),
            el('span', { class: 'muted', text: bytes(p.bytes_done || 0) + ' of ' + bytes(p.size_bytes || 0) })),
          el('td', { class: 'mono', title: p.cid, text: short(p.cid, 20) }),
          el('td', { class: 'no', text: p.error || '' }))))));
    }
    view.append(el('h2', { text: 'Uploads from this tab' }));
    if (!transfers.size) view.append(el('p', { class: 'empty', text: 'None in progress.' }));
    else view.append(el('table', {}, el('tbody', {}, [...transfers.entries()].map(([id, t]) => el('tr', {},
      el('td', { class: 'mono', text: id }), el('td', { text: t.name }),
      el('td', {}, el('progress', { max: t.total || 1, value: t.loaded })))))));
    const moving = ps.items.some((p) => p.state === 'queued' || p.state === 'fetching') || transfers.size > 0;
    if (moving) {
      pollTimer = setTimeout(() => {
        if (!current()) return;
        pagePins(view, r, current).catch((e) => { if (e.status !== 401) showNotice(e.message); });
      }, 2000);
    }
  }

  // ---------- start ----------

  document.getElementById('signout').addEventListener('click', () => signOut(''));
  window.addEventListener('hashchange', route);
  window.addEventListener('DOMContentLoaded', async () => {
    if (!key()) { renderSignIn(); return; }
    try {
      signedIn(await api('GET', '/v1/node'));
      route();
    } catch (e) {
      if (e.status !== 401) showNotice('The node did not answer: ' + e.message);
    }
  });
})();
