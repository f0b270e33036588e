import sys

from dqn_bench.cli import main

sys.exit(main())
