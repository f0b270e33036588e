import os
import sys

from dqn_bench.cli import main

code = main()
if "ray" in sys.modules:
    # Ray's C++ threads can outlive ray.shutdown() and crash the interpreter's teardown (SIGSEGV after a
    # Ctrl-C on a loaded machine, 2 of 10 tries): every record and claim is settled by now, so skip it
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
sys.exit(code)
