// Drives a vidhub (or OpenVidu) server with the real openvidu-node-client and prints one JSON
// object of observations on stdout; tests/integration/test_node_client.py asserts on it.
//
// usage: node rest_scenario.js <server-url> <secret> <node_modules dir>
'use strict';

const path = require('path');
const { status } = require('./status');
const [url, secret, modules] = process.argv.slice(2);
const { OpenVidu, OpenViduRole, ConnectionType } = require(path.join(modules, 'openvidu-node-client'));

function connView(c) {
  return {
    connectionId: c.connectionId, status: c.status, token: c.token, type: c.connectionProperties.type,
    role: c.connectionProperties.role, record: c.connectionProperties.record,
    data: c.connectionProperties.data, kurentoOptions: c.connectionProperties.kurentoOptions,
    serverData: c.serverData, createdAt: c.createdAt, activeAt: c.activeAt,
    publishers: c.publishers.length, subscribers: c.subscribers.length,
  };
}

async function main() {
  const out = {};
  const ov = new OpenVidu(url, secret);
  ov.enableProdMode(); // its info logging would go to stdout

  const generated = await ov.createSession();
  out.generated = { sessionId: generated.sessionId, createdAt: generated.createdAt,
    mediaMode: generated.properties.mediaMode, recordingMode: generated.properties.recordingMode };

  const custom = await ov.createSession({ customSessionId: 'nodeSession' });
  out.custom = { sessionId: custom.sessionId, customSessionId: custom.properties.customSessionId };
  // node-client never surfaces 409: it fetches the existing session instead
  const again = await ov.createSession({ customSessionId: 'nodeSession' });
  out.again = { sessionId: again.sessionId, createdAt: again.createdAt, same: again.createdAt === custom.createdAt };
  out.badCustom = await status(ov.createSession({ customSessionId: 'bad id!' }));

  const c1 = await custom.createConnection({
    type: ConnectionType.WEBRTC, role: OpenViduRole.MODERATOR, data: 'alice', record: false,
    kurentoOptions: { videoMaxRecvBandwidth: 500, allowedFilters: ['GStreamerFilter'] },
  });
  out.c1 = connView(c1);
  const c2 = await custom.createConnection();
  out.c2 = connView(c2);
  out.badRole = await status(custom.createConnection({ role: 'KING' }));

  const token = await custom.generateToken({ role: OpenViduRole.SUBSCRIBER, data: 'legacy' });
  out.legacyToken = token;

  out.sessionFetchChanged = await custom.fetch();
  out.sessionConnections = custom.connections.map(connView);
  out.activeConnections = custom.activeConnections.length;

  const updated = await custom.updateConnection(c1.connectionId, { role: OpenViduRole.SUBSCRIBER, record: true });
  out.updated = connView(updated);
  out.updateUnknown = await status(custom.updateConnection('con_NOPE000000', { role: OpenViduRole.PUBLISHER }));
  await custom.fetch();
  out.afterUpdate = connView(custom.connections.find((c) => c.connectionId === c1.connectionId));

  out.deleteConn = await status(custom.forceDisconnect(c2.connectionId));
  await custom.fetch();
  out.afterDelete = custom.connections.map((c) => c.connectionId);
  out.deleteConnAgain = await status(custom.forceDisconnect(c2.connectionId));

  out.fetchChanged = await ov.fetch();
  // node-client lists a session twice after a 409 re-fetch: de-duplicate
  out.activeSessions = [...new Set(ov.activeSessions.map((s) => s.sessionId))].sort();

  out.recording = await status(ov.startRecording(custom.sessionId));
  out.listRecordings = await status(ov.listRecordings());

  out.close = await status(custom.close());
  out.closeAgain = await status(custom.close());
  out.createOnClosed = await status(custom.createConnection());
  out.fetchClosed = await status(custom.fetch());
  await ov.fetch();
  out.afterClose = ov.activeSessions.map((s) => s.sessionId);

  const bad = new OpenVidu(url, secret + 'x');
  out.wrongSecret = await status(bad.createSession());
  await status(generated.close());

  process.stdout.write('RESULT ' + JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
