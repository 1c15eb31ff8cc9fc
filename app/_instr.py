"""Temporary phase timings for ai_item (scratch)."""
import atexit, time, collections
T = collections.defaultdict(float); N = collections.Counter()
def mark(name, since):
    now = time.perf_counter(); T[name] += now - since; N[name] += 1; return now
def dump():
    for k in T: print(f"PHASE {k}: n={N[k]} mean={T[k]/N[k]*1000:.2f} ms")
atexit.register(dump)
