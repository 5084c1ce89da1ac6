"""Runs modules of CPython's regression tests case by case, for integration/tests/cpython.rs.

    python3 -B runner.py [--skip TEST_ID]... [--only TEST_ID]... MODULE...

MODULE is a name below the `test` package (test_os), optionally followed by
`:Class,Class` to run only those test classes of it. Before each case it prints
`@@start@@ ID` and after it `@@case@@ ID RESULT`, RESULT one of ok, FAIL, ERROR, skipped,
xfail, xpass (a case whose subtests failed is FAIL or ERROR). Those lines go to a
close-on-exec duplicate of stdout above the low descriptors, so the tests' own output,
captured streams and fd juggling do not disturb them. `--skip` leaves a case out (the
harness uses it to resume after a case that hung); `--only` runs just the named cases.
"""

import fcntl
import importlib
import os
import signal
import sys
import unittest

OUT = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 200)

# A runner started with SIGINT, SIGQUIT or SIGHUP ignored (a background job of a
# non-interactive shell, nohup) would pass that on to every test and the processes they
# start: the tests of KeyboardInterrupt would fail natively and not in the sandbox, which
# starts with nothing ignored. Both sides start from Linux's defaults instead.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGQUIT, signal.SIG_DFL)
signal.signal(signal.SIGHUP, signal.SIG_DFL)


def emit(line):
    os.write(OUT, ("\n" + line + "\n").encode("utf-8", "backslashreplace"))


RANK = {"ok": 0, "skipped": 0, "xfail": 0, "xpass": 1, "FAIL": 2, "ERROR": 3}


class Result(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.status = {}

    def note(self, test, status):
        tid = test.id()
        old = self.status.get(tid)
        if old is None or RANK[status] > RANK[old]:
            self.status[tid] = status

    def startTest(self, test):
        emit("@@start@@ " + test.id())
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        emit("@@case@@ %s %s" % (test.id(), self.status.get(test.id(), "ok")))

    def addSuccess(self, test):
        super().addSuccess(test)
        self.note(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.note(test, "FAIL")

    def addError(self, test, err):
        super().addError(test, err)
        # setUpClass/setUpModule errors arrive on a placeholder, not on a case.
        if isinstance(test, unittest.TestCase):
            self.note(test, "ERROR")
        else:
            emit("@@case@@ %s ERROR" % str(test).replace(" ", "_"))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if isinstance(test, unittest.TestCase):
            self.note(test, "skipped")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.note(test, "xfail")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.note(test, "xpass")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self.note(test, "FAIL" if failed else "ERROR")


def filtered(suite, skip, only, classes):
    out = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            out.addTest(filtered(t, skip, only, classes))
        elif t.id() in skip or (only and t.id() not in only):
            continue
        elif classes and type(t).__name__ not in classes:
            continue
        else:
            out.addTest(t)
    return out


def main(argv):
    skip, only, modules = set(), set(), []
    it = iter(argv)
    for a in it:
        if a == "--skip":
            skip.add(next(it))
        elif a == "--only":
            only.add(next(it))
        else:
            modules.append(a)
    for spec in modules:
        name, _, classes = spec.partition(":")
        classes = set(c for c in classes.split(",") if c)
        module = importlib.import_module("test." + name)
        suite = unittest.defaultTestLoader.loadTestsFromModule(module)
        suite = filtered(suite, skip, only, classes)
        runner = unittest.TextTestRunner(resultclass=Result, verbosity=0, stream=sys.stderr)
        runner.run(suite)
        emit("@@done@@ " + spec)


if __name__ == "__main__":
    main(sys.argv[1:])
