#!/usr/bin/python3
# chat_pty.py BIN MODEL: drive `deepc chat` on a pseudo-terminal (test_chat.c
# line_editing): type a message, recall it with the up arrow, edit it with
# left-arrow and a typed character, then /exit; print the whole transcript.
import os, pty, select, sys, time

def read_until(fd, want, limit=30.0):
    out, end = b"", time.time() + limit
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                b = os.read(fd, 4096)
            except OSError:
                break
            if not b:
                break
            out += b
            if want in out:
                break
    return out

pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.execv(sys.argv[1], [sys.argv[1], "chat", "-m", sys.argv[2], "--temp", "0", "-n", "4"])
log = read_until(fd, b"> ")
for keys in [b"Hello there\r", b"\x1b[A\r", b"\x1b[A\x1b[D\x1b[D\x1b[DX\r", b"/exit\r"]:
    time.sleep(0.5)  # the prompt is out; let the line editor take the terminal before typing
    os.write(fd, keys)
    log += read_until(fd, b"> ")
os.waitpid(pid, 0)
sys.stdout.buffer.write(log)
