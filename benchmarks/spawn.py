"""Run one command and report its wall time and peak RSS. Run as a script: `python -I -S spawn.py ...`.

    spawn.py STDOUT_FILE STDERR_FILE CWD -- COMMAND...   prints "WALL_S MAXRSS_KB EXIT_CODE CPU_S"

Why a separate small process: on Linux a child's ru_maxrss starts at the resident size of the process
that forked it (exec carries the old image's high-water mark into the new one). Forked from this
interpreter started with -I -S (no site, standard modules only, ~8 MB), that floor is small and
the same for every command, and the benchmark driver's own memory does not leak into the figures.
Keep this file free of imports beyond os/sys/time.
"""

import os
import sys
import time


def main() -> None:
    out, err, cwd, sep, *cmd = sys.argv[1:]
    if sep != "--" or not cmd:
        sys.exit("usage: spawn.py STDOUT STDERR CWD -- COMMAND...")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fds = os.open(os.devnull, os.O_RDONLY), os.open(out, flags, 0o644), os.open(err, flags, 0o644)
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            os.chdir(cwd)
            os.execvp(cmd[0], cmd)
        except BaseException as exc:  # noqa: BLE001 - report and leave the child without cleanup
            os.write(2, f"spawn: {cmd[0]}: {exc}\n".encode())
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    sys.stdout.write(f"{wall!r} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} {cpu!r}\n")


if __name__ == "__main__":
    main()
