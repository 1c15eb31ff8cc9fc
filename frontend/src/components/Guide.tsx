import type { ReactNode } from "react";
import { Link } from "react-router-dom";

const STEPS = [
  ["/keywords", "Keywords", "add the keywords to write about"],
  ["/automation", "Automation", "run the pipeline: clusters, ideas, articles, images"],
  ["/content", "Content", "read and approve the articles"],
  ["/publishing", "Publishing", "choose where and when they go out"],
] as const;

export type GuideStep = 1 | 2 | 3 | 4;

/** The first run's path, Keywords → Automation → Content → Publishing, at the step a page is. */
export function FirstRunGuide({ step, children }: { step: GuideStep; children?: ReactNode }) {
  return (
    <section className="guide" aria-label="Getting started" data-testid="first-run-guide">
      {children && <p className="guide-lead">{children}</p>}
      <ol>
        {STEPS.map(([to, name, what], i) => (
          <li
            key={to}
            aria-current={i + 1 === step ? "step" : undefined}
            className={i + 1 < step ? "done" : undefined}
          >
            <Link to={to}>{name}</Link>
            <span className="hint"> {what}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}
