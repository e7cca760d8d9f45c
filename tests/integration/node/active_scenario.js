// With a participant already joined and publishing in <sessionId>, inspect it through the
// real openvidu-node-client, force-unpublish its stream, update and evict its connection;
// print one "RESULT <json>" line. Driven by tests/integration/test_node_client.py.
//
// usage: node active_scenario.js <server-url> <secret> <node_modules dir> <sessionId>
'use strict';

const path = require('path');
const { status } = require('./status');
const [url, secret, modules, sessionId] = process.argv.slice(2);
const { OpenVidu, OpenViduRole } = require(path.join(modules, 'openvidu-node-client'));

function view(c) {
  return {
    connectionId: c.connectionId, status: c.status, platform: c.platform, clientData: c.clientData,
    location: c.location, ip: c.ip, role: c.connectionProperties.role, activeAt: c.activeAt,
    publishers: c.publishers.map((p) => ({
      streamId: p.streamId, hasAudio: p.hasAudio, hasVideo: p.hasVideo, audioActive: p.audioActive,
    })),
  };
}

async function main() {
  const out = {};
  const ov = new OpenVidu(url, secret);
  ov.enableProdMode();
  await ov.fetch();
  const session = ov.activeSessions.find((s) => s.sessionId === sessionId);
  out.found = !!session;
  out.active = session.activeConnections.map(view);
  const conn = session.activeConnections[0];
  const streamId = conn.publishers[0].streamId;

  out.updated = await status(session.updateConnection(conn.connectionId, { role: OpenViduRole.SUBSCRIBER }));
  await session.fetch();
  out.afterUpdate = view(session.activeConnections[0]);

  out.unpublish = await status(session.forceUnpublish(streamId));
  await session.fetch();
  out.afterUnpublish = view(session.activeConnections[0]);
  out.unpublishAgain = await status(session.forceUnpublish(streamId));

  out.disconnect = await status(session.forceDisconnect(conn.connectionId));
  out.disconnectAgain = await status(session.forceDisconnect(conn.connectionId));
  await ov.fetch();
  out.afterDisconnect = ov.activeSessions.map((s) => s.sessionId).includes(sessionId);
  process.stdout.write('RESULT ' + JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
