// With a participant publishing in <sessionId>, record it with the real openvidu-node-client:
// start (INDIVIDUAL), the error cases, wait <ms>, stop, get; then COMPOSED (node-client's
// default mode) for <ms>; list; print one "RESULT <json>".
// Driven by tests/recording/test_node_recording.py.
//
// usage: node recording_scenario.js <server-url> <secret> <node_modules dir> <sessionId> <ms>
'use strict';

const path = require('path');
const { status } = require('./status');
const [url, secret, modules, sessionId, ms] = process.argv.slice(2);
const { OpenVidu, Recording } = require(path.join(modules, 'openvidu-node-client'));

function view(r) {
  return {
    id: r.id, name: r.properties.name, sessionId: r.sessionId, createdAt: r.createdAt,
    size: r.size, duration: r.duration, url: r.url, status: r.status,
    outputMode: r.properties.outputMode, hasAudio: r.properties.hasAudio,
    hasVideo: r.properties.hasVideo,
  };
}

async function main() {
  const out = {};
  const ov = new OpenVidu(url, secret);
  ov.enableProdMode();
  out.startUnknown = await status(ov.startRecording('noSuchSession'));
  const started = await ov.startRecording(sessionId, {
    name: 'nodeRec', outputMode: Recording.OutputMode.INDIVIDUAL,
  });
  out.started = view(started);
  out.startAgain = await status(ov.startRecording(sessionId));
  out.deleteWhileStarted = await status(ov.deleteRecording(started.id));
  out.stopUnknown = await status(ov.stopRecording('nope'));
  await new Promise((resolve) => setTimeout(resolve, Number(ms))); // the recording's length
  out.stopped = view(await ov.stopRecording(started.id));
  out.stopAgain = await status(ov.stopRecording(started.id));
  out.got = view(await ov.getRecording(started.id));
  // COMPOSED, node-client's default output mode
  const grid = await ov.startRecording(sessionId, { name: 'nodeGrid', resolution: '640x360', frameRate: 15 });
  out.composedStarted = view(grid);
  await new Promise((resolve) => setTimeout(resolve, Number(ms))); // the recording's length
  out.composed = view(await ov.stopRecording(grid.id));
  out.listed = (await ov.listRecordings()).map((r) => r.id);
  process.stdout.write('RESULT ' + JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
