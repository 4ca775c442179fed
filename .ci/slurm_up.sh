#!/usr/bin/env bash
# Bring up a real one-node SLURM cluster on this machine (Debian's slurm-wlm + munge) so that the
# pipeline's SLURM profile is tested against real slurmctld/slurmd rather than a mock.
#
# Must run as root. No cgroups, no accounting database: ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none, AccountingStorageType=accounting_storage/none (job status comes from
# squeue, kept for MinJobAge seconds after a job ends). CPUs and RealMemory are read from
# `slurmd -C`. The partition is called "main", the SLURM profile's default slurm_partition.
#
# Everything it starts is recorded (one PID file per daemon) in $STG_SLURM_DIR/started; .ci/slurm_down.sh
# stops exactly those. Usage: bash .ci/slurm_up.sh   (env: STG_SLURM_DIR, default /tmp/stg-slurm)
set -euo pipefail

DIR=${STG_SLURM_DIR:-/tmp/stg-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# written by stg .ci/slurm_up.sh"
PARTITION=main

if [[ $(id -u) -ne 0 ]]; then
    echo "slurm_up: must run as root (it installs packages and starts slurmctld/slurmd)" >&2
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
    echo "slurm_up: installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF"; then
    echo "slurm_up: $CONF exists and was not written by this script; refusing to replace a real site config" >&2
    exit 1
fi

for name in slurmctld slurmd; do
    if [[ -s $DIR/$name.pid ]] && kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null; then
        echo "slurm_up: $name already running (pid $(cat "$DIR/$name.pid")); stop it with .ci/slurm_down.sh first" >&2
        exit 1
    fi
done

mkdir -p "$DIR/state" "$DIR/spool" "$DIR/started"
HOST=$(hostname -s)
# slurmd -C: "NodeName=<host> CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=.."
NODE_LINE=$(slurmd -C | head -n 1)
if [[ $NODE_LINE != NodeName=* ]]; then
    echo "slurm_up: unexpected 'slurmd -C' output: $NODE_LINE" >&2
    exit 1
fi

cat >"$CONF" <<EOF
$MARKER: a single-node test cluster. Remove with .ci/slurm_down.sh.
ClusterName=stgci
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue answers for finished jobs this long; the executor needs >= 3x its first status-check delay.
MinJobAge=300
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
${NODE_LINE} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=${PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
echo "slurm_up: wrote $CONF"
echo "slurm_up: node: $NODE_LINE"

# munge: the package ships a key; make one if it is missing. The daemon runs as the munge user.
if [[ ! -s /etc/munge/munge.key ]]; then
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge

if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "slurm_up: a munged is already running; using it"
else
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do [[ -s /run/munge/munged.pid ]] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$DIR/started/munged.pid"
    munge -n </dev/null | unmunge >/dev/null
    echo "slurm_up: started munged (pid $(cat "$DIR/started/munged.pid"))"
fi

start_daemon() {  # name, pid file written by the daemon, command...
    local name=$1 pidfile=$2
    shift 2
    rm -f "$pidfile"
    "$@"
    for _ in $(seq 100); do [[ -s $pidfile ]] && break; sleep 0.1; done
    if [[ ! -s $pidfile ]]; then
        echo "slurm_up: $name did not start; its log:" >&2
        tail -n 40 "$DIR/$name.log" >&2 || true
        exit 1
    fi
    cp "$pidfile" "$DIR/started/$name.pid"
    echo "slurm_up: started $name (pid $(cat "$pidfile"))"
}

# -c: start from a clean state (no jobs or node states left over from an earlier run).
start_daemon slurmctld "$DIR/slurmctld.pid" slurmctld -c
start_daemon slurmd "$DIR/slurmd.pid" slurmd -N "$HOST"

for _ in $(seq 60); do
    state=$(sinfo --noheader --partition "$PARTITION" --format '%T' 2>/dev/null | head -n 1 || true)
    if [[ $state == idle ]]; then
        sinfo
        echo "slurm_up: cluster ready (partition $PARTITION, node $HOST idle)"
        exit 0
    fi
    sleep 1
done
echo "slurm_up: node did not become idle (state: '${state:-none}')" >&2
sinfo -N -l >&2 || true
tail -n 40 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
exit 1
