"""Speed and accuracy benchmarks (`make bench`).

The memo of derived results (`planning.result_memo`) is off here unless a benchmark's
environment asks for it: a timing repeated on the same CT would otherwise time a look-up,
and the accuracy harness's many storings would only fill memory. The memory benchmark's
child runs as the app does, with the memo on (`bench.bench_memory`).
"""

import os

os.environ.setdefault("VERTEBROPLAN_MEMO_MB", "0")
