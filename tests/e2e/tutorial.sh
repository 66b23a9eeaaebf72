#!/usr/bin/env bash
# docs/tutorial.md, run as a reader would: every ```sh block in order (in one project
# directory, `flowctl` on the PATH), each one exiting 0 (or 1 when its output is shown
# with an `error:` line, a mistake the tutorial makes on purpose), and each ```text block that
# follows a command block found in that command's output (stdout and stderr), line by line
# in order, with durations ("0.25 s") matching any duration. `flowctl develop` (the "second
# terminal") is started in the background on a free port, the tutorial's
# http://127.0.0.1:8081 pointed at it, and stopped at the end (exit 0 expected). A query
# of the tables (`sqlite3 ...`) is retried for up to 30 s, as a reader would look again.
source "$(dirname "$0")/lib.sh"
mkdir -p "$WORK/bin" "$WORK/home"
ln -s "$FLOWCTL" "$WORK/bin/flowctl"
command -v sqlite3 >/dev/null || { echo "skip: sqlite3 is not installed"; exit 0; }
command -v curl >/dev/null || { echo "skip: curl is not installed"; exit 0; }
PATH="$WORK/bin:$PATH" HOME="$WORK/home" python3 - "$REPO/docs/tutorial.md" "$WORK" <<'PY' || fail "the tutorial"
import json, os, re, signal, subprocess, sys, time

doc, work = sys.argv[1], sys.argv[2]
blocks, lang, body = [], None, []
for line in open(doc, encoding="utf-8"):
    if line.startswith("```"):
        if lang is None:
            lang, body = line[3:].strip() or "plain", []
        else:
            blocks.append((lang, "".join(body)))
            lang = None
    elif lang is not None:
        body.append(line)

cwd, develop, url, failures = work, None, None, 0

def fail(msg):
    global failures
    failures += 1
    print(f"FAIL: {msg}", file=sys.stderr)

def matches(expected, output):
    lines, at = output.splitlines(), 0
    for want in expected.strip("\n").splitlines():
        pattern = re.escape(want)
        pattern = re.sub(r"[0-9]+\\\.[0-9]+\\ s\b", r"[0-9]+\\.[0-9]+\\ s", pattern)
        while at < len(lines) and not re.fullmatch(pattern, lines[at]):
            at += 1
        if at == len(lines):
            return f"no line matching {want!r}"
        at += 1
    return None

for i, (lang, code) in enumerate(blocks):
    if lang != "sh":
        continue
    if code.strip() == "flowctl develop":
        develop = subprocess.Popen(["flowctl", "develop", "--port", "0"], cwd=cwd,
                                   stdout=open(f"{work}/develop.out", "w"), stderr=subprocess.STDOUT)
        info = os.path.join(cwd, "flowctl-data", "develop.json")
        for _ in range(300):
            if os.path.exists(info) or develop.poll() is not None:
                break
            time.sleep(0.1)
        if not os.path.exists(info):
            fail(f"flowctl develop did not start: {open(work + '/develop.out').read()}")
            break
        time.sleep(0.2)
        url = json.load(open(info))["url"].rstrip("/")
        continue
    if url:
        code = code.replace("http://127.0.0.1:8081", url)
    expected = blocks[i + 1][1] if i + 1 < len(blocks) and blocks[i + 1][0] == "text" else None
    deadline = time.time() + (30 if code.lstrip().startswith("sqlite3") else 0)
    while True:
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", code + f'\npwd > "{work}/.cwd"'],
                             cwd=cwd, capture_output=True, text=True)
        problem = None
        allowed = {0, 1} if expected is not None and "error:" in expected else {0}
        if run.returncode not in allowed:
            problem = f"exit {run.returncode}"
        elif expected is not None:
            problem = matches(expected, run.stdout + run.stderr)
        if problem is None or time.time() >= deadline:
            break
        time.sleep(0.5)
    if problem:
        fail(f"block {i} ({code.strip().splitlines()[0]!r}): {problem}\n--- output:\n{run.stdout}{run.stderr}")
        break
    cwd = open(f"{work}/.cwd").read().strip()
    print(f"ok: {code.strip().splitlines()[0]}")

if develop is not None:
    develop.send_signal(signal.SIGTERM)
    try:
        rc = develop.wait(timeout=30)
    except subprocess.TimeoutExpired:
        develop.kill()
        rc = "a timeout"
    if rc != 0:
        fail(f"flowctl develop ended with {rc}: {open(work + '/develop.out').read()[-2000:]}")
sys.exit(1 if failures else 0)
PY
finish
