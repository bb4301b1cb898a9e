// Part of the vmctl prelude: one strict function body made of several files (see prelude.js).
// How inspect's entries become lines (Node's compact and breakLength rules, array items
// grouped in columns) and how wide a string is in a terminal.

function isBelowBreakLength(ctx, output, start, base) {
  let totalLength = output.length + start;
  if (totalLength + output.length > ctx.breakLength) return false;
  for (const entry of output) {
    totalLength += entry.length;
    if (totalLength > ctx.breakLength) return false;
  }
  return base === "" || !includes(base, "\n");
}

// Node's rule: the innermost `compact` (3) levels go on one line when that
// line fits in `breakLength`; otherwise one entry per line, indented by 2.
function reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value) {
  if (ctx.compact !== true) {
    if (typeof ctx.compact === "number" && ctx.compact >= 1) {
      const entries = output.length;
      if (extrasType === kArrayExtrasType && entries > 6) {
        output = groupArrayElements(ctx, output, value);
      }
      if (ctx.currentDepth - recurseTimes < ctx.compact && entries === output.length) {
        const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
        if (isBelowBreakLength(ctx, output, start, base)) {
          const joined = join(output, ", ");
          if (!includes(joined, "\n")) {
            return `${base ? `${base} ` : ""}${braces[0]} ${joined} ${braces[1]}`;
          }
        }
      }
    }
    const indentation = `\n${repeat(" ", ctx.indentationLvl)}`;
    return `${base ? `${base} ` : ""}${braces[0]}${indentation}  ${
      join(output, `,${indentation}  `)}${indentation}${braces[1]}`;
  }
  if (isBelowBreakLength(ctx, output, 0, base)) {
    return `${braces[0]}${base ? ` ${base}` : ""} ${join(output, ", ")} ${braces[1]}`;
  }
  const indentation = repeat(" ", ctx.indentationLvl);
  const ln = base === "" && braces[0].length === 1 ? " " : `${base ? ` ${base}` : ""}\n${indentation}  `;
  return `${braces[0]}${ln}${join(output, `,\n${indentation}  `)} ${braces[1]}`;
}

// Node's column layout for arrays of more than six short entries.
function groupArrayElements(ctx, output, value) {
  let totalLength = 0;
  let maxLength = 0;
  let outputLength = output.length;
  if (ctx.maxArrayLength < output.length) outputLength--; // the "... more items" entry
  const separatorSpace = 2;
  const dataLen = [];
  for (let i = 0; i < outputLength; i++) {
    const length = stringWidth(output[i]);
    dataLen[i] = length;
    totalLength += length + separatorSpace;
    if (maxLength < length) maxLength = length;
  }
  const actualMax = maxLength + separatorSpace;
  if (actualMax * 3 + ctx.indentationLvl < ctx.breakLength &&
      (totalLength / actualMax > 5 || maxLength <= 6)) {
    const averageBias = sqrt(actualMax - totalLength / output.length);
    const biasedMax = max(actualMax - 3 - averageBias, 1);
    const columns = min(
      round(sqrt(2.5 * biasedMax * outputLength) / biasedMax),
      floor((ctx.breakLength - ctx.indentationLvl) / actualMax),
      ctx.compact * 4,
      15,
    );
    if (columns <= 1) return output;
    const grouped = [];
    const maxLineLength = [];
    for (let i = 0; i < columns; i++) {
      let lineLength = 0;
      for (let j = i; j < output.length; j += columns) {
        if (dataLen[j] > lineLength) lineLength = dataLen[j];
      }
      push(maxLineLength, lineLength + separatorSpace);
    }
    let order = padStart;
    if (value !== undefined) {
      for (let i = 0; i < output.length; i++) {
        if (typeof value[i] !== "number" && typeof value[i] !== "bigint") {
          order = padEnd;
          break;
        }
      }
    }
    for (let i = 0; i < outputLength; i += columns) {
      const last = min(i + columns, outputLength);
      let line = "";
      let j = i;
      for (; j < last - 1; j++) {
        const padding = maxLineLength[j - i] + output[j].length - dataLen[j];
        line += order(`${output[j]}, `, padding, " ");
      }
      if (order === padStart) {
        const padding = maxLineLength[j - i] + output[j].length - dataLen[j] - separatorSpace;
        line += padStart(output[j], padding, " ");
      } else {
        line += output[j];
      }
      push(grouped, line);
    }
    if (ctx.maxArrayLength < output.length) push(grouped, output[outputLength]);
    return grouped;
  }
  return output;
}

// Columns a string takes in a terminal: wide East Asian characters count
// twice, combining marks and zero-width characters not at all.
function stringWidth(str) {
  let width = 0;
  for (let i = 0; i < str.length; i++) {
    const code = codePointAt(str, i);
    if (code > 0xffff) i++;
    if (isZeroWidth(code)) continue;
    width += isFullWidth(code) ? 2 : 1;
  }
  return width;
}

const isZeroWidth = (code) => code <= 0x1f || (code >= 0x7f && code <= 0x9f) ||
  (code >= 0x300 && code <= 0x36f) || (code >= 0x200b && code <= 0x200f) ||
  (code >= 0x20d0 && code <= 0x20ff) || (code >= 0xfe00 && code <= 0xfe0f) ||
  (code >= 0xfe20 && code <= 0xfe2f) || (code >= 0xe0100 && code <= 0xe01ef);

const isFullWidth = (code) => code >= 0x1100 && (code <= 0x115f || code === 0x2329 ||
  code === 0x232a || (code >= 0x2e80 && code <= 0x3247 && code !== 0x303f) ||
  (code >= 0x3250 && code <= 0x4dbf) || (code >= 0x4e00 && code <= 0xa4c6) ||
  (code >= 0xa960 && code <= 0xa97c) || (code >= 0xac00 && code <= 0xd7a3) ||
  (code >= 0xf900 && code <= 0xfaff) || (code >= 0xfe10 && code <= 0xfe19) ||
  (code >= 0xfe30 && code <= 0xfe6b) || (code >= 0xff01 && code <= 0xff60) ||
  (code >= 0xffe0 && code <= 0xffe6) || (code >= 0x1b000 && code <= 0x1b001) ||
  (code >= 0x1f200 && code <= 0x1f251) || (code >= 0x1f300 && code <= 0x1f64f) ||
  (code >= 0x20000 && code <= 0x3fffd));
