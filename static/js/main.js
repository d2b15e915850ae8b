// Wires the dashboard: the URL (`#/runs/{run}` or `#/runs/{run}/jobs/{job}`) says what is
// selected, the live stream updates every panel, and a reconnect re-reads what is shown.

import { api, setToken, getToken, setTokenPrompt, onTokenChange, liveUrl, paths } from './api.js';
import { $, toast, shortId } from './dom.js';
import { Live } from './live.js';
import { RunsPanel } from './runs.js';
import { RunView } from './run.js';
import { JobView } from './job.js';
import { LaunchPanel } from './launch.js';
import { promptToken } from './dialogs.js';

const selection = { run: null, job: null };

function parseHash() {
  const m = location.hash.match(/^#\/runs\/([^/]+)(?:\/jobs\/([^/]+))?/);
  return { run: m ? decodeURIComponent(m[1]) : null, job: m && m[2] ? decodeURIComponent(m[2]) : null };
}

function navigate(run, job) {
  const hash = run ? `#/runs/${encodeURIComponent(run)}${job ? `/jobs/${encodeURIComponent(job)}` : ''}` : '#/';
  if (location.hash !== hash) location.hash = hash;
  else applyHash();
}

const runs = new RunsPanel({ onSelect: (run) => navigate(run, null) });
const runView = new RunView({
  onSelectJob: (run, job) => navigate(run, job),
  onDeleted: (run) => { if (selection.run === run) navigate(null, null); runs.load().catch(report); },
});
const jobView = new JobView();
new LaunchPanel({
  onLaunched: (run) => {
    toast(`Run ${shortId(run)} launched.`);
    if (run) navigate(run, null);
  },
});

function report(error) {
  console.error(error);
  toast(error.detail || error.message || String(error), { error: true });
}

async function applyHash() {
  const { run, job } = parseHash();
  const runChanged = run !== selection.run;
  selection.run = run;
  selection.job = job;
  runs.select(run);
  runView.selectJob(job);
  try {
    await Promise.all([
      runChanged || !run ? runView.show(run) : Promise.resolve(),
      jobView.show(job),
    ]);
  } catch (error) {
    report(error);
  }
}

// ---- connection state ------------------------------------------------------------------

const live = new Live(liveUrl);
const conn = $('#conn');
const connText = $('#conn-text');
const retry = $('#conn-retry');
let countdown = null;

live.addEventListener('state', (e) => {
  const { state, retryAt } = e.detail;
  conn.dataset.state = state;
  clearInterval(countdown);
  retry.hidden = state !== 'disconnected';
  const labels = { connecting: 'Connecting…', connected: 'Live', reconnecting: 'Reconnecting…' };
  if (state !== 'disconnected') {
    connText.textContent = labels[state];
    return;
  }
  const tick = () => {
    const secs = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    connText.textContent = `Disconnected — retrying in ${secs} s`;
  };
  tick();
  countdown = setInterval(tick, 1000);
});
retry.addEventListener('click', () => live.retryNow());

live.addEventListener('resync', () => {
  // Messages sent while the stream was down are lost: read again what is on screen.
  Promise.all([runs.load(), runView.reload(), jobView.reload()]).catch(report);
});

live.addEventListener('message', (e) => {
  const { type, data } = e.detail;
  if (!data) return;
  switch (type) {
    case 'new_run':
      runs.added(data);
      break;
    case 'update_run_status':
      runs.updated(data);
      runView.runUpdated(data);
      break;
    case 'delete_run':
      runs.deleted(data.run_uuid);
      if (data.run_uuid === selection.run) {
        toast(`Run ${shortId(data.run_uuid)} was deleted.`);
        navigate(null, null);
      }
      break;
    case 'new_job':
      runView.jobAdded(data);
      break;
    case 'update_job_status':
      runView.jobUpdated(data);
      jobView.jobUpdated(data);
      break;
    case 'new_event':
      jobView.eventAdded(data);
      break;
    case 'update_event_status':
      jobView.eventUpdated(data);
      break;
    case 'new_output':
      runView.outputs.added(data);
      break;
    default:
      break;
  }
});

// ---- token -------------------------------------------------------------------------------

const forget = $('#token-forget');
setTokenPrompt(async (reason) => {
  const token = await promptToken(reason);
  setToken(token);
  return token;
});
onTokenChange((token) => {
  forget.hidden = !token;
  live.retryNow();
});
forget.hidden = !getToken();
forget.addEventListener('click', () => {
  setToken('');
  location.reload();
});

// ---- start -------------------------------------------------------------------------------

window.addEventListener('hashchange', applyHash);

async function start() {
  try {
    // The first call settles the token (it asks when the server answers 401), so the live
    // stream opens with it.
    await runs.load();
  } catch (error) {
    report(error);
  }
  live.start();
  await applyHash();
}

start();

// For the browser tests and for debugging in the console.
window.armada = { live, runs, runView, jobView, api, paths };
