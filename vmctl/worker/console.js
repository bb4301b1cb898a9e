// Part of the vmctl prelude: one strict function body made of several files (see prelude.js).
// The console object: each call formats its arguments and hands the text to the host's
// `__vmctl_host_console(level, text)`, which the worker turns into a Console frame.

const host = globalThis.__vmctl_host_console;
delete globalThis.__vmctl_host_console;

// -- console -----------------------------------------------------------------
const counts = new MapCtor();
const timers = new MapCtor();
let groupIndent = "";

function emit(level, text) {
  if (groupIndent !== "") text = groupIndent + replaceAll(text, "\n", `\n${groupIndent}`);
  host(level, replaceAll(toWellFormed(text), "\0", "\ufffd"));
}

const printer = (level) => function (...args) { emit(level, formatList(args)); };
const log = printer("log");
const warn = printer("warn");

function formatTime(ms) {
  let hours = 0;
  let minutes = 0;
  let seconds = 0;
  if (ms >= 1000) {
    if (ms >= 60000) {
      if (ms >= 3600000) {
        hours = floor(ms / 3600000);
        ms %= 3600000;
      }
      minutes = floor(ms / 60000);
      ms %= 60000;
    }
    seconds = ms / 1000;
  }
  if (hours !== 0 || minutes !== 0) {
    const [whole, fraction] = split(toFixed(seconds, 3), ".");
    const res = hours !== 0 ? `${hours}:${padStart(`${minutes}`, 2, "0")}` : `${minutes}`;
    return `${res}:${padStart(whole, 2, "0")}.${fraction} (${hours !== 0 ? "h:m" : ""}m:ss.mmm)`;
  }
  if (seconds !== 0) return `${toFixed(seconds, 3)}s`;
  return `${Number(toFixed(ms, 3))}ms`;
}

function timeLogImpl(name, label, data) {
  const start = mapGet(timers, label);
  if (start === undefined) {
    warn(`Warning: No such label '${label}' for console.${name}()`);
    return false;
  }
  const text = `${label}: ${formatTime(now() - start)}`;
  if (data.length === 0) log("%s", text);
  else log("%s", text, ...data);
  return true;
}

// Node's console.table: a box-drawing table, cells inspected compactly.
function renderTable(head, columns) {
  const widths = [];
  const rows = [];
  let longest = 0;
  for (const column of columns) longest = max(longest, column.length);
  for (let i = 0; i < head.length; i++) {
    widths[i] = stringWidth(head[i]);
    for (let j = 0; j < longest; j++) {
      if (rows[j] === undefined) rows[j] = [];
      const cell = hasOwn(columns[i], j) && columns[i][j] !== undefined ? columns[i][j] : "";
      rows[j][i] = cell;
      widths[i] = max(widths[i], stringWidth(cell));
    }
  }
  const renderRow = (row) => {
    const cells = [];
    for (let i = 0; i < row.length; i++) push(cells, row[i] + repeat(" ", widths[i] - stringWidth(row[i])));
    return `│ ${join(cells, " │ ")} │`;
  };
  const dividers = [];
  for (const width of widths) push(dividers, repeat("─", width + 2));
  const lines = [`┌${join(dividers, "┬")}┐`, renderRow(head), `├${join(dividers, "┼")}┤`];
  for (const row of rows) push(lines, renderRow(row));
  push(lines, `└${join(dividers, "┴")}┘`);
  return join(lines, "\n");
}

function tableCell(value) {
  const depth = value !== null && typeof value === "object" && !isArray(value) &&
    ObjectKeys(value).length > 2 ? -1 : 0;
  return inspect(value, { depth, maxArrayLength: 3, breakLength: Infinity });
}

function table(data, properties) {
  if (data === null || typeof data !== "object") return log(data);
  const indexColumn = (length) => {
    const column = [];
    for (let i = 0; i < length; i++) push(column, tableCell(i));
    return column;
  };
  if (isMap(data)) {
    const keys = [];
    const values = [];
    for (const [k, v] of mapEntries(data)) {
      push(keys, tableCell(k));
      push(values, tableCell(v));
    }
    return log(renderTable(["(iteration index)", "Key", "Values"], [indexColumn(keys.length), keys, values]));
  }
  if (isSet(data)) {
    const values = [];
    for (const v of setValues(data)) push(values, tableCell(v));
    return log(renderTable(["(iteration index)", "Values"], [indexColumn(values.length), values]));
  }
  const columns = new MapCtor();
  const primitives = [];
  let hasPrimitives = false;
  const indexKeys = ObjectKeys(data);
  for (let i = 0; i < indexKeys.length; i++) {
    const item = data[indexKeys[i]];
    const primitive = item === null || (typeof item !== "function" && typeof item !== "object");
    if (properties === undefined && primitive) {
      hasPrimitives = true;
      primitives[i] = tableCell(item);
      continue;
    }
    for (const key of properties || ObjectKeys(item)) {
      if (!mapHas(columns, key)) mapSet(columns, key, []);
      const column = mapGet(columns, key);
      column[i] = primitive || !hasOwn(item, key) ? "" : tableCell(item[key]);
    }
  }
  const head = ["(index)"];
  const values = [indexKeys];
  for (const [key, column] of mapEntries(columns)) {
    push(head, `${key}`);
    push(values, column);
  }
  if (hasPrimitives) {
    push(head, "Values");
    push(values, primitives);
  }
  return log(renderTable(head, values));
}

const console = {
  log,
  info: printer("info"),
  debug: printer("debug"),
  warn,
  error: printer("error"),
  dirxml: log,
  dir(value, options) {
    emit("log", inspect(value, { customInspect: false, ...(options || {}) }));
  },
  table,
  assert(condition, ...args) {
    if (condition) return;
    if (args.length !== 0 && typeof args[0] === "string") args[0] = `Assertion failed: ${args[0]}`;
    else unshift(args, "Assertion failed");
    warn(...args);
  },
  count(label = "default") {
    label = `${label}`;
    const count = (mapGet(counts, label) || 0) + 1;
    mapSet(counts, label, count);
    log(`${label}: ${count}`);
  },
  countReset(label = "default") {
    label = `${label}`;
    if (!mapDelete(counts, label)) warn(`Warning: Count for '${label}' does not exist`);
  },
  time(label = "default") {
    label = `${label}`;
    if (mapHas(timers, label)) {
      warn(`Warning: Label '${label}' already exists for console.time()`);
      return;
    }
    mapSet(timers, label, now());
  },
  timeEnd(label = "default") {
    label = `${label}`;
    if (timeLogImpl("timeEnd", label, [])) mapDelete(timers, label);
  },
  timeLog(label = "default", ...data) {
    timeLogImpl("timeLog", `${label}`, data);
  },
  group(...label) {
    if (label.length !== 0) log(...label);
    groupIndent += "  ";
  },
  groupEnd() {
    groupIndent = slice(groupIndent, 0, -2);
  },
  trace: function trace(...args) {
    const err = { name: "Trace", message: format(...args) };
    captureStackTrace(err, trace);
    emit("error", errorStack(err));
  },
  clear() {},
  profile() {},
  profileEnd() {},
  timeStamp() {},
};
console.groupCollapsed = console.group;
