# Shared by ci/smoke.sh and ci/e2e.sh; source it right after `set -euo pipefail`.
#
# Gives each run its own VMCTL_HOME (mktemp -d) and a free port, so runs can go
# in parallel, and an EXIT trap that stops the daemon and removes the home
# however the script ends. Every check is a `step NAME` ... `pass` pair; the
# first failing command ends the script (set -e) and the trap reports that step.
# The last line printed is "SUITE: N passed, M failed".

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${VMCTL:-}" ]; then
    if [ -x "$REPO/.venv/bin/vmctl" ]; then
        VMCTL=$REPO/.venv/bin/vmctl
    else
        VMCTL=$(command -v vmctl) || { echo "vmctl is not installed: run make install" >&2; exit 1; }
    fi
fi
# The Python that runs the fixture workers: the one vmctl is installed in.
PY=$(dirname "$VMCTL")/python
[ -x "$PY" ] || PY=$(command -v python3)
TESTAPPS=$REPO/testapps

unset VMCTL_URL VMCTL_AUTH_TOKEN
VMCTL_HOME=$(mktemp -d "${TMPDIR:-/tmp}/vmctl-ci.XXXXXX")
export VMCTL_HOME NO_COLOR=1
WORK=$VMCTL_HOME/ci
mkdir -p "$WORK"

SUITE=${SUITE:-ci}
PASSED=0
FAILED=0
CURRENT=""
OUT=""
ERR=""

finish() {
    local rc=$?
    set +e
    if [ "$rc" -ne 0 ]; then
        FAILED=$((FAILED + 1))
        echo "FAIL  ${CURRENT:-setup} (exit $rc)"
        if [ -f "$VMCTL_HOME/daemon.log" ]; then
            echo "--- last lines of the daemon log ---"
            tail -n 30 "$VMCTL_HOME/daemon.log"
        fi
    fi
    "$VMCTL" down >/dev/null 2>&1
    rm -rf "$VMCTL_HOME"
    echo "$SUITE: $PASSED passed, $FAILED failed"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

step() {
    CURRENT=$1
}

pass() {
    PASSED=$((PASSED + 1))
    echo "ok    $CURRENT"
    CURRENT=""
}

fail() {
    echo "  $*" >&2
    return 1
}

# run_cli EXPECTED_EXIT ARGS...: run vmctl, keep stdout in $OUT and stderr in $ERR.
run_cli() {
    local want=$1
    shift
    local rc=0
    OUT=$("$VMCTL" "$@" 2>"$WORK/stderr") || rc=$?
    ERR=$(cat "$WORK/stderr")
    if [ "$rc" != "$want" ]; then
        fail "vmctl $* exited $rc, expected $want" $'\n'"stdout: $OUT"$'\n'"stderr: $ERR"
    fi
}

expect_contains() {
    case "$1" in
        *"$2"*) ;;
        *) fail "expected to find: $2" $'\n'"in: $1" ;;
    esac
}

expect_eq() {
    [ "$1" = "$2" ] || fail "expected: $2" $'\n'"got:      $1"
}

# json_get KEY...: read JSON on stdin and print the value at that path.
json_get() {
    "$PY" -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1:]:
    value = value[int(key)] if isinstance(value, list) else value[key]
print(value if isinstance(value, str) else json.dumps(value))
' "$@"
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for SECONDS COMMAND...: poll (bounded) until COMMAND succeeds.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for: $*"
        sleep 0.1
    done
}

session_status() {
    "$VMCTL" --json session get "$1" | json_get status
}

has_status() {
    [ "$(session_status "$1")" = "$2" ]
}

# new_session TEMPLATE DIR: create a session through the CLI; its id lands in $SID.
new_session() {
    run_cli 0 --json session create --template-id "$1" --worktree-path "$2"
    SID=$(json_get id <<<"$OUT")
}
