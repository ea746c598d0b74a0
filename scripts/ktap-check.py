#!/usr/bin/env python3
"""Parses KTAP on stdin with the kernel's own parser (tools/testing/kunit/kunit_parser.py,
from Debian's linux-source; its directory in $FOLIOBENCH_KUNIT_DIR) and prints what it made
of it as JSON: the status, the counts, the top-level test names and statuses, and the
parser's error messages."""
import io
import json
import os
import sys

sys.path.insert(0, os.environ["FOLIOBENCH_KUNIT_DIR"])
import kunit_parser  # noqa: E402
import kunit_printer  # noqa: E402

lines = sys.stdin.read().splitlines(keepends=True)
# The parser prints its summary and its errors (add_error) to stdout: keep them apart.
printed = io.StringIO()
kunit_printer.stdout._output = printed
test = kunit_parser.parse_run_tests(lines)
c = test.counts
print(json.dumps({
    "status": test.status.name,
    "passed": c.passed,
    "failed": c.failed,
    "skipped": c.skipped,
    "crashed": c.crashed,
    "parse_errors": c.errors,
    "errors": [l for l in printed.getvalue().splitlines() if "[ERROR]" in l],
    "names": [t.name for t in test.subtests],
    "statuses": [t.status.name for t in test.subtests],
}))
