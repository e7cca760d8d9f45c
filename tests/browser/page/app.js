// Test page: a thin layer over the real openvidu-browser that the Python tests drive.
// Every session event is recorded in vh.events; helpers wait on conditions with deadlines.
'use strict';
window.vh = (() => {
  const events = [];
  const subscribers = new Map(); // remote connectionId -> Subscriber
  let OV = null;
  let session = null;
  let publisher = null;

  const record = (type, extra) => events.push(Object.assign({ type, t: Date.now() }, extra || {}));
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));

  async function until(check, ms, what) {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = check();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await pause(50);
    }
  }

  async function join(token, clientData) {
    OV = new OpenVidu();
    // no public STUN: without this openvidu-browser falls back to freeice() servers
    OV.setAdvancedConfiguration({ rtcConfiguration: { iceServers: [] } });
    session = OV.initSession();
    session.on('connectionCreated', (e) => record('connectionCreated', { connectionId: e.connection.connectionId }));
    session.on('connectionDestroyed', (e) =>
      record('connectionDestroyed', { connectionId: e.connection.connectionId, reason: e.reason }));
    session.on('streamCreated', (e) => {
      const cid = e.stream.connection.connectionId;
      record('streamCreated', { connectionId: cid, streamId: e.stream.streamId });
      const div = document.createElement('div');
      div.id = 'sub-' + cid;
      document.body.appendChild(div);
      subscribers.set(cid, session.subscribe(e.stream, div));
    });
    session.on('streamDestroyed', (e) =>
      record('streamDestroyed', { connectionId: e.stream.connection.connectionId, reason: e.reason }));
    session.on('sessionDisconnected', (e) => record('sessionDisconnected', { reason: e.reason }));
    session.on('signal', (e) =>
      record('signal', { data: e.data, signalType: e.type, from: e.from ? e.from.connectionId : null }));
    session.on('reconnecting', () => record('reconnecting'));
    session.on('reconnected', () => record('reconnected'));
    session.on('exception', (e) => record('exception', { name: e.name, message: e.message }));
    session.on('recordingStarted', (e) => record('recordingStarted', { id: e.id, name: e.name }));
    session.on('recordingStopped', (e) =>
      record('recordingStopped', { id: e.id, name: e.name, reason: e.reason }));
    await session.connect(token, clientData);
    return session.connection.connectionId;
  }

  async function publish() {
    publisher = await OV.initPublisherAsync(undefined, {
      publishAudio: true,
      publishVideo: true,
      resolution: '320x240',
      frameRate: 15,
      mirror: false,
    });
    publisher.on('streamDestroyed', (e) => record('publisherStreamDestroyed', { reason: e.reason }));
    await session.publish(publisher);
    return publisher.stream.streamId;
  }

  async function unpublish() {
    await session.unpublish(publisher);
    publisher = null;
    return true;
  }

  // Remote video of connection `cid` is playing: real frames and a clock that advances.
  async function waitPlaying(cid, ms) {
    const video = await until(() => {
      const sub = subscribers.get(cid);
      const v = sub && sub.videos.length ? sub.videos[0].video : null;
      return v && v.videoWidth > 0 && v.readyState >= 2 ? v : null;
    }, ms, `video of ${cid}`);
    const firstFrameAt = Date.now();
    const t0 = video.currentTime;
    await until(() => video.currentTime > t0 + 0.2, ms, `playback of ${cid} to advance`);
    const created = find('streamCreated', { connectionId: cid });
    return {
      width: video.videoWidth,
      height: video.videoHeight,
      t0,
      t1: video.currentTime,
      // streamCreated -> first decoded frame seen (50 ms polling resolution)
      firstFrameMs: created ? firstFrameAt - created.t : null,
    };
  }

  // The first recorded event of `type` whose fields include `match`, waiting up to ms.
  function find(type, match) {
    return events.find((e) => e.type === type &&
      Object.entries(match || {}).every(([k, v]) => e[k] === v)) || null;
  }

  async function waitEvent(type, match, ms) {
    return until(() => find(type, match), ms, `${type} ${JSON.stringify(match || {})}`);
  }

  async function signal(data, type, to) {
    const recipients = (to || []).map((id) => session.remoteConnections.get(id)).filter(Boolean);
    await session.signal({ data, type, to: recipients });
    return true;
  }

  function dropSocket() {
    // what openvidu-browser does when a ping goes unanswered: close 4104 and reconnect
    OV.jsonRpcClient.reconnect();
    return true;
  }

  async function forceUnpublish(cid) {
    await session.forceUnpublish(session.remoteConnections.get(cid).stream);
    return true;
  }

  async function forceDisconnect(cid) {
    await session.forceDisconnect(session.remoteConnections.get(cid));
    return true;
  }

  // The error name openvidu-browser rejects `fn` with, or null when it succeeds.
  async function errorName(fn) {
    try {
      await fn();
      return null;
    } catch (e) {
      return e && e.name ? e.name : String(e);
    }
  }

  async function leave() {
    session.disconnect();
    return true;
  }

  return {
    events, join, publish, unpublish, waitPlaying, waitEvent, find, signal, dropSocket,
    forceUnpublish, forceDisconnect, errorName, leave,
  };
})();
