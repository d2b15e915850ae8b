// An armada worker in plain Node 20, no npm packages: the reference for writing a worker in
// any language. The protocol is in docs/worker-protocol.md; in short:
//
//   connect to the Unix socket $ARMADA_WORKER_SOCKET, one JSON object per line each way;
//   hello ⇄ hello (protocol 1), init → ready, then job → calls … → done, until shutdown.
//
// Prints on stdout/stderr are fine: the agent keeps them as the job's logs; the protocol only
// runs on the socket.
'use strict';

const net = require('node:net');
const readline = require('node:readline');

const PROTOCOL = 1;
const WORKER = `node-example/0.1.0 (node ${process.version})`;

const socketPath = process.env.ARMADA_WORKER_SOCKET;
if (!socketPath) {
  console.error('ARMADA_WORKER_SOCKET is not set: this worker is started by an armada agent');
  process.exit(2);
}

const socket = net.createConnection(socketPath);
const send = (message) => socket.write(JSON.stringify(message) + '\n');

// Calls: the agent answers each with a reply carrying the same id, once the record is stored.
const pending = new Map();
let nextId = 1;
function call(method, params) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    send({ type: 'call', id, method, params });
  });
}

// What the agent said at init.
let agentMessage = {};
let context = {};
let busy = false;

// Heavy resources live for the worker's life: set up once at init, released at shutdown.
async function init(message) {
  agentMessage = message.agent_message || {};
  context = message.context || {};
  console.log(`agent ${context.pod_index} of run ${context.run_id} starting`);
  // An output outside any job is allowed (it belongs to the run).
  await call('output', { data: { agent: context.pod_index, greeting: agentMessage.greeting || null } });
}

// One job. Throwing fails it; the final event ends it explicitly.
async function runJob(job) {
  const { word = '', fail = false } = job.job_message || {};
  console.log(`job ${job.job_uuid} (attempt ${job.attempt}): ${word}`);
  await call('event', { content: `counting the letters of ${word}`, status: 'Running' });
  if (fail === true || fail === 'true' || fail === '1') {
    throw new Error(`asked to fail on ${word}`);
  }
  await call('output', { data: { word, letters: [...word].length, upper: word.toUpperCase() } });
  await call('event', { content: `done with ${word}`, status: 'Success', final: true });
}

async function teardown() {
  console.log('releasing resources');
}

async function handle(message) {
  switch (message.type) {
    case 'hello':
      if (message.protocol !== PROTOCOL) {
        console.error(
          `worker protocol mismatch: the agent (${message.agent}) speaks protocol ${message.protocol}, ` +
            `this worker (${WORKER}) speaks protocol ${PROTOCOL}`,
        );
        process.exit(2);
      }
      break;
    case 'init':
      try {
        await init(message);
        send({ type: 'ready' });
      } catch (err) {
        send({ type: 'init_failed', error: String(err && err.message ? err.message : err) });
        socket.end(() => process.exit(1));
      }
      break;
    case 'job': {
      busy = true;
      let status = 'Success';
      let error = null;
      try {
        await runJob(message);
      } catch (err) {
        console.error(err && err.stack ? err.stack : err);
        status = 'Failed';
        error = `${err && err.name ? err.name : 'Error'}: ${err && err.message ? err.message : err}`;
      }
      busy = false;
      send({ type: 'done', job_uuid: message.job_uuid, status, error });
      break;
    }
    case 'reply': {
      const waiter = pending.get(message.id);
      if (waiter) {
        pending.delete(message.id);
        if (message.ok) waiter.resolve(message.result);
        else waiter.reject(new Error(message.error));
      }
      break;
    }
    case 'shutdown':
      await teardown();
      socket.end(() => process.exit(0));
      break;
    default:
      console.error(`ignored a ${message.type} message from the agent`);
  }
}

socket.on('connect', () => send({ type: 'hello', protocol: PROTOCOL, worker: WORKER }));
socket.on('error', (err) => {
  console.error(`connection to the agent failed: ${err.message}`);
  process.exit(1);
});

// Messages are handled as they come; replies must not wait behind the job that awaits them.
readline.createInterface({ input: socket, crlfDelay: Infinity }).on('line', (line) => {
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    console.error(`the agent sent a line that is not JSON: ${line.slice(0, 200)}`);
    process.exit(2);
  }
  handle(message).catch((err) => {
    console.error(err);
    process.exit(1);
  });
});

// The agent went away (it stopped or was killed): release what we hold and exit.
socket.on('close', () => {
  teardown().finally(() => process.exit(busy ? 1 : 0));
});
