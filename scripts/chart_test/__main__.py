"""`python3 -m chart_test` (from scripts/): runs the chart tests and ends with one summary line,
"chart-test: N passed, N failed, N skipped"."""

import sys
import unittest

from . import test_chart


def main() -> int:
    suite = unittest.defaultTestLoader.loadTestsFromModule(test_chart)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print(f"chart-test: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
