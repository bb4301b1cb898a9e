#!/usr/bin/env bash
# Smoke test: the installed vmctl against a real daemon, through the CLI only.
#
# Starts a daemon with `vmctl up --detach` on a free port in a temporary
# VMCTL_HOME, walks the first steps of docs/cli.md (template, session, REPL,
# file run, close), then drives the fixture workers of testdata/plugins through
# `--engine` and checks each ends in the right status with a clear message and
# leaves no process behind. Safe to run in parallel; cleans up on any exit.
set -euo pipefail
SUITE=smoke
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/lib.sh"

# The fixture workers run from a path unique to this run, so that looking for
# leftovers (pgrep -f) cannot see another run's processes.
ln -s "$REPO/testdata/plugins" "$VMCTL_HOME/plugins"
PLUGINS=$VMCTL_HOME/plugins

# A fixture worker's command line starts with "$PY $PLUGINS/"; the daemon's
# names the plugins too (in its --engine options), but does not start so.
# Called in this shell, not through `bash -c "..."`, whose own command line
# would contain the pattern.
no_fixture_worker_left() {
    ! pgrep -f "^$PY $PLUGINS/" >/dev/null
}
PORT=$(free_port)

step "a command without a daemon says how to start one"
run_cli 1 --server-url "http://127.0.0.1:$PORT" ops health
expect_contains "$ERR" "cannot reach the vmctl daemon at http://127.0.0.1:$PORT"
expect_contains "$ERR" "vmctl up"
pass

step "up --no-auth is refused on an address other machines can reach"
run_cli 2 up --detach --no-auth --listen "0.0.0.0:$PORT"
expect_contains "$ERR" "--no-auth is refused"
[ ! -f "$VMCTL_HOME/daemon.json" ] || fail "a daemon was started"
pass

step "up --detach starts the daemon and records it"
run_cli 0 up --detach --listen "127.0.0.1:$PORT" --handshake-timeout 2 \
    --worktree-root "$TESTAPPS" \
    --engine "hang=$PY $PLUGINS/hangs_on_request.py" \
    --engine "die=$PY $PLUGINS/dies_mid_request.py" \
    --engine "flood=$PY $PLUGINS/floods_events.py" \
    --engine "nohello=$PY $PLUGINS/never_handshakes.py"
expect_contains "$OUT" "vmctl daemon running at http://127.0.0.1:$PORT"
[ -f "$VMCTL_HOME/daemon.json" ] || fail "no daemon.json"
pass

step "the home and the token are the owner's only; the CLI finds the token itself"
expect_eq "$(stat -c %a "$VMCTL_HOME")" "700"
expect_eq "$(stat -c %a "$VMCTL_HOME/token")" "600"
expect_eq "$(stat -c %a "$VMCTL_HOME/daemon.log")" "600"
run_cli 0 template list
run_cli 1 --token wrong-token template list
expect_contains "$ERR" "(UNAUTHORIZED)"
# Away from the daemon's home, the token comes from --token or the environment.
TOKEN=$(cat "$VMCTL_HOME/token")
ELSEWHERE=(env VMCTL_HOME="$WORK/elsewhere" "$VMCTL" --url "http://127.0.0.1:$PORT")
if "${ELSEWHERE[@]}" template list >/dev/null 2>&1; then fail "no token, yet not refused"; fi
"${ELSEWHERE[@]}" --token "$TOKEN" template list >/dev/null
VMCTL_AUTH_TOKEN=$TOKEN "${ELSEWHERE[@]}" template list >/dev/null
pass

step "up again says it is already running"
run_cli 0 up --detach --listen "127.0.0.1:$PORT"
expect_contains "$OUT" "already running"
pass

step "status and health"
run_cli 0 status
expect_contains "$OUT" "vmctl daemon running"
expect_contains "$OUT" "0 live"
run_cli 0 ops health
expect_eq "$OUT" "ok"
pass

step "template with startup files"
run_cli 0 template create --name hello
run_cli 0 template add-startup hello --path startup/00-greeting.js --order 0
run_cli 0 template add-startup hello --path startup/10-greet.js --order 10
run_cli 0 template list-startup hello
expect_contains "$OUT" "startup/10-greet.js"
pass

step "session on testapps/hello"
new_session hello "$TESTAPPS/hello"
HELLO=$SID
expect_eq "$(session_status "$HELLO")" "ready"
pass

step "repl sees the startup globals and keeps state"
run_cli 0 exec repl "$HELLO" 'greet("smoke")'
expect_eq "$OUT" "Hello, smoke!"
run_cli 0 exec repl "$HELLO" 'globalThis.counter = 41; console.log("set"); 1'
run_cli 0 exec repl "$HELLO" 'counter + 1'
expect_eq "$OUT" "42"
pass

step "repl reads code from stdin; console.warn goes to stderr"
OUT=$(echo 'console.warn("from stdin"); [1, 2]' | "$VMCTL" exec repl "$HELLO" - 2>"$WORK/stderr")
expect_eq "$OUT" "[ 1, 2 ]"
expect_eq "$(cat "$WORK/stderr")" "from stdin"
pass

step "--no-wait prints the execution id; exec follow prints its output"
run_cli 0 exec repl "$HELLO" --no-wait 'console.log("later"); 2 + 2'
EXEC=$OUT
run_cli 0 exec follow "$EXEC"
expect_eq "$OUT" $'later\n4'
run_cli 0 session list --json
expect_contains "$OUT" "$HELLO"
pass

step "a JavaScript exception exits 2 with its message"
run_cli 2 exec repl "$HELLO" 'null.boom'
expect_contains "$OUT" "TypeError"
pass

step "run-file prints console output and value"
run_cli 0 exec run-file "$HELLO" main.js --args '{"name": "file"}'
expect_contains "$OUT" "Hello, file!"
expect_contains "$OUT" "startup order: 00-greeting,10-greet"
pass

step "an API error prints Error: ... (CODE) and exits 1"
run_cli 1 exec run-file "$HELLO" no-such-file.js
expect_contains "$ERR" "(FILE_NOT_FOUND)"
run_cli 1 session get 00000000-0000-4000-8000-000000000000
expect_contains "$ERR" "Error: "
expect_contains "$ERR" "(SESSION_NOT_FOUND)"
pass

step "close the session"
run_cli 0 session close "$HELLO"
expect_eq "$(session_status "$HELLO")" "closed"
pass

# -- fixture workers -------------------------------------------------------------

step "a worker that hangs is stopped at the wall limit"
run_cli 0 template create --name hang --engine hang
run_cli 0 template set-limits hang --wall-ms 300 --cpu-ms 300
new_session hang "$TESTAPPS/hello"
HANG=$SID
run_cli 2 exec repl "$HANG" '1 + 1'
expect_contains "$OUT" "wall_ms limit of 300 ms"
EXEC=$("$VMCTL" --json exec list "$HANG" | json_get 0 id)
expect_eq "$("$VMCTL" --json exec get "$EXEC" | json_get status)" "timeout"
pass

step "a worker that dies mid-request crashes its session"
run_cli 0 template create --name die --engine die
new_session die "$TESTAPPS/hello"
DIE=$SID
run_cli 2 exec repl "$DIE" '1 + 1'
expect_contains "$OUT" "crashed"
expect_eq "$(session_status "$DIE")" "crashed"
run_cli 0 session get "$DIE"
expect_contains "$OUT" "Last error:"
pass

step "a worker that floods events is stopped at max_events"
run_cli 0 template create --name flood --engine flood
run_cli 0 template set-limits flood --max-events 100
new_session flood "$TESTAPPS/hello"
FLOOD=$SID
run_cli 2 exec repl "$FLOOD" '1 + 1'
expect_contains "$OUT" "stopped: max_events limit of 100 reached"
pass

step "a worker that never handshakes fails session creation"
run_cli 0 template create --name nohello --engine nohello
run_cli 1 session create --template-id nohello --worktree-path "$TESTAPPS/hello"
expect_contains "$ERR" "(STARTUP_FAILED)"
pass

step "no fixture worker is left once their sessions are closed"
for sid in "$HANG" "$DIE" "$FLOOD"; do
    run_cli 0 session close "$sid"
done
run_cli 0 ops runtime-summary
expect_eq "$OUT" "0 live sessions"
wait_for 10 no_fixture_worker_left
pass

step "down stops the daemon and removes the record"
run_cli 0 down
expect_contains "$OUT" "stopped"
[ ! -f "$VMCTL_HOME/daemon.json" ] || fail "daemon.json still there"
run_cli 1 status
expect_contains "$OUT" "not running"
no_fixture_worker_left || fail "fixture workers outlived the daemon: $(pgrep -af "^$PY $PLUGINS/")"
pass
