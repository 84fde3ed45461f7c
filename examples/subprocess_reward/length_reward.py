#!/usr/bin/env python3
"""A reward in Python for r1kit's `subprocess` reward: one JSON line in (the
sample and its "id"), one JSON line out (the reward, echoing that "id").
Recipe entry:

  {"name": "subprocess", "weight": 0.1, "timeout_seconds": 5,
   "options": {"command": ["python3", "examples/subprocess_reward/length_reward.py"]}}

Rewards concise completions and says how long each was. Keep stdout for
replies only, exactly one line per request (print debugging to stderr: r1kit
shows it and quotes its end when the program fails), and flush after every
reply. docs/reward-protocols.md describes every field.
"""
import json
import sys

TARGET_CHARS = 400

for line in sys.stdin:
    sample = json.loads(line)
    completion = sample["completion"]
    if not sample["reference"]:
        reply = {"reward": None}  # not applicable: left out of the total and the mean
    else:
        over = max(0, len(completion) - TARGET_CHARS)
        reply = {"reward": max(0.0, 1.0 - over / TARGET_CHARS),
                 "components": {"chars": float(len(completion))}}
    reply["id"] = sample["id"]  # r1kit matches the reply to its request by this
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
