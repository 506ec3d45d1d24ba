#!/usr/bin/env bash
# bench/run.sh: the probing benchmark (docs/benchmarks.md).
#
# In one run on loopback it measures, for each prober, the CPU time
# (user+system from /proc/<pid>/stat) it spends per probe at a paced rate,
# with probes counted at a local HTTP target and a fresh connection per
# probe:
#   naive      bench/cmd/naiveloop, 1,000 targets @ 1s (the naive floor)
#   blackbox   prometheus-blackbox-exporter driven through /probe by
#              bench/cmd/pacer, 1,000 targets @ 1s (only the exporter's CPU
#              is counted)
#   rd1k       reliabilityd, 1,000 probes @ 1s on its own schedule
#   rd10k      reliabilityd, 10,000 probes @ 10s: also max RSS, late and
#              skipped runs, and the wall time of a full /metrics scrape
# Then it checks the floors and writes everything to bench/out/<run>/.
#
# Prerequisite (installs nothing): apt-get install prometheus-blackbox-exporter
# (or pass --skip-blackbox). Traffic stays on 127.0.0.1.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bash bench/run.sh [options]
  --warmup SEC         warm-up before each window (default 10)
  --window SEC         measured window per scenario (default 30)
  --warmup-10k SEC     warm-up of the 10,000-probe scenario (default 20)
  --only LIST          comma-separated scenarios: naive,blackbox,rd1k,rd10k
  --repeat N           run the scenarios N times, interleaved (default 1);
                       floors use the median CPU per probe and the worst
                       rd10k figures over the repetitions
  --skip-blackbox      leave out the blackbox_exporter scenario
  --skip-reliabilityd  leave out the reliabilityd scenarios
  --profile            after each reliabilityd window, save a 20 s CPU
                       profile and a heap profile from its /debug/pprof
                       (started with --web.enable-pprof when it has it)
  --wait-idle SEC      before each scenario, wait up to SEC for the machine
                       to be idle (< 0.15 busy cores over 5 s; default 0: no wait)
  --out DIR            results root (default bench/out)
  --report DIR         only re-render DIR/results.md from a finished run's
                       files (DIR/results.tsv and the rest); runs nothing
EOF
}

WARMUP=10
WINDOW=30
WARMUP_10K=20
ONLY="naive,blackbox,rd1k,rd10k"
SKIP_BLACKBOX=0
SKIP_RD=0
PROFILE=0
WAIT_IDLE=0
REPEAT=1
REPORT_ONLY=""
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT_ROOT="$ROOT/bench/out"

while (($#)); do
	case "$1" in
	--warmup) WARMUP=$2; shift 2 ;;
	--window) WINDOW=$2; shift 2 ;;
	--warmup-10k) WARMUP_10K=$2; shift 2 ;;
	--only) ONLY=$2; shift 2 ;;
	--skip-blackbox) SKIP_BLACKBOX=1; shift ;;
	--skip-reliabilityd) SKIP_RD=1; shift ;;
	--profile) PROFILE=1; shift ;;
	--wait-idle) WAIT_IDLE=$2; shift 2 ;;
	--repeat) REPEAT=$2; shift 2 ;;
	--out) OUT_ROOT=$2; shift 2 ;;
	--report) REPORT_ONLY=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done
for v in "$WARMUP" "$WINDOW" "$WARMUP_10K" "$WAIT_IDLE"; do
	[[ $v =~ ^[0-9]+$ && $v -le 3600 ]] || { echo "run.sh: durations are whole seconds up to 3600, got $v" >&2; exit 2; }
done
((WINDOW > 0)) || { echo "run.sh: --window must be positive" >&2; exit 2; }
[[ $REPEAT =~ ^[0-9]+$ ]] && ((REPEAT >= 1 && REPEAT <= 20)) || { echo "run.sh: --repeat must be 1..20" >&2; exit 2; }

wanted() { [[ ",$ONLY," == *",$1,"* ]]; }
if ((SKIP_BLACKBOX)); then ONLY=${ONLY//blackbox/}; fi
if ((SKIP_RD)); then ONLY=${ONLY//rd10k/}; ONLY=${ONLY//rd1k/}; fi

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# measure_all builds, runs every scenario and fills $OUT; the report below
# only reads $OUT, so --report can re-render a finished run.
measure_all() {
# --- prerequisites ---------------------------------------------------------
for tool in go curl awk ss getconf; do
	command -v "$tool" >/dev/null || die "$tool is required"
done
BLACKBOX_BIN=$(command -v prometheus-blackbox-exporter || command -v blackbox_exporter || true)
if wanted blackbox && [[ -z $BLACKBOX_BIN ]]; then
	die "blackbox_exporter not found: apt-get install prometheus-blackbox-exporter, or pass --skip-blackbox"
fi
CLK_TCK=$(getconf CLK_TCK)

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$OUT_ROOT/$RUN_ID"
BIN="$OUT/bin"
mkdir -p "$BIN"
ln -sfn "$RUN_ID" "$OUT_ROOT/latest"
RESULTS="$OUT/results.tsv"
printf 'scenario\tprobes\tinterval_s\texpected_rate\tachieved_rate\twindow_s\tcpu_s\tcpu_ms_per_probe\ttarget_cpu_ms_per_probe\trss_max_mb\tprober_failures\tmachine_busy_cores\tpacer_cpu_ms_per_probe\tprobes_per_connection\trep\n' >"$RESULTS"
log "results in $OUT"

# --- processes: every one we start is stopped on exit ----------------------
PIDS=()
# DRIVER_PID is the pacer while the blackbox scenario runs: its CPU is
# reported apart, never counted as the exporter's.
DRIVER_PID=""
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
# cleanup stops in reverse start order, so probers stop before their target
# and a stopped target never shows up as prober failures.
cleanup() {
	local i
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
	PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM
stop_all() { cleanup; }

# free_port prints a loopback TCP port nobody listens on.
free_port() {
	local p
	for ((p = 19100 + RANDOM % 500; p < 19700; p++)); do
		if [[ -z $(ss -Hltn "sport = :$p") ]]; then echo "$p"; return 0; fi
	done
	die "no free port in 19100-19699"
}

# wait_http URL TRIES: until URL answers 2xx, 0.1 s apart.
wait_http() {
	local url=$1 tries=$2 i
	for ((i = 0; i < tries; i++)); do
		curl -sf -o /dev/null --max-time 2 "$url" && return 0
		sleep 0.1
	done
	return 1
}

# --- /proc readings --------------------------------------------------------
# cpu_ticks PID: utime+stime (fields 14 and 15 of /proc/PID/stat, counted
# after the parenthesised command name, which may hold spaces).
cpu_ticks() {
	local stat
	stat=$(<"/proc/$1/stat") || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo $((${12} + ${13}))
}
# busy_ticks: machine-wide non-idle ticks (all of /proc/stat's cpu line but
# idle and iowait), to show how busy the machine was besides the prober.
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
# background_busy SEC: cores kept busy over SEC seconds with nothing of ours
# running; a shared machine skews every figure, so it is logged.
background_busy() {
	local b0 b1
	b0=$(busy_ticks); sleep "$1"; b1=$(busy_ticks)
	awk -v d=$((b1 - b0)) -v hz="$CLK_TCK" -v s="$1" 'BEGIN { printf "%.2f\n", d / hz / s }'
}
# wait_idle: with --wait-idle, wait (bounded) until nothing else keeps the
# machine busy, so the next scenario does not share its cores.
wait_idle() {
	((WAIT_IDLE > 0)) || return 0
	local deadline=$((SECONDS + WAIT_IDLE)) busy
	while ((SECONDS < deadline)); do
		busy=$(background_busy 5)
		awk -v b="$busy" 'BEGIN { exit !(b < 0.15) }' && { log "machine idle ($busy busy cores)"; return 0; }
		log "machine busy ($busy cores), waiting"
	done
	log "warning: machine still busy after ${WAIT_IDLE}s; measuring anyway"
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }

# fetch_metrics URL FILE: a slow or failed scrape is logged, not fatal: it
# is itself a finding.
fetch_metrics() {
	curl -sf --max-time 60 -o "$2" "$1" || { log "warning: scrape of $1 failed (curl exit $?)"; rm -f "$2"; }
}

# metric_sum FILE NAME: sum of all series of NAME, or "missing".
metric_sum() {
	[[ -f $1 ]] || { echo missing; return 0; }
	awk -v name="$2" '
		$0 !~ /^#/ && ($1 == name || index($1, name "{") == 1) { s += $NF; found = 1 }
		END { if (found) printf "%.0f\n", s; else print "missing" }' "$1"
}
delta() { if [[ $1 == missing || $2 == missing ]]; then echo missing; else echo $(($2 - $1)); fi; }

# --- build -----------------------------------------------------------------
cd "$ROOT"
log "building bench programs"
for prog in target naiveloop pacer; do
	go build -o "$BIN/$prog" "./bench/cmd/$prog"
done
if wanted rd1k || wanted rd10k; then
	log "building reliabilityd"
	if ! go build -o "$BIN/reliabilityd" ./cmd/reliabilityd 2>"$OUT/reliabilityd-build.log"; then
		cat "$OUT/reliabilityd-build.log" >&2
		die "cmd/reliabilityd does not build (see above); pass --skip-reliabilityd to run the rest"
	fi
	"$BIN/reliabilityd" --help 2>&1 | grep -q -- --config.file ||
		die "reliabilityd --help shows no --config.file; pass --skip-reliabilityd to run the rest"
fi

# --- machine ---------------------------------------------------------------
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc: $(nproc)"
	echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "kernel: $(uname -sr)"
	echo "go: $(go version | awk '{print $3}')"
	echo "clk_tck: $CLK_TCK"
	if [[ -n $BLACKBOX_BIN ]]; then
		echo "blackbox_exporter: $("$BLACKBOX_BIN" --version 2>&1 | head -1)"
	fi
	if [[ -x $BIN/reliabilityd ]]; then
		echo "reliabilityd: $("$BIN/reliabilityd" --version 2>&1 | head -1) (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ', dirty tree'))"
	fi
	echo "background load before the run: $(background_busy 3) busy cores (should be ~0)"
	echo "command: bash bench/run.sh --warmup $WARMUP --window $WINDOW --warmup-10k $WARMUP_10K --only $ONLY --repeat $REPEAT --wait-idle $WAIT_IDLE"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# --- scenario pieces -------------------------------------------------------
# start_target NAME: sets TARGET_PID, PROBE_ADDR, COUNT_ADDR.
start_target() {
	local addr_file="$OUT/$1.target.addr" i
	"$BIN/target" --addr-file="$addr_file" >"$OUT/$1.target.log" 2>&1 &
	TARGET_PID=$!
	PIDS+=("$TARGET_PID")
	for ((i = 0; i < 100; i++)); do
		[[ -s $addr_file ]] && break
		sleep 0.1
	done
	[[ -s $addr_file ]] || die "$1: target did not start (see $OUT/$1.target.log)"
	read -r PROBE_ADDR COUNT_ADDR <"$addr_file"
}
target_count() { curl -sf --max-time 5 "http://$COUNT_ADDR/count"; }
target_conns() { curl -sf --max-time 5 "http://$COUNT_ADDR/connections"; }

# measure TAG PID N INTERVAL_S WARMUP_S [METRICS_URL]: warm up, then read
# CPU and the target's counts around a WINDOW-second window, sampling RSS
# every second; leaves the window figures in M_* variables for record.
measure() {
	local name=$1 pid=$2 n=$3 interval=$4 warmup=$5 metrics_url=${6:-}
	log "$name: warm-up ${warmup}s"
	sleep "$warmup"
	kill -0 "$pid" 2>/dev/null || die "$name: prober exited during warm-up"
	[[ -z $metrics_url ]] || fetch_metrics "$metrics_url" "$OUT/$name.metrics.before"

	local t0 c0 k0 cpu0 tcpu0 dcpu0=0 b0 t1 c1 k1 cpu1 tcpu1 dcpu1=0 b1 rss max_rss=0 s
	k0=$(target_conns); c0=$(target_count); cpu0=$(cpu_ticks "$pid"); tcpu0=$(cpu_ticks "$TARGET_PID"); b0=$(busy_ticks); t0=$(now)
	[[ -z $DRIVER_PID ]] || dcpu0=$(cpu_ticks "$DRIVER_PID")
	log "$name: measuring ${WINDOW}s"
	for ((s = 0; s < WINDOW; s++)); do
		sleep 1
		rss=$(rss_kb "$pid") || die "$name: prober exited during the window"
		((rss > max_rss)) && max_rss=$rss
	done
	c1=$(target_count); k1=$(target_conns); cpu1=$(cpu_ticks "$pid"); tcpu1=$(cpu_ticks "$TARGET_PID"); b1=$(busy_ticks); t1=$(now)
	[[ -z $DRIVER_PID ]] || dcpu1=$(cpu_ticks "$DRIVER_PID")
	[[ -z $metrics_url ]] || fetch_metrics "$metrics_url" "$OUT/$name.metrics.after"

	read -r M_ELAPSED M_PROBES M_RATE M_CPU M_CPU_MS M_TARGET_MS M_DRIVER_MS M_RSS_MB M_BUSY < <(awk \
		-v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v p0="$cpu0" -v p1="$cpu1" \
		-v q0="$tcpu0" -v q1="$tcpu1" -v d0="$dcpu0" -v d1="$dcpu1" -v b0="$b0" -v b1="$b1" \
		-v hz="$CLK_TCK" -v rss="$max_rss" 'BEGIN {
			el = t1 - t0; n = c1 - c0; cpu = (p1 - p0) / hz
			ms = n > 0 ? cpu * 1000 / n : -1
			tms = n > 0 ? (q1 - q0) / hz * 1000 / n : -1
			dms = n > 0 ? (d1 - d0) / hz * 1000 / n : -1
			printf "%.2f %d %.1f %.2f %.3f %.3f %.3f %.1f %.2f\n", el, n, n / el, cpu, ms, tms, dms, rss * 1024 / 1e6, (b1 - b0) / hz / el
		}')
	# Probes per connection must be 1: every probe on a fresh connection.
	M_PER_CONN=$(awk -v n=$((c1 - c0)) -v k=$((k1 - k0)) 'BEGIN { printf "%.3f", (k > 0 ? n / k : -1) }')
	M_EXPECTED=$(awk -v n="$n" -v i="$interval" 'BEGIN { printf "%.1f", n / i }')
	M_RATE_OK=$(awk -v r="$M_RATE" -v e="$M_EXPECTED" 'BEGIN { print (r >= 0.98 * e && r <= 1.02 * e) ? "ok" : "OFF" }')
	log "$name: $M_PROBES probes in ${M_ELAPSED}s = $M_RATE/s (expected $M_EXPECTED/s: $M_RATE_OK), CPU ${M_CPU}s = $M_CPU_MS ms/probe, max RSS $M_RSS_MB MB, machine busy $M_BUSY cores, $M_PER_CONN probes per connection${DRIVER_PID:+, pacer $M_DRIVER_MS ms/probe}"
}

# record NAME N INTERVAL FAILURES: appends the M_* figures of repetition
# $REP to $RESULTS.
record() {
	local driver_ms=-
	[[ -z $DRIVER_PID ]] || driver_ms=$M_DRIVER_MS
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$M_EXPECTED" "$M_RATE" \
		"$M_ELAPSED" "$M_CPU" "$M_CPU_MS" "$M_TARGET_MS" "$M_RSS_MB" "$4" "$M_BUSY" "$driver_ms" "$M_PER_CONN" "$REP" >>"$RESULTS"
}

# failures_from_log FILE: the failures=N its pace stats line reports.
failures_from_log() { sed -n 's/.*runs=[0-9]* failures=\([0-9]*\) skipped=\([0-9]*\).*/\1 (skipped slots \2)/p' "$1" | tail -1; }

# Scenario files are named <scenario>.r<repetition>.*; results.tsv keeps
# the scenario and the repetition in separate columns.
run_naive() {
	local n=1000 interval=1 tag=naive.r$REP
	log "$tag: $n targets @ ${interval}s"
	start_target "$tag"
	"$BIN/naiveloop" --targets=$n --interval=${interval}s --base-url="http://$PROBE_ADDR/t/" >"$OUT/$tag.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	measure "$tag" "$pid" $n $interval "$WARMUP"
	stop_all
	record naive $n $interval "$(failures_from_log "$OUT/$tag.log")"
}

run_blackbox() {
	local n=1000 interval=1 port tag=blackbox.r$REP
	log "$tag: $n targets @ ${interval}s through /probe"
	start_target "$tag"
	port=$(free_port) && [[ -n $port ]] || die "no free loopback port in 19100-19699"
	"$BLACKBOX_BIN" --config.file="$ROOT/bench/blackbox.yml" --web.listen-address="127.0.0.1:$port" \
		--log.level=warn >"$OUT/$tag.exporter.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	wait_http "http://127.0.0.1:$port/" 100 || die "blackbox_exporter did not start (see $OUT/$tag.exporter.log)"
	"$BIN/pacer" --targets=$n --interval=${interval}s --exporter-url="http://127.0.0.1:$port/probe" \
		--target-base-url="http://$PROBE_ADDR/t/" >"$OUT/$tag.pacer.log" 2>&1 &
	DRIVER_PID=$!
	PIDS+=("$DRIVER_PID")
	measure "$tag" "$pid" $n $interval "$WARMUP"
	stop_all
	record blackbox $n $interval "$(failures_from_log "$OUT/$tag.pacer.log")"
	DRIVER_PID=""
}

# write_rd_config FILE N INTERVAL_S: one service, N HTTP probes of the target.
write_rd_config() {
	awk -v n="$2" -v interval="$3" -v addr="$PROBE_ADDR" 'BEGIN {
		timeout = interval < 5 ? interval : 5
		print "global:"
		print "  max_concurrent_probes: 1000"
		print "services:"
		print "  - name: bench"
		print "    probes:"
		for (i = 0; i < n; i++) {
			printf "      - name: t%d\n        interval: %ds\n        timeout: %ds\n", i, interval, timeout
			printf "        http: {url: \"http://%s/t/%d\"}\n", addr, i
		}
	}' >"$1"
}

# run_rd NAME N INTERVAL_S WARMUP_S: reliabilityd on its own schedule.
run_rd() {
	local name=$1 n=$2 interval=$3 warmup=$4 port tag=$1.r$REP
	log "$tag: reliabilityd, $n probes @ ${interval}s"
	start_target "$tag"
	port=$(free_port) && [[ -n $port ]] || die "no free loopback port in 19100-19699"
	write_rd_config "$OUT/$tag.yml" "$n" "$interval"
	mkdir -p "$OUT/$tag.storage"
	local extra=()
	# pprof only serves on request, so enabling it costs nothing between
	# profiles; it is asked for only when a profile is wanted.
	if ((PROFILE)) && "$BIN/reliabilityd" --help 2>&1 | grep -q -- web.enable-pprof; then
		extra+=(--web.enable-pprof)
	fi
	"$BIN/reliabilityd" --config.file="$OUT/$tag.yml" --web.listen-address="127.0.0.1:$port" \
		--storage.path="$OUT/$tag.storage" --log.level=warn "${extra[@]}" >"$OUT/$tag.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	local metrics="http://127.0.0.1:$port/metrics"
	wait_http "$metrics" 300 || die "$tag: reliabilityd did not serve /metrics (see $OUT/$tag.log)"
	measure "$tag" "$pid" "$n" "$interval" "$warmup" "$metrics"

	local before="$OUT/$tag.metrics.before" after="$OUT/$tag.metrics.after" m
	for m in reliabilityd_scheduler_late_runs_total reliabilityd_scheduler_skipped_runs_total probe_failures_total probe_runs_total; do
		printf -v "RD_${m}" '%s' "$(delta "$(metric_sum "$before" $m)" "$(metric_sum "$after" $m)")"
		printf -v "RD_${m}_TOTAL" '%s' "$(metric_sum "$after" $m)"
	done
	# probe_failures_total has a series per failure reason seen, so no
	# series at all means no failure yet.
	[[ $RD_probe_failures_total == missing && $RD_probe_runs_total != missing ]] && RD_probe_failures_total=0
	local failures="$RD_probe_failures_total (probe_runs_total +$RD_probe_runs_total between the scrapes around the window)"
	{
		echo "late_runs_window=$RD_reliabilityd_scheduler_late_runs_total"
		echo "late_runs_since_start=$RD_reliabilityd_scheduler_late_runs_total_TOTAL"
		echo "skipped_runs_window=$RD_reliabilityd_scheduler_skipped_runs_total"
		echo "skipped_runs_since_start=$RD_reliabilityd_scheduler_skipped_runs_total_TOTAL"
		echo "probe_failures_window=$RD_probe_failures_total"
		echo "probe_runs_window=$RD_probe_runs_total"
	} >"$OUT/$tag.scheduler.txt"
	scrape_times "$tag" "$metrics"
	if ((PROFILE)); then
		log "$tag: CPU profile (20 s)"
		curl -sf --max-time 40 -o "$OUT/$tag.cpu.pprof" "http://127.0.0.1:$port/debug/pprof/profile?seconds=20" ||
			log "$tag: no /debug/pprof/profile"
		curl -sf --max-time 40 -o "$OUT/$tag.heap.pprof" "http://127.0.0.1:$port/debug/pprof/heap" ||
			log "$tag: no /debug/pprof/heap"
	fi
	stop_all
	record "$name" "$n" "$interval" "$failures"
}

# scrape_times NAME URL: wall time of 5 full scrapes, plain and gzip,
# while the daemon keeps probing; writes $OUT/NAME.scrape.txt.
scrape_times() {
	local name=$1 url=$2 k plain=() gz=() size gzsize
	for ((k = 0; k < 5; k++)); do
		plain+=("$(curl -sf --max-time 30 -o /dev/null -w '%{time_total}' "$url")")
		gz+=("$(curl -sf --max-time 30 -o /dev/null -H 'Accept-Encoding: gzip' -w '%{time_total}' "$url")")
	done
	size=$(curl -sf --max-time 30 -o /dev/null -w '%{size_download}' "$url")
	gzsize=$(curl -sf --max-time 30 -o /dev/null -H 'Accept-Encoding: gzip' -w '%{size_download}' "$url")
	stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {printf "max=%.3f median=%.3f", v[NR], v[int((NR + 1) / 2)]}'; }
	{
		echo "plain $(stats "${plain[@]}") bytes=$size"
		echo "gzip $(stats "${gz[@]}") bytes=$gzsize"
	} >"$OUT/$name.scrape.txt"
	log "$name: /metrics scrape: $(tr '\n' ';' <"$OUT/$name.scrape.txt")"
}

# --- run -------------------------------------------------------------------
# Repetitions interleave the scenarios, so a burst of outside load hits one
# repetition of each rather than every repetition of one.
for ((REP = 1; REP <= REPEAT; REP++)); do
	if wanted naive; then wait_idle; run_naive; fi
	if wanted blackbox; then wait_idle; run_blackbox; fi
	if wanted rd1k; then wait_idle; run_rd rd1k 1000 1 "$WARMUP"; fi
	if wanted rd10k; then wait_idle; run_rd rd10k 10000 10 "$WARMUP_10K"; fi
done

}

# --- report ----------------------------------------------------------------
# col SCENARIO COLUMN: that column of every repetition of SCENARIO.
col() { awk -F'\t' -v s="$1" -v c="$2" 'NR > 1 && $1 == s {print $c}' "$RESULTS"; }
# median / maximum of the numbers on stdin (empty when none).
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else if (NR) printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
maximum() { sort -g | tail -1; }
kv() { [[ -f $1 ]] && sed -n "s/^$2=//p" "$1"; }
verdict() { awk -v ok="$1" 'BEGIN { print ok ? "PASS" : "FAIL" }'; }
# each_rd10k KEY: KEY of every rd10k repetition's scheduler file.
each_rd10k() { local f; for f in "$OUT"/rd10k.r*.scheduler.txt; do [[ -f $f ]] && kv "$f" "$1"; done; }
# scrape_max KIND: each rd10k repetition's max scrape time (plain or gzip).
scrape_max() { local f; for f in "$OUT"/rd10k.r*.scrape.txt; do [[ -f $f ]] && sed -n "s/^$1 max=\([0-9.]*\).*/\1/p" "$f"; done; }
joined() { paste -sd, - | sed 's/,/, /g'; }

# ratio_floor LABEL LIMIT SCENARIO: rd1k's median CPU per probe over
# SCENARIO's, with the per-repetition ratios alongside.
ratio_floor() {
	local label=$1 limit=$2 other=$3 rd base r per
	rd=$(col rd1k 8 | median); base=$(col "$other" 8 | median)
	[[ -n $rd && -n $base ]] || return 0
	r=$(awk -v a="$rd" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
	per=$(paste <(col rd1k 8) <(col "$other" 8) | awk '{printf "%.2f\n", $1 / $2}' | joined)
	echo "| $label | ≤ ${limit}x | **${r}x** (medians $rd / $base ms; per repetition: $per) | $(verdict "$(awk -v r="$r" -v l="$limit" 'BEGIN { print (r <= l) }')") |"
}

report() {
	echo "## Probing benchmark ($RUN_ID)"
	echo
	sed 's/^/    /' "$OUT/machine.txt"
	echo
	echo "| Scenario | Rep | Probes @ interval | Expected /s | Achieved /s | CPU s in window | CPU ms/probe | Target CPU ms/probe | Pacer CPU ms/probe (not counted) | Probes per connection | Max RSS MB | Machine busy (cores) | Prober-reported failures |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	awk -F'\t' 'NR > 1 {printf "| %s | %s | %s @ %ss | %s | %s | %s | **%s** | %s | %s | %s | %s | %s | %s |\n", $1, $15, $2, $3, $4, $5, $7, $8, $9, $13, $14, $10, $12, $11}' "$RESULTS"
	echo
	echo "Window and warm-ups: see the command above; CPU = utime+stime of the prober process"
	echo "(for blackbox: the exporter only), probes = requests counted at the target. Prober-reported failures:"
	echo "naiveloop/pacer over the whole run, reliabilityd (probe_failures_total) over the window. Machine busy:"
	echo "all non-idle CPU in the window (prober, target, pacer, anything else) in cores of $(sed -n "s/^nproc: //p" "$OUT/machine.txt")."
	local f
	for f in "$OUT"/rd10k.r*.scheduler.txt; do
		[[ -f $f ]] || continue
		local tag; tag=$(basename "$f" .scheduler.txt)
		echo
		echo "$tag: late runs $(kv "$f" late_runs_window) in window ($(kv "$f" late_runs_since_start) since start),"
		echo "skipped runs $(kv "$f" skipped_runs_window) in window ($(kv "$f" skipped_runs_since_start) since start);"
		echo "/metrics scrape $(sed -n 's/^plain //p' "$OUT/$tag.scrape.txt") s, with gzip $(sed -n 's/^gzip //p' "$OUT/$tag.scrape.txt") s."
	done
	echo
	echo "| Floor | Limit | Measured | Result |"
	echo "|---|---|---|---|"
	local pers worst
	pers=$(awk -F'\t' 'NR > 1 {print $14}' "$RESULTS")
	if [[ -n $pers ]]; then
		worst=$(awk -F'\t' 'NR > 1 {d = $14 - 1; if (d < 0) d = -d; if (d >= m) {m = d; w = $14}} END {print w}' "$RESULTS")
		echo "| every scenario: a fresh connection per probe | 1.00 probes/connection | $(echo "$pers" | sort -g | uniq | joined) | $(verdict "$(awk -v p="$worst" 'BEGIN { print (p >= 0.99 && p <= 1.01) }')") |"
	fi
	local off
	off=$(awk -F'\t' 'NR > 1 && ($5 < 0.98 * $4 || $5 > 1.02 * $4) {printf "%s r%s %s/s\n", $1, $15, $5}' "$RESULTS" | joined)
	echo "| every scenario at its paced rate (validity; a prober behind its rate is shown, not hidden) | ±2% | ${off:-all within} | $([[ -z $off ]] && echo PASS || echo WARN) |"
	ratio_floor "rd1k CPU/probe vs naive loop" 0.65 naive
	ratio_floor "rd1k CPU/probe vs blackbox_exporter" 0.35 blackbox
	if [[ -n $(col rd10k 1) ]]; then
		local late skipped rss plain gz rate_ok
		late=$(each_rd10k late_runs_window | joined); skipped=$(each_rd10k skipped_runs_window | joined)
		rss=$(col rd10k 10 | maximum)
		plain=$(scrape_max plain | maximum); gz=$(scrape_max gzip | maximum)
		echo "| rd10k late runs (window) | 0 | $late | $(verdict "$([[ $late =~ ^0(,\ 0)*$ ]] && echo 1 || echo 0)") |"
		echo "| rd10k skipped runs (window) | 0 | $skipped | $(verdict "$([[ $skipped =~ ^0(,\ 0)*$ ]] && echo 1 || echo 0)") |"
		echo "| rd10k max RSS (worst repetition) | < 150 MB | $rss MB ($(col rd10k 10 | joined)) | $(verdict "$(awk -v r="$rss" 'BEGIN { print (r < 150) }')") |"
		echo "| rd10k full /metrics scrape (worst of 5 per repetition) | < 1 s | $plain s ($(scrape_max plain | joined)); gzip $gz s | $(verdict "$(awk -v s="$plain" 'BEGIN { print (s < 1) }')") |"
		rate_ok=$(col rd10k 5 | awk '{ if ($1 < 980 || $1 > 1020) bad = 1 } END { print !bad }')
		echo "| rd10k achieved rate | 1000/s ±2% | $(col rd10k 5 | joined) /s | $(verdict "$rate_ok") |"
	fi
}
if [[ -n $REPORT_ONLY ]]; then
	OUT=$(cd "$REPORT_ONLY" && pwd) RESULTS="$OUT/results.tsv" RUN_ID=$(basename "$OUT")
	[[ -f $RESULTS ]] || die "$RESULTS not found"
else
	measure_all
fi
report | tee "$OUT/results.md"
log "raw results: $OUT"
