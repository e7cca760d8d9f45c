// The operator dashboard: live lists, per-stream plots, server figures, hub events, actions.
// Fed by /dashboard/ws (see vidhub/server/web/dashboard.py); actions POST /dashboard/api/*.
import { plot } from './lib/plot.js';

const HISTORY = 300;
const $ = (id) => document.getElementById(id);
const state = {
  series: new Map(), // leg id -> [[t, kbps, loss, rtt, fps], ...]
  server: [], // [[t, cpu, rssMiB, sockets], ...]
  events: [], // newest last
  latest: null,
  ws: null,
  opened: false,
  failures: 0,
};
// for tests and diagnostics
window.dashboard = state;

const COLORS = { bitrate: '#3d8bfd', loss: '#e5484d', rtt: '#f5a524', fps: '#46a758', cpu: '#3d8bfd', mem: '#a66bff', sockets: '#46a758' };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function toast(text, kind = 'info') {
  const t = $('toast');
  t.hidden = false;
  t.className = `toast ${kind}`;
  t.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  t.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), 5000);
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

// ---------------------------------------------------------------- feed

function connect() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/dashboard/ws`);
  state.ws = ws;
  ws.onopen = () => {
    state.opened = true;
    state.failures = 0;
    $('live').textContent = 'live';
    $('live').className = 'live on';
  };
  ws.onmessage = (m) => handle(JSON.parse(m.data));
  ws.onclose = () => {
    $('live').textContent = 'reconnecting…';
    $('live').className = 'live off';
    state.failures += 1;
    // twice refused in a row: the session has probably expired, so show the sign-in form
    if (state.failures >= 2 && !state.opened) location.reload();
    state.opened = false;
    setTimeout(connect, 1500);
  };
}

function handle(msg) {
  if (msg.type === 'hello') {
    state.series = new Map(Object.entries(msg.streams));
    state.server = msg.server;
    $('filter').value = msg.filter;
  } else if (msg.type === 'tick') {
    state.latest = msg;
    if (msg.points.server) push(state.server, msg.points.server);
    for (const [leg, p] of Object.entries(msg.points.streams)) {
      if (!state.series.has(leg)) state.series.set(leg, []);
      push(state.series.get(leg), p);
    }
    const live = new Set(msg.legs.map((l) => l.id));
    for (const leg of state.series.keys()) if (!live.has(leg)) state.series.delete(leg);
    render(msg);
  } else if (msg.type === 'event') {
    addEvent(msg.event);
  } else if (msg.type === 'filter') {
    $('filter-status').textContent = msg.ok ? `Showing events where ${msg.expression}` : `Not a valid filter: ${msg.message}`;
    $('filter-status').className = msg.ok ? 'hint' : 'hint bad';
    $('filter').setAttribute('aria-invalid', String(!msg.ok));
  }
}

function push(list, point) {
  list.push(point);
  if (list.length > HISTORY) list.splice(0, list.length - HISTORY);
}

// ---------------------------------------------------------------- rendering

function render(msg) {
  const s = msg.server;
  $('fig-cpu').textContent = s.cpuPct === null ? '–' : `${s.cpuPct.toFixed(1)} %`;
  $('fig-mem').textContent = `${Math.round(s.rssMiB)} MiB`;
  $('fig-sockets').textContent = String(Object.values(s.sockets).reduce((a, b) => a + b, 0));
  $('fig-sessions').textContent = String(msg.sessions.length);
  renderSessions(msg.sessions);
  renderStreams(msg);
  renderServer(s);
}

function names(sessions) {
  const out = new Map();
  for (const s of sessions) for (const c of s.connections) out.set(c.id, c.name || c.id);
  return out;
}

async function act(name, body, done) {
  let res;
  try {
    res = await fetch(`/dashboard/api/${name}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (e) {
    toast('The server cannot be reached.', 'error');
    return;
  }
  if (res.status === 401) {
    location.reload();
    return;
  }
  if (res.ok) {
    toast(done);
    return;
  }
  let message = `error ${res.status}`;
  try {
    message = (await res.json()).message || message;
  } catch (_) {
    /* empty body */
  }
  toast(`${done.replace(/\.$/, '')} failed: ${message}`, 'error');
}

function sessionCard(s) {
  const form = el('form', { class: 'signal' });
  const typeId = `sig-type-${s.id}`;
  const dataId = `sig-data-${s.id}`;
  form.append(
    el('label', { for: typeId, text: 'Type' }),
    el('input', { id: typeId, name: 'type', value: 'signal:operator', spellcheck: 'false' }),
    el('label', { for: dataId, text: 'Message' }),
    el('input', { id: dataId, name: 'data', placeholder: 'text sent to everyone' }),
    el('button', { type: 'submit', text: 'Send to all' }),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act('signal', { session: s.id, type: form.elements.type.value, data: form.elements.data.value }, `Signal sent to ${s.id}.`);
  });
  const card = el(
    'article',
    { class: 'session-card', 'data-session-id': s.id, 'aria-label': `Session ${s.id}` },
    el(
      'header',
      {},
      el('h3', {}, el('code', { text: s.id })),
      el('span', { class: 'meta' }),
      el('button', {
        type: 'button',
        class: 'danger small',
        'aria-label': `Close session ${s.id}`,
        text: 'Close session',
        onclick: () => act('close', { session: s.id }, `Session ${s.id} closed.`),
      }),
    ),
    el(
      'table',
      { class: 'people' },
      el('caption', { class: 'sr', text: `Participants of ${s.id}` }),
      el('thead', {}, el('tr', {}, ...['Name', 'Connection', 'Role', 'Media', 'Actions'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody'),
    ),
    el('details', {}, el('summary', { text: 'Send a signal' }), form),
  );
  return card;
}

function mediaText(c, nameOf) {
  const parts = [];
  for (const p of c.publishers) {
    const what = [];
    if (p.hasVideo) what.push(p.videoActive ? (p.typeOfVideo || 'video').toLowerCase() : 'camera off');
    if (p.hasAudio) what.push(p.audioActive ? 'mic' : 'mic muted');
    parts.push(`sends ${what.join(' + ')}`);
  }
  if (c.subscribers.length) {
    const from = c.subscribers.map((sid) => nameOf.get(sid.slice(sid.lastIndexOf('con_'))) || '?');
    parts.push(`receives ${from.join(', ')}`);
  }
  return parts.join('; ') || (c.status === 'pending' ? 'token not used yet' : '–');
}

function personRow(s, c) {
  return el(
    'tr',
    { 'data-connection-id': c.id },
    el('td', { class: 'name' }),
    el('td', {}, el('code', { text: c.id })),
    el('td', { class: 'role' }),
    el('td', { class: 'media' }),
    el('td', { class: 'actions' }),
  );
}

function renderSessions(sessions) {
  const box = $('sessions');
  $('no-sessions').hidden = sessions.length > 0;
  const nameOf = names(sessions);
  const seen = new Set();
  for (const s of sessions) {
    seen.add(s.id);
    let card = box.querySelector(`[data-session-id="${CSS.escape(s.id)}"]`);
    if (!card) {
      card = sessionCard(s);
      box.append(card);
    }
    const active = s.connections.filter((c) => c.status === 'active').length;
    const pending = s.connections.length - active;
    card.querySelector('.meta').textContent = `${active} in call${pending ? `, ${pending} unused token${pending > 1 ? 's' : ''}` : ''} · since ${clock(s.createdAt)}`;
    const body = card.querySelector('tbody');
    const rows = new Set();
    for (const c of s.connections) {
      rows.add(c.id);
      let row = body.querySelector(`[data-connection-id="${CSS.escape(c.id)}"]`);
      if (!row) {
        row = personRow(s, c);
        body.append(row);
      }
      const name = c.name || (c.status === 'pending' ? '(pending)' : '(no name)');
      row.querySelector('.name').textContent = name;
      row.querySelector('.role').textContent = c.role.toLowerCase();
      row.querySelector('.media').textContent = mediaText(c, nameOf);
      row.classList.toggle('pending', c.status === 'pending');
      const actions = row.querySelector('.actions');
      const stream = c.publishers[0] ? c.publishers[0].streamId : null;
      const want = `${stream || ''}|${c.status}`;
      if (actions.dataset.key !== want) {
        actions.dataset.key = want;
        const keep = document.activeElement && actions.contains(document.activeElement) ? document.activeElement.dataset.action : null;
        actions.replaceChildren();
        if (stream) {
          actions.append(
            el('button', {
              type: 'button',
              class: 'small',
              'data-action': 'unpublish',
              'aria-label': `Stop ${name}'s stream`,
              text: 'Unpublish',
              onclick: () => act('unpublish', { session: s.id, stream }, `${name}'s stream stopped.`),
            }),
          );
        }
        actions.append(
          el('button', {
            type: 'button',
            class: 'small danger',
            'data-action': 'evict',
            'aria-label': c.status === 'pending' ? `Revoke the unused token ${c.id}` : `Evict ${name}`,
            text: c.status === 'pending' ? 'Revoke' : 'Evict',
            onclick: () => act('evict', { session: s.id, connection: c.id }, c.status === 'pending' ? 'Token revoked.' : `${name} evicted.`),
          }),
        );
        if (keep) {
          const again = actions.querySelector(`[data-action="${keep}"]`);
          if (again) again.focus();
        }
      }
    }
    for (const row of [...body.children]) if (!rows.has(row.dataset.connectionId)) row.remove();
  }
  for (const card of [...box.children]) if (!seen.has(card.dataset.sessionId)) card.remove();
}

function streamCard(leg, title) {
  const canvases = ['bitrate', 'loss', 'rtt', 'fps'].map((k) => el('canvas', { class: k, role: 'img', 'aria-label': k }));
  return el(
    'article',
    { class: 'stream-card', 'data-stream-id': leg.stream, 'aria-label': title },
    el('header', {}, el('h3', { class: 'stream-title' }), el('span', { class: 'meta' })),
    el('div', { class: 'plots' }, ...canvases),
    el('p', { class: 'receivers hint' }),
  );
}

function renderStreams(msg) {
  const box = $('streams');
  const nameOf = names(msg.sessions);
  const publisher = new Map();
  for (const s of msg.sessions) for (const c of s.connections) for (const p of c.publishers) publisher.set(p.streamId, { conn: c, pub: p });
  const inLegs = msg.legs.filter((l) => l.direction === 'in');
  $('no-streams').hidden = inLegs.length > 0;
  const seen = new Set();
  for (const leg of inLegs) {
    seen.add(leg.stream);
    const who = publisher.get(leg.stream);
    const name = who ? who.conn.name || who.conn.id : leg.connection;
    const kind = who ? (who.pub.hasVideo ? (who.pub.typeOfVideo || 'video').toLowerCase() : 'audio only') : '';
    const title = `${name} · ${kind}`;
    let card = box.querySelector(`[data-stream-id="${CSS.escape(leg.stream)}"]`);
    if (!card) {
      card = streamCard(leg, title);
      box.append(card);
    }
    card.querySelector('.stream-title').textContent = title;
    card.querySelector('.meta').textContent = `${leg.session} · ${leg.stream}`;
    const series = state.series.get(leg.id) || [];
    const outs = msg.legs.filter((l) => l.direction === 'out' && l.stream === leg.stream);
    // round-trip time of a stream: the mean over its subscribers, per sample
    const rttAt = new Map();
    for (const o of outs) {
      for (const p of state.series.get(o.id) || []) {
        if (p[3] === null || p[3] === undefined) continue;
        const a = rttAt.get(p[0]) || [0, 0];
        rttAt.set(p[0], [a[0] + p[3], a[1] + 1]);
      }
    }
    const cv = (k) => card.querySelector(`canvas.${k}`);
    plot(cv('bitrate'), series.map((p) => [p[0], p[1]]), { label: 'Bitrate', unit: 'kbps', color: COLORS.bitrate, min: 100 });
    plot(cv('loss'), series.map((p) => [p[0], p[2]]), { label: 'Loss', unit: '%', color: COLORS.loss, min: 1 });
    plot(cv('rtt'), series.map((p) => [p[0], rttAt.has(p[0]) ? rttAt.get(p[0])[0] / rttAt.get(p[0])[1] : null]), { label: 'RTT', unit: 'ms', color: COLORS.rtt, min: 10 });
    plot(cv('fps'), series.map((p) => [p[0], p[4]]), { label: 'FPS', unit: '', color: COLORS.fps, min: 10 });
    const to = outs.map((o) => {
      const pts = state.series.get(o.id) || [];
      const last = pts.length ? pts[pts.length - 1][1] : 0;
      return `${nameOf.get(o.connection) || o.connection} ${Math.round(last)} kbps`;
    });
    card.querySelector('.receivers').textContent = to.length ? `Forwarded to ${to.join(', ')}` : 'No subscribers';
  }
  for (const card of [...box.children]) if (!seen.has(card.dataset.streamId)) card.remove();
}

function renderServer(s) {
  plot($('plot-cpu'), state.server.map((p) => [p[0], p[1]]), { label: 'CPU', unit: '%', color: COLORS.cpu, min: 10 });
  plot($('plot-mem'), state.server.map((p) => [p[0], p[2]]), { label: 'Memory', unit: 'MiB', color: COLORS.mem, min: 50 });
  plot($('plot-sockets'), state.server.map((p) => [p[0], p[3]]), { label: 'Sockets', unit: '', color: COLORS.sockets, min: 5 });
  const body = $('counters').tBodies[0];
  const rows = Object.entries(s.metrics).sort(([a], [b]) => a.localeCompare(b));
  body.replaceChildren(...rows.map(([k, v]) => el('tr', {}, el('th', { scope: 'row', text: k }), el('td', { text: String(Math.round(v * 100) / 100) }))));
}

// ---------------------------------------------------------------- events

function addEvent(ev) {
  state.events.push(ev);
  if (state.events.length > 500) state.events.shift();
  const d = ev.data || {};
  const bits = [];
  const shown = new Set();
  for (const k of ['sessionId', 'connectionId', 'participantId', 'streamId', 'reason', 'type']) {
    if (d[k] && !shown.has(d[k])) bits.push(`${k}=${d[k]}`);
    shown.add(d[k]);
  }
  const li = el(
    'li',
    { 'data-topic': String(ev.topic) },
    el('time', { text: clock(d.timestamp || Date.now()) }),
    el('code', { class: 'topic', text: String(ev.topic) }),
    el('span', { class: 'summary', text: bits.join(' ') }),
  );
  li.title = JSON.stringify(d);
  const list = $('events');
  list.prepend(li);
  while (list.children.length > 200) list.lastElementChild.remove();
}

$('filter-form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ type: 'filter', expression: $('filter').value }));
  }
});

window.addEventListener('resize', () => state.latest && render(state.latest));
connect();
