import { describe, expect, it } from "vitest";
import { etaSeconds, limitHint, newerProgress, runsNeeded, timeLeft } from "./progress";

const base = { percentage: 40, total_items: 10, completed_items: 4 };

describe("etaSeconds", () => {
  it("is unknown where the server sends no field", () => {
    expect(etaSeconds(base)).toBeNull();
    expect(etaSeconds(undefined)).toBeNull();
  });
  it("is unknown while the server says null", () => {
    expect(etaSeconds({ ...base, eta_seconds: null } as typeof base)).toBeNull();
  });
  it("reads the seconds the server sends", () => {
    expect(etaSeconds({ ...base, eta_seconds: 246 } as typeof base)).toBe(246);
    expect(etaSeconds({ ...base, eta_seconds: 0 } as typeof base)).toBe(0);
  });
  it("ignores what is no number of seconds", () => {
    expect(etaSeconds({ ...base, eta_seconds: "5" } as unknown as typeof base)).toBeNull();
    expect(etaSeconds({ ...base, eta_seconds: -1 } as typeof base)).toBeNull();
  });
});

describe("per-run limit hints", () => {
  it("counts the runs a limit takes", () => {
    expect(runsNeeded(150, 50)).toBe(3);
    expect(runsNeeded(151, 50)).toBe(4);
    expect(runsNeeded(10, 0)).toBeNull();
    expect(runsNeeded(0, 5)).toBeNull();
  });
  it("says it in words", () => {
    expect(limitHint(150, "50")).toBe("≈ 3 runs to process all");
    expect(limitHint(40, "50")).toBe("all in one run");
    expect(limitHint(40, "0")).toBe("all in one run");
    expect(limitHint(0, "5")).toBe("nothing waiting");
    expect(limitHint(40, "x")).toBe("all in one run");
  });
});

describe("timeLeft", () => {
  it("says the time left of an active run as a person would", () => {
    expect(timeLeft({ ...base, eta_seconds: 230 } as typeof base, true)).toBe("about 4 min left");
    expect(timeLeft({ ...base, eta_seconds: 30 } as typeof base, true)).toBe(
      "less than a minute left",
    );
    expect(timeLeft({ ...base, eta_seconds: 3660 } as typeof base, true)).toBe(
      "about 1 h 1 min left",
    );
  });
  it("is estimating while the server has no estimate", () => {
    expect(timeLeft({ ...base, eta_seconds: null } as typeof base, true)).toBe("estimating…");
    expect(timeLeft(base, true)).toBe("estimating…");
    expect(timeLeft(undefined, true)).toBe("estimating…");
  });
  it("says nothing for a run that is over", () => {
    expect(timeLeft({ ...base, eta_seconds: 230 } as typeof base, false)).toBeNull();
  });
});

describe("newerProgress", () => {
  type Answer = {
    run: { run_id: string; status: string } | null;
    global_progress: { completed_items: number };
  };
  const answer = (runId: string, status: string, completed: number): Answer => ({
    run: { run_id: runId, status },
    global_progress: { completed_items: completed },
  });

  it("keeps what is shown when an answer of the same run is behind it", () => {
    const shown = answer("run_a", "running", 57);
    expect(newerProgress(shown, answer("run_a", "running", 56))).toBe(shown);
  });
  it("takes an answer as far or further on, a pause and a resume included", () => {
    const paused = answer("run_a", "paused", 57);
    expect(newerProgress(answer("run_a", "running", 57), paused)).toBe(paused);
    const further = answer("run_a", "running", 58);
    expect(newerProgress(paused, further)).toBe(further);
  });
  it("never takes an ended run back to running", () => {
    const ended = answer("run_a", "completed", 82);
    expect(newerProgress(ended, answer("run_a", "running", 82))).toBe(ended);
    const cancelled = answer("run_a", "cancelled", 40);
    expect(newerProgress(answer("run_a", "running", 40), cancelled)).toBe(cancelled);
  });
  it("takes another run's answer, or the first one", () => {
    const other = answer("run_b", "running", 0);
    expect(newerProgress(answer("run_a", "completed", 82), other)).toBe(other);
    expect(newerProgress(undefined, other)).toBe(other);
    const none: Answer = { run: null, global_progress: { completed_items: 0 } };
    expect(newerProgress(none, other)).toBe(other);
  });
});
