#!/usr/bin/env bash
# Start a throwaway single-node SLURM cluster on this machine for the SLURM tests, and print the
# lines that hand it to them:
#
#   eval "$(.ci/slurm.sh)"        # exports SLURM_CONF and LAUNCHER_TEST_SLURM=1
#   .ci/slurm.sh stop             # stops slurmctld, slurmd and munged
#
# Installs Debian's slurmctld, slurmd, slurm-client and munge with apt-get when slurmctld is not
# found (needs root: slurmd starts jobs as their owner). The cluster is one node (this host, its
# CPU count, memory less 1 GiB) in one partition "debug", without accounting (no slurmdbd) and
# without cgroups (proctrack/linuxproc, task/none), so it runs in a container. Its config, state
# and logs are in $SLURMTEST_DIR (default /tmp/launcher-slurm); nothing is written to /etc/slurm:
# the clients find the config through SLURM_CONF.
set -euo pipefail

DIR="${SLURMTEST_DIR:-/tmp/launcher-slurm}"
CONF="$DIR/slurm.conf"

log() { echo "slurm.sh: $*" >&2; }
# The daemons' pid files name the processes this script started; stop only those, and wait
# (10 s at most each) until they are gone.
stop_daemons() {
  local name pid waited
  for name in "$@"; do
    pid=$(cat "$DIR/$name.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" || true
      waited=0
      while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
    fi
    rm -f "$DIR/$name.pid"
  done
}

if [ "${1:-start}" = stop ]; then
  stop_daemons slurmd slurmctld munged
  exit 0
fi

if ! command -v slurmctld >/dev/null 2>&1 && [ ! -x /usr/sbin/slurmctld ]; then
  if [ "$(id -u)" != 0 ]; then log "SLURM is not installed and this is not root"; exit 1; fi
  log "installing slurmctld, slurmd, slurm-client and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >&2
fi
if [ "$(id -u)" != 0 ]; then log "slurmd must run as root to start jobs as their owner"; exit 1; fi
PATH="/usr/sbin:$PATH"

HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/munge"

# --- munge: the key that authenticates the daemons to each other ---
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  mkdir -p /etc/munge
  (umask 077; head -c 1024 /dev/urandom > /etc/munge/munge.key)
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
fi
if ! munge -n >/dev/null 2>&1 </dev/null; then
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  log "starting munged"
  runuser -u munge -- munged --force   # returns once the daemon (a forked child) is ready
  cp /run/munge/munged.pid "$DIR/munged.pid"
fi

cat > "$CONF" <<EOF
# Written by .ci/slurm.sh: a throwaway single-node cluster for the tests.
ClusterName=launcher-test
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
MpiDefault=none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$CONF"

if ! scontrol ping 2>/dev/null | grep -q "is UP"; then
  stop_daemons slurmd slurmctld
  log "starting slurmctld and slurmd ($HOST: $CPUS CPUs, $MEM_MB MB)"
  slurmctld -f "$CONF" -c   # -c: a fresh controller state, no jobs left from a last run
  slurmd -f "$CONF"
else
  scontrol reconfigure >&2
fi

# Wait (30 s at most) until the node takes jobs.
deadline=$(( $(date +%s) + 30 ))
until sinfo -h -N -o "%t" 2>/dev/null | grep -qx "idle"; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    log "the node did not become idle within 30 s: $(sinfo -h -N -o '%N %t %E' 2>&1 | head -n 1)"
    tail -n 5 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
    exit 1
  fi
  scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
  sleep 1
done
log "node $HOST is idle in partition debug"

echo "export SLURM_CONF=$CONF"
echo "export LAUNCHER_TEST_SLURM=1"
