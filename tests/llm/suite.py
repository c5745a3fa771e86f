"""tests/llm/suite.py: what the llm suite's test files share: the failure,
the check, and running one test into (name, passed, detail, seconds)."""
import time
import traceback


class Fail(Exception):
    pass


def check(cond, msg, *detail):
    if not cond:
        raise Fail(msg + "".join("\n    " + str(d)[:2000] for d in detail))


def run_one(t, build, ctx):
    t0 = time.monotonic()
    try:
        t(build, ctx)
        return (t.__name__, True, "", time.monotonic() - t0)
    except Fail as e:
        return (t.__name__, False, str(e), time.monotonic() - t0)
    except Exception as e:
        return (t.__name__, False, "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=6)),
                time.monotonic() - t0)
