"""Percentiles and summaries of measured series (milliseconds, counts): no I/O."""
import math
import statistics


def percentile(xs, p):
    """Linear interpolation between closest ranks (numpy's default); p in 0..100."""
    s = sorted(xs)
    k = (len(s) - 1) * p / 100
    lo = math.floor(k)
    return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (k - lo)


def summarize(xs):
    """{n, median, min, max, p99, mean} of a series, or None when it is empty."""
    if not xs:
        return None
    return {"n": len(xs), "median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "p99": percentile(xs, 99), "mean": statistics.fmean(xs)}
