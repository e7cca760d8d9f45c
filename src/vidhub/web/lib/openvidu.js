// vidhub's browser client for the OpenVidu 2.x signalling protocol: JSON-RPC 2.0 over a
// WebSocket plus one RTCPeerConnection per published or received stream. A plain ES module
// with no dependencies and no build step; import it from any page served by vidhub:
//
//   import { Room, tokenFor } from '/assets/lib/openvidu.js';
//   const token = await tokenFor('demo');            // the server's application endpoints
//   const room = await Room.join(token, { metadata: JSON.stringify({ clientData: 'alice' }) });
//   room.addEventListener('streamadded', (e) => room.subscribe(e.detail.stream.id)
//       .then((ms) => { video.srcObject = ms; }));
//   const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
//   await room.publish(media);
//   room.setActive('audioActive', false);           // mute; others get streamPropertyChanged
//   await room.leave();
//
// Events (CustomEvent, data in `detail`): participantjoined {participant},
// participantleft {connectionId, reason}, streamadded {participant, stream},
// streamremoved {connectionId, streamId, reason}, streamchanged {connectionId, streamId,
// property, value}, signal {type, data, from}, reconnecting, reconnected,
// disconnected {reason}. `room.participants` maps connection ids to {id, metadata, name,
// stream}. The wire is described in vidhub's specs (openvidu.md §3).

const SDK_VERSION = '2.32.1';
const PING_MS = 5000;
const REQUEST_TIMEOUT_MS = 10000;
const RECONNECT_EVERY_MS = 1000;
const RECONNECT_GIVE_UP_MS = 9000; // the server keeps a dropped session 10 s

/** An error answered by the server (JSON-RPC `error`), with its OpenVidu code. */
export class RpcError extends Error {
  constructor(code, message) {
    super(message || `error ${code}`);
    this.name = 'RpcError';
    this.code = code;
  }
}

/**
 * A token from the server's application endpoints (`POST /api/sessions`, then
 * `POST /api/sessions/<id>/connections`), served by `vidhub serve` on loopback or with
 * `--app-endpoints`. `base` is the server's HTTP origin (default: this page's).
 */
export async function tokenFor(roomName, { base = '', connection = {} } = {}) {
  const post = async (path, body) => {
    let res;
    // a busy server answers 503 (or 429) with Retry-After: wait that long, a few times
    for (let attempt = 0; ; attempt++) {
      try {
        res = await fetch(base + path, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
        });
      } catch (e) {
        const err = new Error('The server cannot be reached.');
        err.name = 'UnreachableError';
        throw err;
      }
      const retryAfter = Number(res.headers.get('Retry-After'));
      if ((res.status !== 503 && res.status !== 429) || !(retryAfter >= 0) || attempt >= 4) break;
      await new Promise((r) => setTimeout(r, Math.min(retryAfter, 5) * 1000 || 250));
    }
    const text = await res.text();
    if (!res.ok) {
      let msg = text;
      try {
        msg = JSON.parse(text).message || text;
      } catch (_) {
        /* plain text */
      }
      const err = new Error(`${res.status}: ${msg}`);
      err.name = res.status === 404 ? 'NoAppEndpointsError' : 'TokenError';
      err.status = res.status;
      throw err;
    }
    return text;
  };
  const sessionId = await post('/api/sessions', { customSessionId: roomName });
  return post(`/api/sessions/${encodeURIComponent(sessionId)}/connections`, connection);
}

/** `clientData` of an OpenVidu metadata string (`{"clientData":..}%/%serverData` or text). */
export function displayName(metadata) {
  const client = String(metadata || '').split('%/%')[0];
  try {
    const v = JSON.parse(client);
    if (v && typeof v === 'object' && v.clientData != null) return String(v.clientData);
  } catch (_) {
    /* not JSON: the text itself */
  }
  return client;
}

function parseToken(token) {
  let url;
  try {
    url = new URL(token);
  } catch (_) {
    throw new Error('Token not valid');
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error('Token not valid');
  const sessionId = url.searchParams.get('sessionId');
  if (!sessionId) throw new Error('Token not valid');
  return { wsBase: `${url.protocol}//${url.host}`, sessionId };
}

function platformName() {
  const ua = navigator.userAgent;
  const m = ua.match(/(Chrome|Firefox|Safari)\/([\d.]+)/);
  return m ? `${m[1]} ${m[2]} (vidhub web)` : 'vidhub web';
}

/** The JSON-RPC 2.0 socket: requests with ids and deadlines, notifications, pings. */
class RpcSocket {
  constructor(url, onNotification, onClose) {
    this.url = url;
    this.onNotification = onNotification;
    this.onClose = onClose;
    this.nextId = 0;
    this.pending = new Map();
    this.ws = null;
    this.pinger = null;
    this.closing = false;
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => {
        ws.onerror = null;
        this.startPings();
        resolve();
      };
      ws.onerror = () => reject(new Error('The server cannot be reached.'));
      ws.onmessage = (m) => this.receive(m.data);
      ws.onclose = () => {
        this.stopPings();
        for (const [, p] of this.pending) p.reject(new Error('socket closed'));
        this.pending.clear();
        if (this.ws === ws && !this.closing) this.onClose();
      };
    });
  }

  startPings() {
    this.stopPings();
    this.request('ping', { interval: PING_MS }).catch(() => {});
    this.pinger = setInterval(() => {
      this.request('ping', undefined, PING_MS).catch(() => {
        if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.close(4104, 'Connection closed for reconnection');
      });
    }, PING_MS);
  }

  stopPings() {
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = null;
  }

  request(method, params, timeoutMs = REQUEST_TIMEOUT_MS) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error('not connected'));
    const id = this.nextId++;
    const msg = { jsonrpc: '2.0', method };
    if (params !== undefined) msg.params = params;
    msg.id = id;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method} timed out`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      ws.send(JSON.stringify(msg));
    });
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (_) {
      return;
    }
    if (!msg || msg.jsonrpc !== '2.0') return;
    if (msg.method) {
      if (msg.id === undefined) this.onNotification(msg.method, msg.params || {});
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error) p.reject(new RpcError(msg.error.code, msg.error.message));
    else p.resolve(msg.result || {});
  }

  close() {
    this.closing = true;
    this.stopPings();
    if (this.ws) this.ws.close(4102, 'Connection closed by client');
  }

  drop() {
    // tests and diagnostics: lose the socket as a network failure would
    if (this.ws) this.ws.close(4104, 'Connection closed for reconnection');
  }
}

function iceServersOf(joinResult) {
  const servers = Array.isArray(joinResult.customIceServers) ? joinResult.customIceServers : [];
  return servers.map((s) => ({ urls: s.url, username: s.username, credential: s.credential }));
}

/** One joined OpenVidu session. Create it with `await Room.join(token, options)`. */
export class Room extends EventTarget {
  constructor(token, { metadata = '', iceServers = null } = {}) {
    super();
    const { wsBase, sessionId } = parseToken(token);
    this.token = token;
    this.sessionId = sessionId;
    this.wsBase = wsBase;
    this.metadata = metadata;
    this.iceServers = iceServers;
    this.connectionId = null;
    this.rpcSessionId = null;
    this.role = null;
    this.participants = new Map(); // connectionId -> {id, metadata, name, stream}
    this.local = null; // {streamId, pc, media, audioActive, videoActive}
    this.subscriptions = new Map(); // publisher connectionId -> {streamId, pc, media}
    this.state = 'new';
    this.socket = null;
  }

  /** Connect to the session of `token`; resolves once joined (rejects with RpcError 401 on a refused token). */
  static async join(token, options = {}) {
    const room = new Room(token, options);
    await room.connect();
    return room;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  async connect() {
    this.socket = new RpcSocket(
      `${this.wsBase}/openvidu?sessionId=${encodeURIComponent(this.sessionId)}`,
      (m, p) => this.onNotification(m, p),
      () => this.onSocketLost(),
    );
    await this.socket.open();
    let res;
    try {
      res = await this.socket.request('joinRoom', {
        token: this.token,
        session: this.sessionId,
        platform: platformName(),
        metadata: this.metadata,
        secret: '',
        recorder: false,
        stt: false,
        sdkVersion: SDK_VERSION,
      });
    } catch (e) {
      this.socket.close();
      throw e;
    }
    this.connectionId = res.id;
    this.rpcSessionId = res.sessionId;
    this.role = res.role;
    if (this.iceServers === null) this.iceServers = iceServersOf(res);
    for (const p of res.value || []) {
      this.addParticipant(p);
    }
    this.state = 'joined';
    for (const p of res.value || []) {
      for (const s of p.streams || []) this.emit('streamadded', { participant: this.participants.get(p.id), stream: s });
    }
  }

  addParticipant(p) {
    const entry = {
      id: p.id,
      metadata: p.metadata || '',
      name: displayName(p.metadata),
      stream: (p.streams && p.streams[0]) || null,
    };
    this.participants.set(p.id, entry);
    this.emit('participantjoined', { participant: entry });
    return entry;
  }

  onNotification(method, p) {
    switch (method) {
      case 'participantJoined':
        this.addParticipant(p);
        break;
      case 'participantLeft': {
        const part = this.participants.get(p.connectionId);
        if (part && part.stream) this.streamGone(p.connectionId, part.stream.id, p.reason);
        this.participants.delete(p.connectionId);
        this.emit('participantleft', { connectionId: p.connectionId, reason: p.reason });
        break;
      }
      case 'participantPublished': {
        const part = this.participants.get(p.id) || this.addParticipant({ id: p.id, metadata: '' });
        for (const s of p.streams || []) {
          part.stream = s;
          this.emit('streamadded', { participant: part, stream: s });
        }
        break;
      }
      case 'participantUnpublished': {
        if (p.connectionId === this.connectionId) {
          this.stopLocal();
          this.emit('streamremoved', { connectionId: p.connectionId, streamId: null, reason: p.reason });
          break;
        }
        const part = this.participants.get(p.connectionId);
        if (part && part.stream) this.streamGone(p.connectionId, part.stream.id, p.reason);
        break;
      }
      case 'streamPropertyChanged': {
        let value = p.newValue;
        if (typeof value === 'string') {
          try {
            value = JSON.parse(value);
          } catch (_) {
            /* raw */
          }
        }
        const part = this.participants.get(p.connectionId);
        if (part && part.stream) part.stream[p.property] = value;
        this.emit('streamchanged', { connectionId: p.connectionId, streamId: p.streamId, property: p.property, value });
        break;
      }
      case 'sendMessage':
        this.emit('signal', { type: p.type, data: p.data, from: p.from || null });
        break;
      case 'participantEvicted':
        if (p.connectionId === this.connectionId) this.shutDown(p.reason || 'forceDisconnectByServer');
        break;
      case 'iceCandidate': {
        const target = p.senderConnectionId === this.connectionId ? this.local : this.subscriptions.get(p.senderConnectionId);
        if (target && p.candidate) target.pc.addIceCandidate({ candidate: p.candidate, sdpMid: p.sdpMid, sdpMLineIndex: p.sdpMLineIndex }).catch(() => {});
        break;
      }
      default:
        break;
    }
  }

  streamGone(connectionId, streamId, reason) {
    const part = this.participants.get(connectionId);
    if (part) part.stream = null;
    const sub = this.subscriptions.get(connectionId);
    if (sub) {
      sub.pc.close();
      this.subscriptions.delete(connectionId);
    }
    this.emit('streamremoved', { connectionId, streamId, reason });
  }

  newPeerConnection(endpointName) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers || [] });
    pc.onicecandidate = (e) => {
      if (!e.candidate || !e.candidate.candidate) return;
      this.socket
        .request('onIceCandidate', {
          endpointName,
          candidate: e.candidate.candidate,
          sdpMid: e.candidate.sdpMid,
          sdpMLineIndex: e.candidate.sdpMLineIndex,
        })
        .catch(() => {});
    };
    return pc;
  }

  /**
   * Publish `media` (a MediaStream with at most one audio and one video track).
   * Returns the stream id. `typeOfVideo` is CAMERA (default) or SCREEN.
   */
  async publish(media, { typeOfVideo = 'CAMERA', audioActive = true, videoActive = true } = {}) {
    if (this.local) throw new Error('already publishing');
    const audio = media.getAudioTracks()[0] || null;
    const video = media.getVideoTracks()[0] || null;
    const pc = this.newPeerConnection(this.connectionId);
    if (audio) pc.addTransceiver(audio, { direction: 'sendonly', streams: [media] });
    if (video) pc.addTransceiver(video, { direction: 'sendonly', streams: [media] });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const settings = video ? video.getSettings() : {};
    const params = {
      sdpOffer: offer.sdp,
      hasAudio: !!audio,
      hasVideo: !!video,
      doLoopback: false,
      audioActive: !!audio && audioActive,
      videoActive: !!video && videoActive,
    };
    if (video) {
      params.typeOfVideo = typeOfVideo;
      params.frameRate = Math.round(settings.frameRate || 30);
      params.videoDimensions = JSON.stringify({ width: settings.width || 0, height: settings.height || 0 });
    }
    this.local = { streamId: null, pc, media, audioActive: params.audioActive, videoActive: params.videoActive };
    let res;
    try {
      res = await this.socket.request('publishVideo', params);
      await pc.setRemoteDescription({ type: 'answer', sdp: res.sdpAnswer });
    } catch (e) {
      pc.close();
      this.local = null;
      throw e;
    }
    if (audio) audio.enabled = params.audioActive;
    if (video) video.enabled = params.videoActive;
    this.local.streamId = res.id;
    return res.id;
  }

  /** Replace the published video track (screen share and back) without renegotiating. */
  async replaceVideo(track) {
    if (!this.local) throw new Error('not publishing');
    const sender = this.local.pc.getSenders().find((s) => s.track && s.track.kind === 'video');
    if (!sender) throw new Error('not publishing video');
    await sender.replaceTrack(track);
  }

  /** Mute or unmute: `property` is audioActive or videoActive; tells everyone else. */
  async setActive(property, value) {
    if (!this.local) return;
    const kind = property === 'audioActive' ? 'audio' : 'video';
    for (const t of this.local.media.getTracks()) if (t.kind === kind) t.enabled = value;
    this.local[property] = value;
    await this.socket.request('streamPropertyChanged', {
      streamId: this.local.streamId,
      property,
      newValue: value,
      reason: kind === 'audio' ? 'publishAudio' : 'publishVideo',
    });
  }

  async unpublish() {
    if (!this.local) return;
    await this.socket.request('unpublishVideo', {}).catch(() => {});
    this.stopLocal();
  }

  stopLocal() {
    if (!this.local) return;
    this.local.pc.close();
    this.local = null;
  }

  /** Receive the stream of publisher `connectionId`; resolves with its MediaStream. */
  async subscribe(connectionId) {
    const part = this.participants.get(connectionId);
    if (!part || !part.stream) throw new Error(`${connectionId} publishes nothing`);
    const stream = part.stream;
    const old = this.subscriptions.get(connectionId);
    if (old) old.pc.close();
    const pc = this.newPeerConnection(connectionId);
    const media = new MediaStream();
    pc.ontrack = (e) => media.addTrack(e.track);
    if (stream.hasAudio) pc.addTransceiver('audio', { direction: 'recvonly' });
    if (stream.hasVideo) pc.addTransceiver('video', { direction: 'recvonly' });
    const sub = { streamId: stream.id, pc, media };
    this.subscriptions.set(connectionId, sub);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const res = await this.socket.request('receiveVideoFrom', { sender: stream.id, sdpOffer: offer.sdp });
    if (this.subscriptions.get(connectionId) !== sub) throw new Error('subscription replaced');
    await pc.setRemoteDescription({ type: 'answer', sdp: res.sdpAnswer });
    return media;
  }

  /** Send a signal: `type` without the `signal:` prefix; `to` is a list of connection ids ([] = all). */
  async signal(type, data = '', to = []) {
    await this.socket.request('sendMessage', { message: JSON.stringify({ to, data, type: `signal:${type}` }) });
  }

  /** Leave the session; everyone else sees participantLeft. */
  async leave() {
    if (this.state === 'closed') return;
    try {
      await this.socket.request('leaveRoom', {});
    } catch (_) {
      /* leaving anyway */
    }
    this.shutDown('disconnect');
  }

  shutDown(reason) {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopLocal();
    for (const sub of this.subscriptions.values()) sub.pc.close();
    this.subscriptions.clear();
    if (this.socket) this.socket.close();
    this.emit('disconnected', { reason });
  }

  /** The socket dropped: resume the same session within the server's window, as openvidu-browser. */
  async onSocketLost() {
    if (this.state !== 'joined') return;
    this.state = 'reconnecting';
    this.emit('reconnecting', {});
    const deadline = Date.now() + RECONNECT_GIVE_UP_MS;
    while (this.state === 'reconnecting' && Date.now() < deadline) {
      try {
        await this.socket.open();
        await this.socket.request('connect', { sessionId: this.rpcSessionId, reconnect: true });
        this.state = 'joined';
        this.emit('reconnected', {});
        return;
      } catch (e) {
        if (e instanceof RpcError) break; // the server no longer knows the session
        await new Promise((r) => setTimeout(r, RECONNECT_EVERY_MS));
      }
    }
    if (this.state === 'reconnecting') this.shutDown('networkDisconnect');
  }
}
