// Reads files of its own worktree through the host fs module (read-only).
(function read() {
  const fs = require("fs");
  const files = fs.readdirSync("data").sort();
  console.log("files:", files.join(","));
  const message = String(fs.readFileSync("data/message.txt")).trim();
  console.log("message:", message);
  console.log("exists:", fs.existsSync("data/message.txt"), fs.existsSync("data/missing.txt"));
  return { files: files.length, message };
})();
