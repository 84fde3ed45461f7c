#!/usr/bin/env python3
"""Checks r1kit's TensorBoard event files against the `tensorboard` package.

  check_tensorboard.py read RUN_DIR_OR_EVENT_FILE
      Loads the events with TensorBoard's own EventAccumulator (the code behind
      `tensorboard --logdir`) and prints every scalar: tag, step, value.
  check_tensorboard.py golden
      Prints the hex bytes of two TFRecords built with TensorBoard's protobuf
      classes and its RecordWriter: the golden values of
      tests/common/tensorboard_test.cpp.

Needs `pip install tensorboard` (into /root/.cache/r1kit/venv); tools only.
"""
import io
import sys


def read(path):
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(path, size_guidance={event_accumulator.SCALARS: 0})
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    if not tags:
        sys.exit(f"no scalars found in {path}")
    print(f"file_version: {accumulator.file_version}")
    for tag in sorted(tags):
        for event in accumulator.Scalars(tag):
            print(f"{tag}\tstep={event.step}\tvalue={event.value!r}")


def golden():
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    def framed(event):
        buffer = io.BytesIO()
        RecordWriter(buffer).write(event.SerializeToString())
        return buffer.getvalue().hex()

    wall_time = 1700000000.5
    version = event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2")
    # Values in sorted tag order, as r1kit's std::map iterates them.
    scalars = summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag="completions/mean_length", simple_value=123.5),
        summary_pb2.Summary.Value(tag="kl", simple_value=0.001),
        summary_pb2.Summary.Value(tag="reward", simple_value=0.0),
    ])
    step = event_pb2.Event(wall_time=wall_time, step=7, summary=scalars)
    print(f"file_version_record = {framed(version)}")
    print(f"scalars_record = {framed(step)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "read":
        read(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "golden":
        golden()
    else:
        sys.exit(__doc__)
