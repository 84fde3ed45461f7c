#!/usr/bin/env bash
# `make soak` (not in CI): a GRPO run on the tiny-llama fixture (a reward
# that differs within every group and a KL term, so every step updates every
# weight), killed with SIGKILL at random moments and resumed with --resume
# each time, must end as an uninterrupted run does: every metrics.jsonl key
# but the wall-clock ones (time/*, memory/*, tokens_per_second) equal line by
# line, and final/ equal byte for byte. Checkpoints are written every step;
# every third attempt waits for a checkpoint's step-N.tmp folder to appear
# and kills within a few milliseconds, inside the write. Then the same with
# one rank (either) of a two-rank Gloo run (`r1kit launch --nproc 2`) killed,
# against an uninterrupted two-rank run.
# Usage: bench/soak.sh [BUILD_DIR]
#   SEED=1        the kill times and which rank dies (bash's $RANDOM)
#   KILLS=40      kills of the one-process run (at least; whole rounds)
#   RANK_KILLS=12 kills of one rank of the two-rank run (at least)
#   STEPS=12      GRPO steps of each run
#   OUT=<BUILD_DIR>/soak
# Prints each round's kills and mismatches and a summary line; exits 1 on any
# mismatch or on a resume that fails by itself.
set -euo pipefail
build="${1:-build}"
seed="${SEED:-1}"
kills_wanted="${KILLS:-40}"
rank_kills_wanted="${RANK_KILLS:-12}"
steps="${STEPS:-12}"
out="$(realpath -m "${OUT:-$build/soak}")"
r1kit="$(realpath "$build/r1kit")"
model="$(realpath tests/fixtures/tiny-llama)"
RANDOM="$seed"

rm -rf "$out" && mkdir -p "$out"
write_recipe() {  # NAME RUN_FOLDER
  cat > "$out/$1.json" <<JSON
{
  "stage": "grpo",
  "seed": 1,
  "output_dir": "$2",
  "model": {"path": "$model"},
  "environment": {"name": "addition", "options": {"digits": 1}, "prompt_template": "plain"},
  "rewards": [{"name": "regex_match", "options": {"pattern": "[aeiou7]", "mode": "count"}}],
  "grpo": {"num_generations": 8, "max_completion_length": 8, "max_prompt_length": 32,
           "beta": 0.04},
  "optimizer": {"learning_rate": 0.01, "lr_scheduler_type": "constant"},
  "trainer": {"max_steps": $steps, "prompts_per_step": 4, "eval_steps": 4, "eval_samples": 2,
              "log_completions": 1, "save_steps": 1, "save_total_limit": 2}
}
JSON
}

# Metrics lines without the wall-clock keys, one JSON document per line.
comparable() {
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    value = json.loads(line)
    value = {k: v for k, v in value.items()
             if not (k.startswith("time/") or k.startswith("memory/") or k == "tokens_per_second")}
    print(json.dumps(value, sort_keys=True))
PY
}

mismatches=0
failures=0
# Compares run folder $2 with the uninterrupted $1; prints what differs.
compare_runs() {
  local whole="$1" killed="$2" bad=0
  if ! diff <(comparable "$whole/metrics.jsonl") <(comparable "$killed/metrics.jsonl") \
      > "$killed.metrics.diff"; then
    echo "  MISMATCH metrics.jsonl: see $killed.metrics.diff"
    bad=1
  fi
  if ! diff -r --brief "$whole/final" "$killed/final" > "$killed.final.diff" 2>&1; then
    echo "  MISMATCH final/: $(tr '\n' ' ' < "$killed.final.diff")"
    bad=1
  fi
  mismatches=$((mismatches + bad))
}

# Builtins only in the polling loop: a fork takes longer than a checkpoint write.
milliseconds() { local now="${EPOCHREALTIME/./}"; echo $((now / 1000)); }
exec 9< <(sleep 100000)  # a pipe that never delivers: `read -t` on it sleeps without a fork
nap_pid=$!
trap 'kill "$nap_pid" 2> /dev/null || true' EXIT
nap() { read -r -t "$1" -u 9 || true; }

# Waits up to $2 ms for process $1 to end or, when $3 is set, for a folder
# $3/step-N.tmp (N in 1..steps) that was not there when the attempt started
# (those are in `stale`); returns 0 when the process is still running.
wait_for_moment() {
  local pid="$1" limit="$2" checkpoints="${3:-}" start now n
  start="${EPOCHREALTIME/./}"
  while kill -0 "$pid" 2> /dev/null; do
    if [[ -n "$checkpoints" ]]; then
      for ((n = 1; n <= steps; n++)); do
        if [[ -d "$checkpoints/step-$n.tmp" && " $stale " != *" $n "* ]]; then
          nap "0.00$((RANDOM % 4))"
          return 0
        fi
      done
    fi
    now="${EPOCHREALTIME/./}"
    (((now - start) / 1000 >= limit)) && return 0
    nap 0.001
  done
  return 1
}

# Kills/resumes the run of recipe $1 (folder $2) until it finishes by itself.
# $3: "one" (the process) or "rank" (one rank under r1kit launch). Sets
# round_kills and round_in_writes.
soak_round() {
  local recipe="$1" run="$2" mode="$3" attempt=0 pid code target n stale
  round_kills=0
  round_in_writes=0
  while true; do
    attempt=$((attempt + 1))
    stale=""
    for ((n = 1; n <= steps; n++)); do
      [[ -d "$run/checkpoints/step-$n.tmp" ]] && stale+=" $n"
    done
    if [[ "$mode" == one ]]; then
      "$r1kit" train "$recipe" --resume > "$run.attempt-$attempt.log" 2>&1 &
    else
      "$r1kit" launch --nproc 2 -- "$r1kit" train "$recipe" --resume \
        > "$run.attempt-$attempt.log" 2>&1 &
    fi
    pid=$!
    # Offsets up to the uninterrupted run's time; every third attempt waits
    # for a checkpoint write of its own instead.
    local watch="" limit=$(((RANDOM * 32768 + RANDOM) % whole_ms))
    if ((attempt % 3 == 0)); then
      watch="$run/checkpoints"
      limit=$((2 * whole_ms))
    fi
    if wait_for_moment "$pid" "$limit" "$watch"; then
      target="$pid"
      if [[ "$mode" == rank ]]; then
        local ranks=()
        while ((${#ranks[@]} < 2)) && kill -0 "$pid" 2> /dev/null; do
          ranks=($(pgrep -P "$pid" || true))
        done
        ((${#ranks[@]} == 2)) && target="${ranks[$((RANDOM % 2))]}"
      fi
      kill -KILL "$target" 2> /dev/null || continue  # it ended by itself meanwhile
      for ((n = 1; n <= steps; n++)); do
        if [[ -d "$run/checkpoints/step-$n.tmp" && " $stale " != *" $n "* ]]; then
          round_in_writes=$((round_in_writes + 1))
          break
        fi
      done
      round_kills=$((round_kills + 1))
      # The launcher stops the other rank; a hang here is a bug too.
      local waited=0
      while kill -0 "$pid" 2> /dev/null && ((waited < 600)); do
        sleep 0.1
        waited=$((waited + 1))
      done
      if kill -0 "$pid" 2> /dev/null; then
        echo "  FAILURE: attempt $attempt did not stop within 60 s of the kill (see $run.attempt-$attempt.log)"
        failures=$((failures + 1))
        for child in $(pgrep -P "$pid" || true); do kill -KILL "$child" || true; done
        kill -KILL "$pid" || true
      fi
      wait "$pid" 2> /dev/null || true
      continue
    fi
    code=0
    wait "$pid" || code=$?
    if ((code != 0)); then
      echo "  FAILURE: attempt $attempt exited with $code by itself (see $run.attempt-$attempt.log)"
      tail -3 "$run.attempt-$attempt.log" | sed 's/^/    /'
      failures=$((failures + 1))
      return
    fi
    return
  done
}

started=$(milliseconds)
echo "soak: seed $seed, $steps steps per run, checkpoints every step, out $out"

# One process.
write_recipe whole "$out/whole"
whole_ms=$(milliseconds)
"$r1kit" train "$out/whole.json" > "$out/whole.log" 2>&1
whole_ms=$(($(milliseconds) - whole_ms))
kills=0 in_writes=0 round=0
while ((kills < kills_wanted)); do
  round=$((round + 1))
  write_recipe "killed-$round" "$out/killed-$round"
  soak_round "$out/killed-$round.json" "$out/killed-$round" one 2> /dev/null
  kills=$((kills + round_kills))
  in_writes=$((in_writes + round_in_writes))
  before=$mismatches
  compare_runs "$out/whole" "$out/killed-$round"
  echo "one process, round $round: $round_kills kills ($round_in_writes during a checkpoint write), $((mismatches - before)) mismatches"
done

# One rank of two.
write_recipe whole-ranks "$out/whole-ranks"
whole_ms=$(milliseconds)
"$r1kit" launch --nproc 2 -- "$r1kit" train "$out/whole-ranks.json" > "$out/whole-ranks.log" 2>&1
whole_ms=$(($(milliseconds) - whole_ms))
rank_kills=0 round=0
while ((rank_kills < rank_kills_wanted)); do
  round=$((round + 1))
  write_recipe "ranks-$round" "$out/ranks-$round"
  soak_round "$out/ranks-$round.json" "$out/ranks-$round" rank 2> /dev/null
  rank_kills=$((rank_kills + round_kills))
  in_writes=$((in_writes + round_in_writes))
  before=$mismatches
  compare_runs "$out/whole-ranks" "$out/ranks-$round"
  echo "two ranks, round $round: $round_kills kills of one rank, $((mismatches - before)) mismatches"
done

seconds=$((($(milliseconds) - started) / 1000))
echo "soak: $((kills + rank_kills)) kills survived ($kills of one process, $rank_kills of one rank;" \
  "$in_writes during a checkpoint write), $mismatches mismatches, $failures failed resumes, ${seconds} s, seed $seed"
((mismatches == 0 && failures == 0))
