#!/usr/bin/env bash
# Run the workflow hand-off on one machine: three artmesh nodes in one mesh,
# each in its own temporary repo on free 127.0.0.1 ports, and the four agents'
# scripts each against its own node. Everything is removed at the end.
#
#   make build && examples/workflow/run_local.sh
#
# ARTMESH_BIN names another artmesh binary; PYTHON another interpreter.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${ARTMESH_BIN:-$root/bin/artmesh}
py=${PYTHON:-python3}
[ -x "$bin" ] || { echo "no artmesh binary at $bin: run 'make build' at the repository's root first" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/artmesh-workflow.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
unset ARTMESH_API ARTMESH_API_KEY

# start NAME: run a daemon on the repo $work/NAME and wait until it is ready.
start() {
	ARTMESH_PATH="$work/$1" "$bin" daemon --init --api 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0 --log-level warn \
		>/dev/null 2>>"$work/$1.log" &
	pids+=("$!")
	for _ in $(seq 300); do
		[ -s "$work/$1/api.addr" ] && break
		sleep 0.1
	done
	[ -s "$work/$1/api.addr" ] || { echo "node $1 did not start:" >&2; cat "$work/$1.log" >&2; exit 1; }
	echo "node $1: http://$(cat "$work/$1/api.addr")" >&2
}
url() { echo "http://$(cat "$work/$1/api.addr")"; }

start a
for n in b c; do
	ticket=$(ARTMESH_PATH="$work/a" "$bin" mesh invite --expires 10m 2>/dev/null)
	ARTMESH_PATH="$work/$n" "$bin" init --join "$ticket" --listen /ip4/127.0.0.1/tcp/0 >/dev/null
	start "$n"
done
# Wait until the first node reaches all three members and there is a leader.
ARTMESH_API=$(url a) ARTMESH_API_KEY=$(cat "$work/a/api.key") PYTHONPATH="$root/sdk/python" "$py" - <<'PY'
import time, artmesh
with artmesh.Client() as c:
    for _ in range(300):
        ms = c.mesh.members()
        if len(ms) == 3 and all(m.reachable for m in ms) and sum(m.leader for m in ms) == 1:
            break
        time.sleep(0.1)
    else:
        raise SystemExit(f"the mesh did not come together: {ms}")
PY

cd "$here"
setup=$(ARTMESH_API=$(url a) ARTMESH_API_KEY=$(cat "$work/a/api.key") "$py" setup_mesh.py --rows 1,2,3,4)
field() { "$py" -c 'import json, sys; d = json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, {"d": d}))' "$setup" "$1"; }
input_id=$(field 'd["input_id"]')
key() { field "d['keys']['$1']"; }
echo "input: $input_id" >&2

loaded=$(ARTMESH_API=$(url a) ARTMESH_API_KEY=$(key data-loader) "$py" data_loader.py "$input_id" --out "$work")
echo "data-loader on A wrote $loaded: $(cat "$loaded")" >&2
result_id=$(ARTMESH_API=$(url b) ARTMESH_API_KEY=$(key processor) "$py" processor.py "$input_id")
echo "processor on B wrote $result_id" >&2
saved_id=$(ARTMESH_API=$(url c) ARTMESH_API_KEY=$(key artifact-saver) "$py" artifact_saver.py "$input_id" "$result_id" --share-with analysts)
echo "artifact-saver on C saved processed-$input_id.json as $saved_id" >&2
mkdir -p "$work/analyst"
ARTMESH_API=$(url a) ARTMESH_API_KEY=$(key analyst) "$py" fetch_result.py "$input_id" --out "$work/analyst"
