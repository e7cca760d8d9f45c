// What the openvidu-node-client scenarios share: the outcome of one client call.
'use strict';

// 'ok', or the message of the Error the client rejected with (for openvidu-node-client, the
// HTTP status of the failed request).
async function status(promise) {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return err.message;
  }
}

module.exports = { status };
