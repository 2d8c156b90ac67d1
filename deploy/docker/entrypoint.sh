#!/bin/bash
# Entry point of the Conveyor image: a role name (head, worker, serve, init) or any
# command. Roles read their settings from the environment (deploy/compose/docker-compose.yml).
set -euo pipefail

die() {
    echo "conveyor-entrypoint: $*" >&2
    exit 64
}

# Refuse missing, short or well-known secrets: a stack must not start with a default password.
require_secret() {
    local name=$1 value=${!1:-}
    local fix="create the secrets file with 'conveyor deploy secrets deploy/compose/.env'"
    [ -n "$value" ] || die "$name is not set; $fix"
    [ "${#value}" -ge 16 ] || die "$name is shorter than 16 characters; $fix"
    case "${value,,}" in
        *replace-me* | *changeme* | *change-me* | password* | secret* | conveyor* | admin*)
            die "$name looks like a default or example value; $fix" ;;
    esac
}

ray_node_options() {
    echo "--num-cpus=${CONVEYOR_NODE_CPUS:-1}" \
        "--object-store-memory=$((${CONVEYOR_OBJECT_STORE_MB:-512} * 1024 * 1024))" \
        "--disable-usage-stats"
}

run_head() {
    require_secret POSTGRES_PASSWORD
    require_secret RAY_AUTH_TOKEN
    export RAY_AUTH_MODE=token
    # Two processes: the Ray head (also a worker node) and `conveyor up` as its driver.
    # Whichever ends first ends the container; SIGTERM lets `conveyor up` hand items back.
    # shellcheck disable=SC2046
    ray start --head --port=6379 --dashboard-host=0.0.0.0 --block $(ray_node_options) \
        > >(tee /tmp/ray-head.log) 2>&1 &
    local ray_pid=$!
    # The driver can join only once the head's raylet runs.
    until grep -q "Ray runtime started" /tmp/ray-head.log 2>/dev/null; do
        kill -0 $ray_pid 2>/dev/null || die "the Ray head did not start"
        sleep 1
    done
    conveyor up --ray-address "$(hostname):6379" --host 0.0.0.0 \
        --port "${CONVEYOR_API_PORT:-8000}" "$@" &
    local up_pid=$!
    local stopping=0
    trap 'stopping=1; kill -TERM $up_pid 2>/dev/null; wait $up_pid; kill -TERM $ray_pid' TERM INT
    wait -n $ray_pid $up_pid || true
    kill -TERM $up_pid 2>/dev/null && wait $up_pid
    kill -TERM $ray_pid 2>/dev/null || true
    wait || true
    [ "$stopping" -eq 1 ] || die "the Ray head or conveyor up ended; stopping the container"
}

run_worker() {
    require_secret RAY_AUTH_TOKEN
    export RAY_AUTH_MODE=token
    # shellcheck disable=SC2046
    exec conveyor worker --head "${CONVEYOR_HEAD:-head:6379}" -- $(ray_node_options) "$@"
}

run_serve() {
    require_secret POSTGRES_PASSWORD
    exec conveyor serve --host 0.0.0.0 --port "${CONVEYOR_SERVE_PORT:-8400}" \
        --workers "${CONVEYOR_SERVE_WORKERS:-2}" "$@"
}

run_init() {
    require_secret POSTGRES_PASSWORD
    require_secret CONVEYOR_ADMIN_PASSWORD
    exec conveyor deploy init "$@"
}

role=${1:-head}
[ $# -gt 0 ] && shift
echo "$role" >/tmp/conveyor-role  # read by the HEALTHCHECK (conveyor-healthcheck)
case "$role" in
    head) run_head "$@" ;;
    worker) run_worker "$@" ;;
    serve) run_serve "$@" ;;
    init) run_init "$@" ;;
    *) exec "$role" "$@" ;;
esac
