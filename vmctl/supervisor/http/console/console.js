// The web console: a client of the daemon's API like any other (docs/console.md).
// Everything a session sends back is shown as text (textContent), never as markup.
"use strict";

const API = "/api/v1";
const NO_COMMIT = "0".repeat(40);
const REFRESH_MS = 3000;
const HISTORY = 20; // executions shown when a session is opened
const HISTORY_EVENTS = 200; // of each of them

const $ = (id) => document.getElementById(id);
const state = { session: null, running: null, stream: null, templates: new Map() };

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(`${error.code || status}: ${error.message || "request failed"}`);
    this.code = error.code;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function say(text, bad = false) {
  const status = $("status");
  status.textContent = text;
  status.className = bad ? "bad" : "";
}

async function attempt(action) {
  try {
    await action();
  } catch (error) {
    say(error.message, true);
  }
}

function line(kind, text) {
  const transcript = $("transcript");
  const div = document.createElement("div");
  div.className = kind;
  div.textContent = text;
  transcript.append(div);
  transcript.scrollTop = transcript.scrollHeight;
}

function shortId(id) {
  return id.slice(0, 8);
}

// -- the daemon, templates and sessions ---------------------------------------------

async function loadDaemon() {
  const health = await api("GET", "/health");
  const summary = await api("GET", "/runtime/summary");
  $("daemon").textContent =
    `${health.status}, ${summary.active_sessions} live of ${summary.max_sessions}`;
}

async function loadTemplates() {
  const templates = await api("GET", "/templates");
  const select = $("template");
  const chosen = select.value;
  select.replaceChildren();
  state.templates.clear();
  for (const template of templates) {
    state.templates.set(template.id, template);
    const option = document.createElement("option");
    option.value = template.id;
    option.textContent = template.name;
    select.append(option);
  }
  if (chosen) select.value = chosen;
}

async function loadSessions() {
  const sessions = await api("GET", "/sessions");
  const list = $("sessions");
  list.replaceChildren();
  for (const session of sessions.filter((s) => s.status !== "closed")) {
    const item = document.createElement("li");
    item.dataset.id = session.id;
    const template = state.templates.get(session.vm_id);
    item.textContent = `${shortId(session.id)} ${template ? template.name : ""}`;
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = session.status;
    item.append(status);
    if (state.session && state.session.id === session.id) {
      item.classList.add("selected");
      state.session = session;
      showSession();
    }
    item.addEventListener("click", () => attempt(() => openSession(session)));
    list.append(item);
  }
}

async function refresh() {
  await loadDaemon();
  await loadTemplates();
  await loadSessions();
}

// -- one session ----------------------------------------------------------------------

function showSession() {
  const session = state.session;
  const ready = session !== null && session.status === "ready";
  $("session-title").textContent = session
    ? `${session.id} (${session.status}) in ${session.worktree_path}`
    : "No session selected";
  for (const id of ["restart", "replay", "close"]) $(id).disabled = session === null;
  $("code").disabled = !ready;
  $("run").disabled = !ready || state.running !== null;
  $("cancel").disabled = state.running === null;
}

async function openSession(session) {
  stopStream();
  state.session = session;
  $("transcript").replaceChildren();
  showSession();
  for (const item of $("sessions").children) {
    item.classList.toggle("selected", item.dataset.id === session.id);
  }
  const executions = await api("GET", `/executions?session_id=${session.id}&limit=${HISTORY}`);
  for (const execution of executions.reverse()) {
    const path = `/executions/${execution.id}/events?limit=${HISTORY_EVENTS}`;
    const events = await api("GET", path);
    if (execution.kind !== "repl") line("input", `run ${execution.path}`);
    for (const event of events) showEvent(event.type, event.payload);
    if (events.length === HISTORY_EVENTS) line("system", "(more output not shown)");
    if (execution.status === "running") line("system", "(still running)");
  }
}

// One event of an execution, as the transcript shows it (a stream's or a record's).
function showEvent(type, payload) {
  switch (type) {
    case "input_echo": return line("input", payload.text);
    case "console": {
      const plain = payload.level === "log" || payload.level === "info";
      return line(plain ? "console" : payload.level, payload.text);
    }
    case "value": return line("value", payload.preview);
    case "exception": return line("exception", payload.message);
    case "system": return line("system", payload.message);
  }
}

async function createSession(event) {
  event.preventDefault();
  let templateId = $("template").value;
  const name = $("template-name").value.trim();
  if (name) {
    templateId = (await api("POST", "/templates", { name })).id;
    $("template-name").value = "";
  } else if (!templateId) {
    throw new Error("Choose a template, or name a new one");
  }
  const session = await api("POST", "/sessions", {
    template_id: templateId,
    workspace_id: "console",
    base_commit_oid: NO_COMMIT,
    worktree_path: $("worktree").value,
  });
  await refresh();
  await openSession(session);
  say(`Created session ${session.id}`);
}

async function lifecycle(action, body) {
  const id = state.session.id;
  stopStream();
  const session = await api("POST", `/sessions/${id}/${action}`, body);
  state.session = session.status === "closed" ? null : session;
  if (state.session === null) $("transcript").replaceChildren();
  const replay = session.runtime_meta && session.runtime_meta.replay;
  let note = `Session ${shortId(id)} is ${session.status}`;
  if (action === "restart" && replay) {
    note += `; ${replay.replayed} replayed, ${replay.diverged.length} with another value`;
    if (replay.failed) note += `; stopped: ${replay.failed.error.message}`;
  }
  say(note);
  await refresh();
  showSession();
}

// -- executions -----------------------------------------------------------------------

async function run(event) {
  event.preventDefault();
  const code = $("code").value;
  if (!code.trim() || state.session === null) return;
  const execution = await api("POST", "/executions/repl", {
    session_id: state.session.id,
    input: code,
    wait: false,
  });
  $("code").value = "";
  state.running = execution.id;
  showSession();
  follow(execution.id);
}

function follow(executionId) {
  const source = new EventSource(`${API}/executions/${executionId}/stream`);
  state.stream = source;
  for (const type of ["input_echo", "console", "value", "exception", "system"]) {
    source.addEventListener(type, (event) => showEvent(type, JSON.parse(event.data).payload));
  }
  source.addEventListener("end", (event) => {
    const record = JSON.parse(event.data);
    if (record.status !== "ok") say(`Execution ${shortId(record.id)} ended ${record.status}`);
    stopStream();
    attempt(loadSessions);
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      say("The stream was closed; reload to see how the execution ended", true);
      stopStream();
    }
  };
}

function stopStream() {
  if (state.stream) state.stream.close();
  state.stream = null;
  state.running = null;
  showSession();
}

async function cancel() {
  if (state.running) await api("POST", `/executions/${state.running}/cancel`);
}

// -- wiring ---------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("create").addEventListener("submit", (event) => attempt(() => createSession(event)));
  $("repl").addEventListener("submit", (event) => attempt(() => run(event)));
  $("code").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      $("repl").requestSubmit();
    }
  });
  $("cancel").addEventListener("click", () => attempt(cancel));
  $("restart").addEventListener("click", () => attempt(() => lifecycle("restart", {})));
  $("replay").addEventListener("click", () =>
    attempt(() => lifecycle("restart", { replay: true })),
  );
  $("close").addEventListener("click", () => attempt(() => lifecycle("close")));
  attempt(refresh);
  setInterval(() => attempt(refresh), REFRESH_MS);
});
