#!/usr/bin/env bash
# End-to-end walkthrough: every testapp, limits, a crashed session restarted,
# logs and the one-shot `vmctl run`, through the installed CLI only, against a
# daemon started with `vmctl up --detach` on a free port in a temporary
# VMCTL_HOME. Safe to run in parallel; cleans up on any exit.
set -euo pipefail
SUITE=e2e
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/lib.sh"

PORT=$(free_port)

step "up --detach, status"
run_cli 0 up --detach --listen "127.0.0.1:$PORT" --worktree-root "$TESTAPPS"
run_cli 0 status
expect_contains "$OUT" "http://127.0.0.1:$PORT"
pass

step "hello: startup files set globals that repl and run-file use"
run_cli 0 template create --name hello
run_cli 0 template add-startup hello --path startup/00-greeting.js --order 0
run_cli 0 template add-startup hello --path startup/10-greet.js --order 10
new_session hello "$TESTAPPS/hello"
HELLO=$SID
run_cli 0 exec repl "$HELLO" 'greet("e2e")'
expect_eq "$OUT" "Hello, e2e!"
run_cli 0 exec run-file "$HELLO" main.js --args '{"name": "walkthrough"}'
expect_contains "$OUT" "Hello, walkthrough!"
expect_contains "$OUT" "greeting: 'Hello, walkthrough!'"
pass

step "hello: executions are listed with their events"
run_cli 0 exec list "$HELLO"
expect_contains "$OUT" "run_file"
EXEC=$("$VMCTL" --json exec list "$HELLO" --limit 1 | json_get 0 id)
run_cli 0 exec get "$EXEC"
expect_contains "$OUT" "Path:"
run_cli 0 exec events "$EXEC"
expect_contains "$OUT" "console"
expect_contains "$OUT" "value"
AFTER=$("$VMCTL" --json exec events "$EXEC" --after-seq 1 | json_get 0 seq)
expect_eq "$AFTER" "2"
pass

step "esm: an .mjs entry imports sibling modules"
run_cli 0 template create --name esm
run_cli 0 template set-runtime esm --esm
new_session esm "$TESTAPPS/esm"
ESM=$SID
run_cli 0 exec run-file "$ESM" main.mjs
expect_contains "$OUT" "ESM TOTAL 13!!"
run_cli 0 session close "$ESM"
pass

step "fsreader: require('fs') reads the worktree once the module is added"
run_cli 0 template create --name fsreader
run_cli 0 template add-module fsreader --name fs
run_cli 0 template list-modules fsreader
expect_eq "$OUT" "fs"
new_session fsreader "$TESTAPPS/fsreader"
FS=$SID
run_cli 0 exec run-file "$FS" main.js
expect_contains "$OUT" "files: config.json,message.txt"
expect_contains "$OUT" "message: read through the fs module"
expect_contains "$OUT" "exists: true false"
run_cli 0 session close "$FS"
pass

step "spewer: thousands of lines arrive in order"
run_cli 0 template create --name spewer
new_session spewer "$TESTAPPS/spewer"
SPEW=$SID
run_cli 0 exec run-file "$SPEW" main.js --args '{"lines": 3000}'
expect_eq "$(printf '%s\n' "$OUT" | grep -c '^line ')" "3000"
expect_contains "$OUT" "line 3000 of 3000"
pass

step "limits: max_events stops the spewer and the session stays ready"
run_cli 0 template set-limits spewer --max-events 100
run_cli 0 template get spewer
expect_contains "$OUT" "max_events=100"
run_cli 2 exec run-file "$SPEW" main.js
expect_contains "$OUT" "stopped: max_events limit of 100 reached"
expect_eq "$(session_status "$SPEW")" "ready"
run_cli 0 session close "$SPEW"
pass

step "limits: the wall limit stops an infinite loop, state survives"
run_cli 0 template create --name loop
run_cli 0 template set-limits loop --wall-ms 500 --cpu-ms 500
new_session loop "$TESTAPPS/loop"
LOOP=$SID
run_cli 0 exec repl "$LOOP" 'globalThis.kept = "still here"'
run_cli 2 exec run-file "$LOOP" main.js
expect_contains "$OUT" "looping forever"
expect_contains "$OUT" "limit of 500 ms reached"
LOOP_EXEC=$("$VMCTL" --json exec list "$LOOP" --limit 1 | json_get 0 id)
expect_eq "$("$VMCTL" --json exec get "$LOOP_EXEC" | json_get status)" "timeout"
run_cli 0 exec repl "$LOOP" 'kept'
expect_eq "$OUT" "still here"
run_cli 0 session close "$LOOP"
pass

step "limits: memhog is stopped by the memory limit"
run_cli 0 template create --name memhog
run_cli 0 template set-limits memhog --mem-mb 32 --wall-ms 10000 --cpu-ms 10000
new_session memhog "$TESTAPPS/memhog"
HOG=$SID
run_cli 2 exec run-file "$HOG" main.js
expect_contains "$OUT" "allocating"
expect_contains "$OUT" "mem_mb limit of 32 MB reached"
run_cli 0 session close "$HOG"
pass

step "crash: a worker killed with SIGKILL leaves its session crashed"
PID=$("$VMCTL" --json session get "$HELLO" | json_get runtime_meta pid)
kill -9 "$PID"
wait_for 10 has_status "$HELLO" crashed
run_cli 0 session get "$HELLO"
expect_contains "$OUT" "crashed"
expect_contains "$OUT" "Last error:"
run_cli 1 exec repl "$HELLO" '1'
expect_contains "$ERR" "(SESSION_NOT_READY)"
pass

step "crash: restart brings the session back with its startup globals"
run_cli 0 session restart "$HELLO"
expect_contains "$OUT" "ready"
expect_eq "$(session_status "$HELLO")" "ready"
run_cli 0 exec repl "$HELLO" 'greet("again")'
expect_eq "$OUT" "Hello, again!"
NEWPID=$("$VMCTL" --json session get "$HELLO" | json_get runtime_meta pid)
[ "$NEWPID" != "$PID" ] || fail "restart kept the old worker pid"
pass

step "replay: restart --replay makes a session's state again"
run_cli 0 exec repl "$HELLO" 'globalThis.kept = 41'
run_cli 0 exec repl "$HELLO" 'kept += 1'
run_cli 0 session restart "$HELLO" --replay
expect_contains "$OUT" "3 executions replayed"  # greet("again") since the restart, and these two
run_cli 0 exec repl "$HELLO" 'kept'
expect_eq "$OUT" "42"
pass

step "lifecycle: an idle timeout closes a session with the reason"
run_cli 0 template create --name idle
run_cli 0 template set-lifecycle idle --idle-timeout-ms 300
expect_contains "$OUT" "idle_timeout_ms=300"
new_session idle "$TESTAPPS/hello"
IDLE=$SID
wait_for 10 has_status "$IDLE" closed
run_cli 0 session get "$IDLE"
expect_contains "$OUT" "lifecycle.idle_timeout_ms"
pass

step "console: the web console's address signs a browser in"
run_cli 0 console
expect_contains "$OUT" "/?token="
pass

step "logs: the daemon log and a worker log"
run_cli 0 logs --tail 5
[ -n "$OUT" ] || fail "empty daemon log"
run_cli 0 logs --session "$HELLO"
pass

step "run: a one-shot file run on the running daemon"
run_cli 0 run "$TESTAPPS/fsreader/main.js"
expect_contains "$OUT" "message: read through the fs module"
run_cli 2 run "$TESTAPPS/loop/main.js" --timeout-ms 300
expect_contains "$OUT" "limit of 300 ms reached"
pass

step "close, then the summary counts no live session"
run_cli 0 session close "$HELLO"
run_cli 0 ops runtime-summary
expect_eq "$OUT" "0 live sessions"
run_cli 0 session list --status closed
expect_contains "$OUT" "$HELLO"
pass

step "down, then run starts and stops its own daemon"
run_cli 0 down
run_cli 0 run "$TESTAPPS/esm/main.mjs"
expect_contains "$OUT" "ESM TOTAL 13!!"
run_cli 1 status
expect_contains "$OUT" "not running"
pass
