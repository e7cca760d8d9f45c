// The call page: join a room by name, publish camera and microphone, see everyone else.
// Signalling and media go through ./lib/openvidu.js (vidhub's own OpenVidu browser client).
import { Room, RpcError, displayName, tokenFor } from './lib/openvidu.js';

const $ = (id) => document.getElementById(id);
const form = $('join-form');
const callView = $('call');
const tiles = $('tiles');
const notice = $('notice');
const template = $('tile-template');

const state = {
  room: null,
  media: null, // local MediaStream (camera and/or microphone), or null when receive-only
  screen: null, // screen-share track while sharing
  firstRemoteFrameMs: null,
  statsTimer: null,
  lastStats: new Map(), // connectionId -> previous counters for rates
};
// for tests and diagnostics
window.vidhubCall = state;

function say(text, kind = 'info', action = null) {
  notice.hidden = !text;
  notice.className = `notice ${kind}`;
  notice.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  notice.textContent = text || '';
  if (action) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = action.label;
    b.addEventListener('click', action.run);
    notice.append(' ', b);
  }
}

function roomLink(room) {
  const url = new URL(location.href);
  url.search = '';
  url.hash = '';
  url.searchParams.set('room', room);
  return url.toString();
}

function deepLink(room, name) {
  const url = new URL(roomLink(room));
  url.searchParams.set('name', name);
  return url.toString();
}

// ---------------------------------------------------------------- tiles

function tileFor(connectionId) {
  return tiles.querySelector(`[data-connection-id="${CSS.escape(connectionId)}"]`);
}

function addTile(connectionId, name, local = false) {
  let tile = tileFor(connectionId);
  if (!tile) {
    tile = template.content.firstElementChild.cloneNode(true);
    tile.dataset.connectionId = connectionId;
    if (local) {
      tile.classList.add('local');
      tile.querySelector('video').muted = true;
    }
    tiles.append(tile);
    layout();
  }
  const label = local ? `${name} (you)` : name || 'Guest';
  tile.querySelector('.name').textContent = label;
  tile.querySelector('.avatar').textContent = (name || '?').trim().charAt(0).toUpperCase() || '?';
  tile.setAttribute('aria-label', label);
  tile.classList.add('no-video');
  return tile;
}

function removeTile(connectionId) {
  const tile = tileFor(connectionId);
  if (tile) {
    const v = tile.querySelector('video');
    v.srcObject = null;
    tile.remove();
    state.lastStats.delete(connectionId);
    layout();
  }
}

function layout() {
  const n = tiles.children.length;
  tiles.dataset.count = String(Math.min(n, 9));
}

function setMediaFlags(tile, audioActive, videoActive, hasVideo) {
  tile.querySelector('.mic-off').hidden = audioActive !== false;
  tile.querySelector('.cam-off').hidden = videoActive !== false || !hasVideo;
  tile.classList.toggle('no-video', !hasVideo || videoActive === false);
}

function attach(tile, media, { local = false } = {}) {
  const video = tile.querySelector('video');
  video.srcObject = media;
  if (!local) {
    const firstFrame = () => {
      if (state.firstRemoteFrameMs === null) {
        state.firstRemoteFrameMs = performance.now();
        performance.mark('vidhub:first-remote-frame');
      }
      tile.classList.add('playing');
    };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(firstFrame);
    else video.addEventListener('loadeddata', firstFrame, { once: true });
  }
  video.play().catch(() => {
    // autoplay with sound was refused (no click yet): play muted and offer sound
    video.muted = true;
    video.play().catch(() => {});
    say('Sound is off until you allow it.', 'info', {
      label: 'Turn sound on',
      run: () => {
        for (const v of tiles.querySelectorAll('.tile:not(.local) video')) v.muted = false;
        say('');
      },
    });
  });
}

// ---------------------------------------------------------------- media

async function getLocalMedia() {
  const video = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };
  const tries = [
    [{ audio: true, video }, null],
    [{ audio: true }, 'Camera unavailable or not allowed: you joined with audio only.'],
    [{ video }, 'Microphone unavailable or not allowed: you joined with video only.'],
  ];
  let lastError = null;
  for (const [constraints, message] of tries) {
    try {
      const media = await navigator.mediaDevices.getUserMedia(constraints);
      return { media, message };
    } catch (e) {
      lastError = e;
      if (e.name !== 'NotAllowedError' && e.name !== 'NotFoundError' && e.name !== 'NotReadableError' && e.name !== 'OverconstrainedError') break;
    }
  }
  const why = lastError && lastError.name === 'NotAllowedError' ? 'Camera and microphone were not allowed' : 'No camera or microphone could be opened';
  return { media: null, message: `${why}: you joined to watch and listen only.` };
}

// ---------------------------------------------------------------- joining

function explain(err) {
  if (err && err.name === 'UnreachableError') return 'The server cannot be reached. Check that vidhub is running and try again.';
  if (err && err.name === 'NoAppEndpointsError') return 'This server does not hand out tokens to web pages (its application endpoints are off). Ask the operator to start it with --app-endpoints.';
  if (err instanceof RpcError && err.code === 401) return 'The server refused the token: it is not valid or has already been used. Try joining again.';
  if (err instanceof RpcError) return `The server refused to let you join: ${err.message}`;
  return `Could not join: ${err && err.message ? err.message : err}`;
}

async function join(roomName, name) {
  $('join').disabled = true;
  say('Joining…');
  const mediaP = getLocalMedia();
  let room;
  try {
    const token = await tokenFor(roomName);
    performance.mark('vidhub:token');
    room = await Room.join(token, { metadata: JSON.stringify({ clientData: name }) });
    performance.mark('vidhub:joined');
  } catch (e) {
    const { media } = await mediaP;
    if (media) media.getTracks().forEach((t) => t.stop());
    $('join').disabled = false;
    say(explain(e), 'error');
    return;
  }
  state.room = room;
  history.replaceState(null, '', deepLink(roomName, name));
  $('room-title').textContent = `Room ${roomName}`;
  document.title = `${roomName} · vidhub`;
  form.hidden = true;
  callView.hidden = false;
  wire(room);
  for (const p of room.participants.values()) addTile(p.id, p.name);
  for (const p of room.participants.values()) if (p.stream) receive(p.id);

  const { media, message } = await mediaP;
  performance.mark('vidhub:local-media');
  state.media = media;
  const me = addTile(room.connectionId, name, true);
  if (media) {
    attach(me, media, { local: true });
    try {
      await room.publish(media);
    } catch (e) {
      say(`Could not send your camera and microphone: ${e.message}`, 'error');
    }
    setMediaFlags(me, media.getAudioTracks().length ? true : false, true, media.getVideoTracks().length > 0);
  }
  updateButtons();
  say(message || '', message ? 'warning' : 'info');
  state.statsTimer = setInterval(pollStats, 1000);
}

async function receive(connectionId) {
  const room = state.room;
  const part = room.participants.get(connectionId);
  const tile = tileFor(connectionId) || addTile(connectionId, part ? part.name : '');
  try {
    const media = await room.subscribe(connectionId);
    performance.mark('vidhub:subscribed');
    const s = part.stream;
    setMediaFlags(tile, s.hasAudio ? s.audioActive : false, s.videoActive, s.hasVideo);
    attach(tile, media);
  } catch (e) {
    if (room.state === 'joined' && part && part.stream) say(`Could not receive ${part.name}: ${e.message}`, 'error');
  }
}

function wire(room) {
  room.addEventListener('participantjoined', (e) => addTile(e.detail.participant.id, e.detail.participant.name));
  room.addEventListener('participantleft', (e) => removeTile(e.detail.connectionId));
  room.addEventListener('streamadded', (e) => receive(e.detail.participant.id));
  room.addEventListener('streamremoved', (e) => {
    if (e.detail.connectionId === room.connectionId) {
      say('The operator stopped your camera and microphone.', 'warning');
      const me = tileFor(room.connectionId);
      if (me) {
        me.querySelector('video').srcObject = null;
        setMediaFlags(me, false, false, false);
      }
      updateButtons();
      return;
    }
    const tile = tileFor(e.detail.connectionId);
    if (tile) {
      tile.querySelector('video').srcObject = null;
      tile.classList.remove('playing');
      setMediaFlags(tile, true, true, false);
    }
  });
  room.addEventListener('streamchanged', (e) => {
    const tile = tileFor(e.detail.connectionId);
    const part = room.participants.get(e.detail.connectionId);
    if (tile && part && part.stream) setMediaFlags(tile, part.stream.hasAudio ? part.stream.audioActive : false, part.stream.videoActive, part.stream.hasVideo);
  });
  room.addEventListener('reconnecting', () => say('Connection lost: reconnecting…', 'warning'));
  room.addEventListener('reconnected', () => say('Reconnected.', 'info'));
  room.addEventListener('disconnected', (e) => ended(e.detail.reason));
}

const REASONS = {
  disconnect: 'You left the call.',
  forceDisconnectByServer: 'The operator removed you from the call.',
  forceDisconnectByUser: 'A moderator removed you from the call.',
  sessionClosedByServer: 'The operator closed this call.',
  networkDisconnect: 'The connection to the server was lost.',
};

function ended(reason) {
  clearInterval(state.statsTimer);
  if (state.media) state.media.getTracks().forEach((t) => t.stop());
  if (state.screen) state.screen.stop();
  state.media = null;
  state.screen = null;
  state.room = null;
  tiles.replaceChildren();
  callView.hidden = true;
  form.hidden = false;
  $('join').disabled = false;
  $('room-title').textContent = '';
  say(REASONS[reason] || `The call ended (${reason}).`, reason === 'disconnect' ? 'info' : 'warning');
}

// ---------------------------------------------------------------- controls

function updateButtons() {
  const room = state.room;
  const local = room && room.local;
  const hasAudio = !!(local && state.media && state.media.getAudioTracks().length);
  const hasVideo = !!(local && state.media && state.media.getVideoTracks().length);
  const mic = $('mic');
  const cam = $('cam');
  const share = $('share');
  mic.disabled = !hasAudio;
  cam.disabled = !hasVideo;
  share.disabled = !hasVideo || !navigator.mediaDevices.getDisplayMedia;
  const micOn = hasAudio && local.audioActive;
  const camOn = hasVideo && local.videoActive;
  mic.setAttribute('aria-pressed', String(micOn));
  mic.querySelector('.label').textContent = micOn ? 'Mute' : 'Unmute';
  mic.title = micOn ? 'Mute microphone' : 'Unmute microphone';
  cam.setAttribute('aria-pressed', String(camOn));
  cam.querySelector('.label').textContent = camOn ? 'Stop video' : 'Start video';
  cam.title = camOn ? 'Turn camera off' : 'Turn camera on';
  share.setAttribute('aria-pressed', String(!!state.screen));
  share.querySelector('.label').textContent = state.screen ? 'Stop sharing' : 'Share screen';
  const me = room && tileFor(room.connectionId);
  if (me && local) setMediaFlags(me, hasAudio ? local.audioActive : false, local.videoActive, hasVideo);
}

async function toggle(property) {
  const room = state.room;
  if (!room || !room.local) return;
  const change = room.setActive(property, !room.local[property]);
  updateButtons(); // the track is already (un)muted; the server is told in the background
  try {
    await change;
  } catch (e) {
    say(`Could not change that: ${e.message}`, 'error');
  }
  updateButtons();
}

async function toggleShare() {
  const room = state.room;
  if (!room || !room.local) return;
  const camera = state.media && state.media.getVideoTracks()[0];
  if (state.screen) {
    state.screen.stop();
    state.screen = null;
    if (camera) await room.replaceVideo(camera);
    tileFor(room.connectionId).querySelector('video').srcObject = state.media;
    updateButtons();
    return;
  }
  let screen;
  try {
    screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
  } catch (e) {
    say(e.name === 'NotAllowedError' ? 'Screen sharing was not allowed.' : `Screen sharing failed: ${e.message}`, 'warning');
    return;
  }
  const track = screen.getVideoTracks()[0];
  // text on a screen must stay sharp: under load, drop frames rather than resolution
  if ('contentHint' in track) track.contentHint = 'detail';
  state.screen = track;
  track.addEventListener('ended', () => {
    if (state.screen === track) toggleShare();
  });
  await room.replaceVideo(track);
  tileFor(room.connectionId).querySelector('video').srcObject = screen;
  updateButtons();
}

async function copyLink() {
  const room = state.room;
  if (!room) return;
  const link = roomLink(room.sessionId);
  const box = $('share-link');
  const input = $('link');
  input.value = link;
  try {
    await navigator.clipboard.writeText(link);
    say('Link copied: anyone who opens it joins this room.');
  } catch (_) {
    box.hidden = false;
    input.focus();
    input.select();
    say('Copy this link to invite people.');
  }
}

async function leave() {
  if (state.room) await state.room.leave();
}

// ---------------------------------------------------------------- quality and speaking

function level(lossPct, rttMs) {
  if (lossPct > 10 || rttMs > 500) return 1;
  if (lossPct > 2 || rttMs > 200) return 2;
  return 3;
}

const QUALITY = { 1: 'poor', 2: 'fair', 3: 'good' };

function showQuality(tile, q, speaking) {
  const el = tile.querySelector('.quality');
  el.dataset.level = String(q);
  el.setAttribute('aria-label', `Connection quality: ${QUALITY[q] || 'unknown'}`);
  tile.classList.toggle('speaking', speaking);
}

async function statsOf(pc, inbound) {
  let lost = 0, got = 0, rtt = null, audioLevel = 0;
  const report = await pc.getStats();
  report.forEach((s) => {
    if (inbound && s.type === 'inbound-rtp') {
      lost += s.packetsLost || 0;
      got += s.packetsReceived || 0;
      if (s.kind === 'audio' && typeof s.audioLevel === 'number') audioLevel = s.audioLevel;
    } else if (!inbound && s.type === 'remote-inbound-rtp') {
      lost += Math.max(0, s.packetsLost || 0);
    } else if (!inbound && s.type === 'outbound-rtp') {
      got += s.packetsSent || 0;
    } else if (!inbound && s.type === 'media-source' && s.kind === 'audio' && typeof s.audioLevel === 'number') {
      audioLevel = s.audioLevel;
    }
    if (s.type === 'candidate-pair' && s.nominated && typeof s.currentRoundTripTime === 'number') rtt = s.currentRoundTripTime * 1000;
  });
  return { lost, got, rtt, audioLevel };
}

async function pollStats() {
  const room = state.room;
  if (!room) return;
  const jobs = [];
  for (const [cid, sub] of room.subscriptions) jobs.push([cid, sub.pc, true]);
  if (room.local) jobs.push([room.connectionId, room.local.pc, false]);
  await Promise.all(
    jobs.map(async ([cid, pc, inbound]) => {
      const tile = tileFor(cid);
      if (!tile || pc.connectionState === 'closed') return;
      try {
        const s = await statsOf(pc, inbound);
        const prev = state.lastStats.get(cid) || { lost: 0, got: 0 };
        const dLost = Math.max(0, s.lost - prev.lost);
        const dGot = Math.max(0, s.got - prev.got);
        state.lastStats.set(cid, s);
        const loss = dGot + dLost ? (100 * dLost) / (dGot + dLost) : 0;
        const q = pc.connectionState === 'connected' ? level(loss, s.rtt || 0) : 1;
        const muted = inbound ? false : !(room.local && room.local.audioActive);
        showQuality(tile, q, !muted && s.audioLevel > 0.05);
      } catch (_) {
        /* the connection just closed */
      }
    }),
  );
}

// ---------------------------------------------------------------- start

form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (!form.reportValidity()) return;
  join($('room').value.trim(), $('name').value.trim());
});
$('mic').addEventListener('click', () => toggle('audioActive'));
$('cam').addEventListener('click', () => toggle('videoActive'));
$('share').addEventListener('click', toggleShare);
$('copy').addEventListener('click', copyLink);
$('leave').addEventListener('click', leave);
window.addEventListener('pagehide', () => {
  if (state.room) state.room.leave();
});

const params = new URLSearchParams(location.search);
if (params.get('room')) $('room').value = params.get('room');
if (params.get('name')) $('name').value = params.get('name');
if (params.get('room') && params.get('name') && form.checkValidity()) join($('room').value.trim(), $('name').value.trim());
else (params.get('room') ? $('name') : $('room')).focus();
