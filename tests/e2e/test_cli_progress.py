"""End to end: the command line's progress display. On a terminal's stderr
(a pseudo-terminal here) it shows targets done out of found and, during a
wait, what still holds each execution, and leaves nothing behind; anywhere
else, with --no-progress, TERM=dumb, or JSON into a pipe, it writes not one
byte."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import threading

import pytest

from conftest import A, PIPELINE, REGION, ACCOUNT, binary

COLUMNS, ROWS = 160, 40
QUEUE = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/approvals"

# A Callback step holds A's stop until its token is answered: nobody answers
# it here, so a wait runs out with A still Stopping.
HELD = {"account": ACCOUNT, "region": REGION, "pipelines": [{"name": PIPELINE, "executions": [
    {"id": "k7xvw1b9q2hj", "steps": [
        {"name": "approve", "type": "Callback", "callbackToken": "Xk3vQ9aL2m", "queueUrl": QUEUE}]}]}]}

SWEPT = 30


def swept_seed():
    """SWEPT running executions of one pipeline (one listing page), and one finished."""
    return {"account": ACCOUNT, "region": REGION,
            "pipelines": [{"name": PIPELINE, "generate": {"Executing": SWEPT, "Succeeded": 1}}]}


def environment(emulator, extra=None):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "RUST_LOG", "NO_COLOR", "CLICOLOR"))}
    environ.update({
        "AWS_ACCESS_KEY_ID": "AKIDLOCALEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "local-secret-not-a-real-key",
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_SAGEMAKER": emulator.url,
        "AWS_ENDPOINT_URL_STS": emulator.url,
        "TERM": "xterm-256color",
    })
    for key, value in (extra or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return environ


class Ran:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def __repr__(self):
        return f"Ran({self.returncode}, stdout={self.stdout[:400]!r}, stderr={self.stderr[-800:]!r})"


def run(emulator, *args, stdout="pipe", stderr="pty", env=None, timeout=40):
    """Runs the CLI with stdout and stderr each a pipe or a pseudo-terminal of
    its own (COLUMNS x ROWS), or stderr on stdout's ("same": one terminal, as
    a user has it); returns the exit code and the raw bytes of each, as a
    terminal (or a pipe) received them (with "same", all in stdout)."""
    masters, slaves, streams = {}, [], {}
    for name, kind in (("stdout", stdout), ("stderr", stderr)):
        if kind == "same":
            assert name == "stderr" and stdout == "pty"
            streams[name] = streams["stdout"]
        elif kind == "pty":
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
            masters[name] = master
            slaves.append(slave)
            streams[name] = slave
        else:
            assert kind == "pipe"
            streams[name] = subprocess.PIPE
    proc = subprocess.Popen([binary(), *args], env=environment(emulator, env), stdin=subprocess.DEVNULL,
                            stdout=streams["stdout"], stderr=streams["stderr"])
    for slave in slaves:
        os.close(slave)
    received = {"stdout": bytearray(), "stderr": bytearray()}

    def drain(name):
        if name in masters:
            while True:
                try:
                    chunk = os.read(masters[name], 65536)
                except OSError:  # EIO: the child's end is closed, and all read
                    break
                if not chunk:
                    break
                received[name].extend(chunk)
        else:
            received[name].extend(getattr(proc, name).read())

    readers = [threading.Thread(target=drain, args=(name,), daemon=True)
               for name in ("stdout", "stderr") if name in masters or streams[name] == subprocess.PIPE]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for reader in readers:
        reader.join(10)
        assert not reader.is_alive(), "the output was not closed"
    for master in masters.values():
        os.close(master)
    return Ran(proc.returncode, bytes(received["stdout"]), bytes(received["stderr"]))


CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def screen(raw, columns=COLUMNS):
    """What a terminal shows after `raw`: the few controls indicatif uses
    (CR, LF, cursor up and down, erase line, erase below; colours ignored),
    with xterm's deferred wrap at the last column. Its lines, trailing blanks
    and empty last lines removed."""
    lines, row, col = [[]], 0, 0
    text = raw.decode("utf-8", errors="replace")
    i = 0
    while i < len(text):
        c = text[i]
        match = CSI.match(text, i) if c == "\x1b" else None
        if match:
            params, command = match.groups()
            n = int(params) if params.isdigit() else 1
            if command == "A":
                row = max(0, row - n)
            elif command == "B":
                row += n
            while len(lines) <= row:
                lines.append([])
            if command == "K" and params == "2":
                lines[row] = []
            elif command == "K" and params in ("", "0"):
                del lines[row][col:]
            elif command == "J" and params in ("", "0"):
                del lines[row + 1:]
                del lines[row][col:]
            i = match.end()
            continue
        if c == "\r":
            col = 0
        elif c == "\n":
            row, col = row + 1, 0
        elif c >= " ":
            if col >= columns:
                row, col = row + 1, 0
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = c
            else:
                line.append(c)
            col += 1
        while len(lines) <= row:
            lines.append([])
        i += 1
    shown = ["".join(line).rstrip() for line in lines]
    while shown and not shown[-1]:
        shown.pop()
    return shown


def frames(raw):
    """Every (done, found) pair the targets bar drew, in order."""
    return [(int(d), int(f)) for d, f in re.findall(rb"(\d+)/(\d+) targets done", raw)]


# -- (a) on a terminal ---------------------------------------------------------

@pytest.mark.draws
def test_a_wait_on_a_terminal_shows_what_still_stops_and_the_step_that_holds_it(emulator):
    emulator.seed(HELD)
    ran = run(emulator, "--pipeline-execution-arn", A, "--wait-seconds", "3", stdout="pty")
    assert ran.returncode == 0, ran
    assert b"waiting up to " in ran.stderr and b" for 1 execution to stop" in ran.stderr, ran
    # The execution, its status once polled, and the step that holds it, by name and kind.
    assert re.search(rb"nightly-training/k7xvw1b9q2hj  Stopping  held by approve\(Callback\)", ran.stderr), ran
    assert (1, 1) in frames(ran.stderr), frames(ran.stderr)
    # Cleared: nothing of it is left on the screen.
    assert screen(ran.stderr) == [], screen(ran.stderr)
    # The result on stdout is the reply as without progress (the terminal
    # turns each LF into CRLF).
    reply = ran.stdout.replace(b"\r\n", b"\n").decode()
    assert '"Status": "Stopping"' in reply and '"StepName": "approve"' in reply, reply
    assert emulator.status(A) == "Stopping"


@pytest.mark.draws
def test_on_one_terminal_the_bars_are_gone_before_the_result_is_printed(emulator):
    # stdout and stderr on one terminal, as a user has them: what is left on
    # the screen is exactly what a run without progress leaves.
    shown = []
    for flags in ([], ["--no-progress"]):
        emulator.seed(HELD)
        shown.append(run(emulator, "--pipeline-execution-arn", A, "--wait-seconds", "2", *flags,
                         stdout="pty", stderr="same"))
    with_bars, plain = shown
    assert b"held by approve(Callback)" in with_bars.stdout, with_bars
    assert b"targets done" not in plain.stdout, plain
    assert with_bars.returncode == plain.returncode == 0
    assert screen(plain.stdout)[0] == "{" and '"StepName": "approve",' in "".join(screen(plain.stdout)), plain
    assert screen(with_bars.stdout) == screen(plain.stdout)


@pytest.mark.draws
def test_a_sweep_on_a_terminal_counts_targets_done_out_of_those_found(emulator):
    emulator.seed(swept_seed())
    # Each call takes 100 ms, four targets at a time: the sweep lasts about
    # 1.5 s, long enough for several frames.
    emulator.faults(latencyMs=100)
    ran = run(emulator, "--pipeline-name", PIPELINE, "--output", "text", env={"MAX_CONCURRENCY": "4"})
    assert ran.returncode == 0, ran
    drawn = frames(ran.stderr)
    assert drawn, ran
    assert all(done <= found <= SWEPT for done, found in drawn), drawn
    assert [f for _, f in drawn] == sorted(f for _, f in drawn), f"the total went down: {drawn}"
    assert [d for d, _ in drawn] == sorted(d for d, _ in drawn), f"done went down: {drawn}"
    assert max(found for _, found in drawn) == SWEPT, drawn
    assert any(0 < done < SWEPT for done, _ in drawn), drawn
    assert screen(ran.stderr) == [], screen(ran.stderr)
    # stdout, a pipe, has exactly the text result: a line per execution.
    lines = ran.stdout.decode().splitlines()
    assert len(lines) == SWEPT and all(line.split("\t")[1] == "StopRequested" for line in lines), lines
    assert len(emulator.state()["stopCalls"]) == SWEPT


@pytest.mark.draws
def test_a_guard_run_on_a_terminal_counts_the_executions_it_finds_over_their_limit(emulator):
    over = 20
    emulator.seed({"account": ACCOUNT, "region": REGION, "pipelines": [
        {"name": PIPELINE, "tags": {"pipeline-stopper:max-runtime": "1h"},
         "generate": {"Executing": over}, "generateStartedMinutesAgo": 180},
        {"name": "fresh", "tags": {"pipeline-stopper:max-runtime": "1h"}, "generate": {"Executing": 5}},
    ]})
    emulator.faults(latencyMs=100)
    ran = run(emulator, "--guard", "--output", "text", env={"MAX_CONCURRENCY": "4"})
    assert ran.returncode == 0, ran
    drawn = frames(ran.stderr)
    # Found while discovery runs (every page is read before the first stop).
    assert b"(finding targets" in ran.stderr, ran
    assert max(found for _, found in drawn) == over, drawn
    assert all(done <= found for done, found in drawn), drawn
    assert any(0 < done < over for done, _ in drawn), drawn
    assert screen(ran.stderr) == [], screen(ran.stderr)
    assert sum(line.endswith("\tStopRequested\t") for line in ran.stdout.decode().splitlines()) == over


@pytest.mark.draws
def test_no_color_keeps_the_display_and_drops_its_colours(emulator):
    emulator.seed(HELD)
    ran = run(emulator, "--pipeline-execution-arn", A, "--wait-seconds", "1", stdout="pty",
              env={"NO_COLOR": "1"})
    assert ran.returncode == 0, ran
    assert b"targets done" in ran.stderr, ran
    assert not re.search(rb"\x1b\[[0-9;]*m", ran.stderr), ran
    emulator.seed(HELD)
    coloured = run(emulator, "--pipeline-execution-arn", A, "--wait-seconds", "1", stdout="pty")
    assert re.search(rb"\x1b\[3[0-9]m", coloured.stderr), "without NO_COLOR the bar is coloured"


# -- (b), (c) nowhere else -------------------------------------------------------

def test_with_stderr_a_pipe_the_output_is_byte_identical_to_no_progress(emulator):
    results = []
    for flags in ([], ["--no-progress"]):
        for output in ("json", "text"):
            emulator.seed(HELD)
            results.append(run(emulator, "--pipeline-execution-arn", A, "--wait-seconds", "1",
                               "--output", output, *flags, stdout="pipe", stderr="pipe"))
    shown_json, shown_text, plain_json, plain_text = results
    assert b"Stopping" in plain_json.stdout and b"approve" in plain_text.stdout, results
    assert (shown_json.returncode, shown_json.stdout, shown_json.stderr) == \
        (plain_json.returncode, plain_json.stdout, plain_json.stderr)
    assert (shown_text.returncode, shown_text.stdout, shown_text.stderr) == \
        (plain_text.returncode, plain_text.stdout, plain_text.stderr)
    assert shown_json.stderr == b"" and shown_text.stderr == b""
    # An error's one line on stderr is the same too.
    emulator.seed(HELD)
    missing = A.replace("k7xvw1b9q2hj", "n0tth3r3000")
    errors = [run(emulator, "--pipeline-execution-arn", missing, *flags, stdout="pipe", stderr="pipe")
              for flags in ([], ["--no-progress"])]
    assert errors[0].returncode == 254 and b"ResourceNotFound" in errors[0].stderr, errors
    assert (errors[0].stdout, errors[0].stderr) == (errors[1].stdout, errors[1].stderr)


def test_json_into_a_pipe_draws_nothing_even_with_stderr_a_terminal(emulator):
    emulator.seed(HELD)
    ran = run(emulator, "--pipeline-execution-arn", A, "--wait-seconds", "1", stdout="pipe", stderr="pty")
    assert ran.returncode == 0, ran
    assert ran.stderr == b"", ran
    assert b'"StepName": "approve"' in ran.stdout


def test_no_progress_and_a_dumb_terminal_draw_nothing_on_a_terminal(emulator):
    for flags, env in ((["--no-progress"], None), ([], {"TERM": "dumb"}), ([], {"TERM": None})):
        emulator.seed(HELD)
        ran = run(emulator, "--pipeline-execution-arn", A, "--wait-seconds", "1", *flags,
                  stdout="pty", stderr="pty", env=env)
        assert ran.returncode == 0, (flags, env, ran)
        assert ran.stderr == b"", (flags, env, ran)
        assert b'"Status": "Stopping"' in ran.stdout, (flags, env, ran)


def test_logs_on_stderr_turn_the_display_off(emulator):
    emulator.seed(HELD)
    ran = run(emulator, "--pipeline-execution-arn", A, "--debug", stdout="pty", stderr="pty")
    assert ran.returncode == 0, ran
    assert b"stop" in ran.stderr and b"targets done" not in ran.stderr, ran


def test_the_screen_model_of_these_tests_sees_what_is_left():
    # A check of the checker: a line drawn and not cleared is seen; cleared, not.
    assert screen(b"\xe2\xa0\x81 0/1 targets done\n  held") == ["\u2801 0/1 targets done", "  held"]
    assert screen(b"one\ntwo\x1b[1A\r\x1b[2K\x1b[1B\r\x1b[2K\x1b[1A") == []
    assert screen(b"x" * (COLUMNS + 3)) == ["x" * COLUMNS, "xxx"]
