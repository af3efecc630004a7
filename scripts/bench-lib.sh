# Helpers the bench scripts share; source it from one of them.

# free_port prints a loopback TCP port that was free a moment ago.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_ready waits up to 30 s for URL to answer, else exits naming the script.
wait_ready() {
  for _ in $(seq 300); do curl -fs "$1" >/dev/null && return 0; sleep 0.1; done
  echo "$(basename "$0" .sh): $1 never became ready" >&2; exit 1
}

# cpu_ticks prints a process's user + system CPU time in clock ticks.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
