#!/usr/bin/env bash
# Stop exactly the daemons .ci/slurm_up.sh started (their PIDs are in $STG_SLURM_DIR/started),
# cancel our jobs first, and remove the slurm.conf it wrote. Safe to run when nothing is up.
# Usage: bash .ci/slurm_down.sh   (env: STG_SLURM_DIR, default /tmp/stg-slurm)
set -uo pipefail

DIR=${STG_SLURM_DIR:-/tmp/stg-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# written by stg .ci/slurm_up.sh"

if [[ ! -d $DIR/started ]]; then
    echo "slurm_down: nothing recorded in $DIR/started; nothing to stop"
    exit 0
fi

# Cancel what is still queued or running so slurmd does not leave job processes behind.
if [[ -s $DIR/started/slurmctld.pid ]] && command -v scancel >/dev/null; then
    scancel --full --quiet --user "$(id -un)" 2>/dev/null || true
    sleep 1
fi

stop() {  # name: TERM the recorded PID (if it is still that daemon), wait, then KILL
    local name=$1 pidfile=$DIR/started/$1.pid pid
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; then
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm_down: $name (pid $pid) ignored TERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "slurm_down: stopped $name (pid $pid)"
    else
        echo "slurm_down: $name (pid $pid) was not running"
    fi
    rm -f "$pidfile"
}

stop slurmd
stop slurmctld
stop munged

if [[ -f $CONF ]] && grep -qF "$MARKER" "$CONF"; then
    rm -f "$CONF"
    echo "slurm_down: removed $CONF"
fi
exit 0
